//go:build linux

package handoff

import (
	"crypto"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/kexec-measured/kexec-measured/eventlog"
	"github.com/kexec-measured/kexec-measured/internal/hashtest"
	"github.com/kexec-measured/kexec-measured/pcr"
)

// bigLog returns a log of n kexec-measured records with digests in all
// four banks, as a real log of many loads holds them.
func bigLog(b *testing.B, n int) []byte {
	var log []byte
	for i := range n {
		sums := map[crypto.Hash][]byte{}
		for _, h := range pcr.Banks() {
			sums[h] = hashtest.Sum(h, []byte(fmt.Sprint(i)))
		}
		rec, err := eventlog.NewKexecRecord(9, sums, eventlog.KexecContent{Event: eventlog.EventInitrd,
			Path: "/boot/initrd.img-6.1.0-57-cloud-amd64", Offset: int64(i) << 20, Size: 7 << 20,
			BootID: "0f5e1c42-6f53-4c2b-9d7e-2f2f1a1b2c3d", Timestamp: 12345678})
		if err != nil {
			b.Fatal(err)
		}
		enc, _ := rec.Encode()
		log = append(log, enc...)
	}
	return log
}

// BenchmarkBuild1000 is the added work of a load with a log of 1000
// records: read the log, build the archive (the size is reported).
func BenchmarkBuild1000(b *testing.B) {
	dir := b.TempDir()
	logPath := filepath.Join(dir, "log")
	os.WriteFile(logPath, bigLog(b, 1000), 0o600)
	bl := &Builder{LogPath: logPath, FirmwarePaths: []string{filepath.Join(dir, "none")}}
	var size int
	for b.Loop() {
		data, err := bl.Build()
		if err != nil {
			b.Fatal(err)
		}
		size = len(data)
	}
	b.ReportMetric(float64(size), "handoff-bytes")
}

// BenchmarkImport1000 is the added work of a boot: read the unpacked
// handoff of 1000 records and import it into a log that already holds
// systemd's first records.
func BenchmarkImport1000(b *testing.B) {
	dir := b.TempDir()
	hdir := filepath.Join(dir, "handoff")
	os.Mkdir(hdir, 0o755)
	os.WriteFile(filepath.Join(hdir, LogName), bigLog(b, 1000), 0o444)
	current := bigLog(b, 3)
	i := 0
	for b.Loop() {
		logPath := filepath.Join(dir, fmt.Sprintf("log%d", i))
		i++
		os.WriteFile(logPath, current, 0o600)
		h, err := ReadDir(hdir)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Import(h, logPath, ""); err != nil {
			b.Fatal(err)
		}
		os.Remove(logPath)
	}
}
