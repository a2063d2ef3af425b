package verify

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/kexec-measured/kexec-measured/eventlog"
	"github.com/kexec-measured/kexec-measured/pcr"
)

// The firmware log of testdata was captured from the QEMU guest of
// integration/ (SeaBIOS with swtpm, all four banks) by
// `go test -tags integration -run TestFirmwareLogCapture ./integration/
// -args -capture-firmware-log`, together with every PCR the guest read
// from sysfs right after boot.
var (
	seabiosLog  = filepath.Join("testdata", "seabios-swtpm.bin")
	seabiosPCRs = filepath.Join("testdata", "seabios-swtpm.pcrs.json")
)

// TestFirmwareLogReplaysToTheGuestsPCRs replays the captured log with
// go-attestation's parser (eventlog.ParseFirmwareLog) and compares every
// firmware PCR (0-7) of every bank with the values the guest's TPM held.
func TestFirmwareLogReplaysToTheGuestsPCRs(t *testing.T) {
	fl, err := eventlog.ParseFirmwareLog(readBytes(t, seabiosLog))
	if err != nil {
		t.Fatal(err)
	}
	want, err := ReadPCRFile(seabiosPCRs)
	if err != nil {
		t.Fatal(err)
	}
	got, err := fl.Replay(want.Banks())
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range want.Banks() {
		for i := 0; i <= 7; i++ {
			if !bytes.Equal(got[h][i], want[h][i]) {
				t.Errorf("%v PCR %d: replay %x, guest %x", h, i, got[h][i], want[h][i])
			}
		}
	}
}

// TestFirmwareLogAgainstTpm2Eventlog cross-checks go-attestation's parse of
// the captured log with tpm2_eventlog (tpm2-tools): the same events (PCR
// and type, in order) and the same replayed PCRs, which tpm2_eventlog
// prints under "pcrs:" in the YAML that ParsePCRValues reads.
func TestFirmwareLogAgainstTpm2Eventlog(t *testing.T) {
	bin, err := exec.LookPath("tpm2_eventlog")
	if err != nil {
		t.Skip("tpm2_eventlog not installed (Debian package tpm2-tools)")
	}
	out, err := exec.Command(bin, seabiosLog).Output()
	if err != nil {
		t.Fatalf("tpm2_eventlog: %v", err)
	}
	fl, err := eventlog.ParseFirmwareLog(readBytes(t, seabiosLog))
	if err != nil {
		t.Fatal(err)
	}

	re := regexp.MustCompile(`(?m)^  PCRIndex: (\d+)\n  EventType: (\S+)$`)
	var theirs []string
	for _, m := range re.FindAllStringSubmatch(string(out), -1) {
		theirs = append(theirs, m[1]+" "+m[2])
	}
	ours := []string{"0 EV_NO_ACTION"} // the Spec ID event, which Events leaves out
	for _, ev := range fl.Events() {
		ours = append(ours, strconv.Itoa(ev.PCR)+" "+ev.TypeName())
	}
	if len(ours) != len(theirs) {
		t.Fatalf("go-attestation: %d events, tpm2_eventlog: %d", len(ours), len(theirs))
	}
	for i := range ours {
		if ours[i] != theirs[i] {
			t.Errorf("event %d: go-attestation %q, tpm2_eventlog %q", i, ours[i], theirs[i])
		}
	}

	i := bytes.Index(out, []byte("\npcrs:\n"))
	if i < 0 {
		t.Fatalf("no pcrs: in tpm2_eventlog's output")
	}
	replayed, err := ParsePCRValues(out[i+1:], "tpm2_eventlog output")
	if err != nil {
		t.Fatal(err)
	}
	got, err := fl.Replay(pcr.Banks())
	if err != nil {
		t.Fatal(err)
	}
	if len(replayed) != len(pcr.Banks()) {
		t.Errorf("tpm2_eventlog replayed banks %v", replayed.Banks())
	}
	for _, h := range replayed.Banks() {
		for n, v := range replayed[h] {
			if v != nil && !bytes.Equal(got[h][n], v) {
				t.Errorf("%v PCR %d: go-attestation %x, tpm2_eventlog %x", h, n, got[h][n], v)
			}
		}
	}
}

// TestVerifyFirmwareOnly verifies the guest's state right after boot: the
// firmware log explains PCRs 0-7, PCR 10 (IMA's boot_aggregate) is
// ignored, nothing else was extended.
func TestVerifyFirmwareOnly(t *testing.T) {
	actual, err := ReadPCRFile(seabiosPCRs)
	if err != nil {
		t.Fatal(err)
	}
	fw, err := ReadFirmware([]string{filepath.Join(t.TempDir(), "missing"), seabiosLog})
	if err != nil || fw.Err != nil || fw.Path != seabiosLog {
		t.Fatalf("ReadFirmware: %+v, %v", fw, err)
	}
	v := Verify(NewInput(actual, &Log{Path: "none", Missing: true}, fw, nil, []int{10}))
	if !v.OK {
		t.Fatalf("findings %q", findings(v))
	}
	statuses := map[string]int{}
	for _, r := range v.PCRs {
		statuses[r.Status]++
	}
	if statuses[StatusMatch] != 8*4 || statuses[StatusIgnored] != 4 || len(v.PCRs) != 9*4 {
		t.Errorf("rows by status %v, want PCRs 0-7 MATCH and 10 ignored in 4 banks", statuses)
	}

	// Without PCR 10 ignored, IMA's extend is unexplained.
	v = Verify(NewInput(actual, &Log{Path: "none", Missing: true}, fw, nil, nil))
	if got := findings(v); len(got) != 4 || !matches(got[0], "PCR 10 sha1: unexplained") {
		t.Errorf("findings %q, want PCR 10 unexplained in every bank", got)
	}
	// Without the firmware log, PCRs 0-7 are unexplained.
	v = Verify(NewInput(actual, &Log{Path: "none", Missing: true}, &Firmware{}, nil, []int{10}))
	if got := findings(v); len(got) != 8*4 {
		t.Errorf("without the firmware log: %d findings, want 32: %q", len(got), got)
	}
}
