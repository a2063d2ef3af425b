package eventlog_test

import (
	"crypto"
	"crypto/sha256"
	"fmt"

	"github.com/kexec-measured/kexec-measured/eventlog"
)

// An empty kernel command line is measured as the digest of the empty
// string; Encode gives the exact bytes appended to the log.
func ExampleNewKexecRecord() {
	sum := sha256.Sum256(nil)
	rec, err := eventlog.NewKexecRecord(9, map[crypto.Hash][]byte{crypto.SHA256: sum[:]},
		eventlog.KexecContent{Event: eventlog.EventCmdline})
	if err != nil {
		fmt.Println(err)
		return
	}
	b, err := rec.Encode()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%q\n", b)
	// Output:
	// "\x1e{\"pcr\":9,\"digests\":[{\"hashAlg\":\"sha256\",\"digest\":\"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\"}],\"content_type\":\"kexec-measured\",\"content\":{\"event\":\"kexec-cmdline\",\"offset\":0,\"size\":0}}\n"
}
