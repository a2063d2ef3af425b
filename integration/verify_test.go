//go:build integration

package integration

import (
	"archive/tar"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kexec-measured/kexec-measured/verify"
)

// The verify scenario needs what stage 2 cannot get from its measured
// initrd: the reference manifests (a component cannot hold its own
// digest), kexec-measured, and tpm2_pcrread with its libraries. They
// travel as a tar on an NVMe disk (the cloud kernel has the NVMe driver
// built in). Stage 1's log comes with the handoff.
const carryDiskSize = 64 << 20

// stage2Verify is stage 2's init: it unpacks the carry disk, imports the
// handoff (stage 1's log, and the copy of the firmware log stage 1 read
// from securityfs) and runs the verifications: first before securityfs is
// mounted, so that the firmware log comes from the handed-over copy, then
// with it; ALTER is replaced by a sed expression that alters one digest of
// the log.
const stage2Verify = guestPrelude + `km stage2
mkdir -p /carry && tar -x -f /dev/nvme0n1 -C /carry
km carry-unpacked
KM=/carry/bin/kexec-measured
run import $KM log import
vrun() { n=$1; shift; "$@" > /tmp/$n.out 2>/tmp/$n.err; km rc $n $?; dump $n /tmp/$n.out; dump $n.err /tmp/$n.err; }
vrun fwcopy $KM verify --json --reference /carry/refs/all
dump fwcopy-file /run/log/kexec-measured/binary_bios_measurements
mount -t securityfs securityfs /sys/kernel/security
dump fwlive /sys/kernel/security/tpm0/binary_bios_measurements
vrun ok $KM verify --json --reference /carry/refs/all
vrun ok-text $KM verify --reference /carry/refs/all
vrun missing $KM verify --json --reference /carry/refs/missing.json
/carry/lib64/ld-linux-x86-64.so.2 --library-path /carry/lib /carry/bin/tpm2 pcrread -T device:/dev/tpmrm0 sha1:all+sha256:all+sha384:all+sha512:all > /tmp/pcrs.yaml
km rc pcrread $?
dump pcrs.yaml /tmp/pcrs.yaml
vrun pcrs $KM verify --json --reference /carry/refs/all --pcrs /tmp/pcrs.yaml
sed 'ALTER' $LOG > /tmp/altered.log
vrun altered $KM verify --json --reference /carry/refs/all --log /tmp/altered.log
finish
`

// TestVerifyAfterKexec: references built on the host with `reference`;
// stage 1 measures and loads a kernel with three components (and the
// handoff) and executes it; stage 2 imports the handoff, and `verify` against the live TPM exits 0 and names every
// component; without one component's reference it exits 1 naming that
// event; with a record altered (one bank's digest) it exits 1 naming PCR 9
// and that bank; tpm2_pcrread's output via --pcrs gives the live TPM's
// verdict.
func TestVerifyAfterKexec(t *testing.T) {
	e := getEnv(t, true)
	tpm := startSwtpm(t)
	dir := t.TempDir()

	comps := mainComponents(t, e)
	// The altered record: fw.cpio's sha384 digest, first hex digit flipped.
	fwSHA384 := hex.EncodeToString(digest(t, "sha384", comps[0].Data))
	flipped := string("0123456789abcdef"[(strings.IndexByte("0123456789abcdef", fwSHA384[0])+1)%16]) + fwSHA384[1:]
	comps[2] = newComponent(t, "extra.cpio.zst", "zstd", map[string][]byte{
		"init":         []byte(strings.Replace(stage2Verify, "ALTER", "s/"+fwSHA384+"/"+flipped+"/", 1)),
		"extra/marker": []byte(fmt.Sprintf("extra %x\n", randomBytes(t, 16))),
	})
	for _, c := range comps {
		writeFileT(t, filepath.Join(dir, c.Name), c.Data)
	}

	// References, built on the host by the binary under test.
	refs := func(name string, args ...string) []byte {
		out, err := exec.Command(e.Binary, append([]string{"reference"}, args...)...).Output()
		if err != nil {
			t.Fatalf("reference %s: %v", name, err)
		}
		return out
	}
	kernelRef := refs("kernel", "--name", "debian-6.1", e.Kernel, "--cmdline", stage2Cmdline)
	initrdRef := refs("initrd", filepath.Join(dir, "fw.cpio"), filepath.Join(dir, "modules.cpio.gz"), filepath.Join(dir, "extra.cpio.zst"))
	missingRef := refs("missing", "--name", "debian-6.1", e.Kernel, filepath.Join(dir, "fw.cpio"), filepath.Join(dir, "extra.cpio.zst"), "--cmdline", stage2Cmdline)

	disk := carryDisk(t, e, dir, map[string][]byte{
		"refs/all/kernel.json": kernelRef,
		"refs/all/initrd.json": initrdRef,
		"refs/missing.json":    missingRef,
	})
	load := "kexec-measured -l /stage2/vmlinuz " + initrdArgs(comps) + " --append '" + stage2Cmdline + "'"
	// securityfs is mounted before the load, so that the handoff carries a
	// copy of the firmware log.
	script := fmt.Sprintf("mount -t securityfs securityfs /sys/kernel/security\nrun load %s\nrun exec kexec-measured -e\nkm exec-returned\n", load)
	initrd := stage1{Components: comps, Script: script}.build(t, e, dir)
	c := run(t, e, vmConfig{Initrd: initrd, Cmdline: stage1Cmdline, TPM: tpm, Timeout: 8 * time.Minute, Extra: []string{
		"-drive", "file=" + disk + ",if=none,id=carry,format=raw", "-device", "nvme,serial=carry,drive=carry",
	}})

	if rc := c.RC(t, "load"); rc != 0 {
		t.Fatalf("load: exit %d", rc)
	}
	if !c.Has("stage2") {
		t.Fatal("stage 2 did not run")
	}
	text, _ := c.File(t, "ok-text")
	t.Logf("verify in stage 2:\n%s", text)

	ok := verdictOf(t, c, "ok", 0)
	if rc := c.RC(t, "import"); rc != 0 {
		t.Fatalf("log import in stage 2: exit %d", rc)
	}
	want := []string{"debian-6.1", "fw.cpio", "modules.cpio.gz", "extra.cpio.zst", "(handoff)", "cmdline"}
	var events []verify.Event
	for _, b := range ok.Boots {
		events = append(events, b.Events...)
	}
	if len(events) != len(want) {
		t.Fatalf("verify named %d kexec events, want %d: %+v", len(events), len(want), events)
	}
	for i, ev := range events {
		if strings.Join(ev.Match, ",") != want[i] {
			t.Errorf("event %d (%s) matched %q, want %q", i, ev.Describe(), ev.Match, want[i])
		}
	}
	checkRows(t, ok, 9, verify.StatusMatch)

	// The firmware log that went across the kexec in the handoff is
	// SeaBIOS's, byte for byte (which stage 2 still has in securityfs),
	// and verify without securityfs replays PCR 0 from it to the TPM's.
	live, ok1 := c.File(t, "fwlive")
	fwcopy, ok2 := c.File(t, "fwcopy-file")
	switch {
	case !ok1 || len(live) == 0:
		t.Errorf("stage 2 has no firmware log in securityfs")
	case !ok2:
		t.Errorf("log import wrote no firmware log copy: the handoff carried none")
	case !bytes.Equal(fwcopy, live):
		t.Errorf("the handed-over firmware log (%d bytes) is not the firmware's (%d bytes)", len(fwcopy), len(live))
	}
	checkRows(t, verdictOf(t, c, "fwcopy", 0), 0, verify.StatusMatch)

	missing := verdictOf(t, c, "missing", 1)
	if len(missing.Findings) != 1 || missing.Findings[0].Event != "kexec-initrd /components/modules.cpio.gz" {
		t.Errorf("without modules.cpio.gz's reference: findings %+v, want one naming kexec-initrd /components/modules.cpio.gz", missing.Findings)
	}

	if rc := c.RC(t, "pcrread"); rc != 0 {
		t.Fatalf("tpm2_pcrread in stage 2: exit %d", rc)
	}
	pcrs := verdictOf(t, c, "pcrs", 0)
	okJSON, _ := json.Marshal(ok.PCRs)
	pcrsJSON, _ := json.Marshal(pcrs.PCRs)
	if !bytes.Equal(okJSON, pcrsJSON) || pcrs.OK != ok.OK {
		t.Errorf("--pcrs (tpm2_pcrread) gives another verdict than the live TPM:\n%s\n%s", pcrsJSON, okJSON)
	}

	altered := verdictOf(t, c, "altered", 1)
	var named bool
	for _, f := range altered.Findings {
		if f.PCR != nil && *f.PCR == 9 && f.Bank == "sha384" && strings.HasPrefix(f.Message, "MISMATCH") {
			named = true
		}
		if f.Bank != "" && f.Bank != "sha384" {
			t.Errorf("altered sha384 digest: a finding about bank %s: %s", f.Bank, f)
		}
	}
	if !named {
		t.Errorf("altered record: findings %+v, want PCR 9 sha384 MISMATCH", altered.Findings)
	}
}

// verdictOf returns the JSON verdict stage 2 dumped as name, after checking
// verify's exit status.
func verdictOf(t *testing.T, c *console, name string, wantRC int) *verify.Verdict {
	t.Helper()
	out, ok := c.File(t, name)
	if !ok {
		t.Fatalf("no output of verify %s", name)
	}
	if rc := c.RC(t, name); rc != wantRC {
		stderr, _ := c.File(t, name+".err")
		t.Fatalf("verify %s: exit %d, want %d\n%s\n%s", name, rc, wantRC, out, stderr)
	}
	var v verify.Verdict
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("verify %s: %v\n%s", name, err, out)
	}
	return &v
}

// checkRows checks that PCR index has status in every bank.
func checkRows(t *testing.T, v *verify.Verdict, index int, status string) {
	t.Helper()
	n := 0
	for _, r := range v.PCRs {
		if r.PCR == index {
			n++
			if r.Status != status {
				t.Errorf("PCR %d %s: %s, want %s", index, r.Bank, r.Status, status)
			}
		}
	}
	if n != len(allBanks) {
		t.Errorf("PCR %d in %d banks, want %d", index, n, len(allBanks))
	}
}

// carryDisk writes the carry disk: a tar of kexec-measured, files, and
// tpm2 (tpm2-tools) with the loader and libraries it needs, so that stage
// 2 can run `ld-linux --library-path /carry/lib tpm2 pcrread`.
func carryDisk(t *testing.T, e *env, dir string, files map[string][]byte) string {
	t.Helper()
	tpm2, err := exec.LookPath("tpm2")
	if err != nil {
		t.Skip("tpm2 (tpm2-tools) not installed")
	}
	all := map[string][]byte{"bin/kexec-measured": readFile(t, e.Binary), "bin/tpm2": readFile(t, tpm2)}
	for k, v := range files {
		all[k] = v
	}
	out, err := exec.Command("ldd", tpm2).Output()
	if err != nil {
		t.Fatalf("ldd %s: %v", tpm2, err)
	}
	libs := []string{"/usr/lib/x86_64-linux-gnu/libtss2-tcti-device.so.0"} // dlopen'ed by the TCTI loader
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) >= 3 && f[1] == "=>":
			libs = append(libs, f[2])
		case len(f) >= 1 && strings.HasPrefix(f[0], "/lib64/ld-linux"):
			all["lib64/"+filepath.Base(f[0])] = readFile(t, f[0])
		}
	}
	for _, l := range libs {
		all["lib/"+filepath.Base(l)] = readFile(t, l)
	}
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, name := range sortedKeys(all) {
		mode := int64(0o644)
		if strings.HasPrefix(name, "bin/") || strings.HasPrefix(name, "lib64/") {
			mode = 0o755
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(all[name])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(all[name])
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if b.Len() > carryDiskSize {
		t.Fatalf("carry tar of %d bytes is larger than the disk (%d)", b.Len(), carryDiskSize)
	}
	p := filepath.Join(dir, "carry.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(carryDiskSize); err != nil {
		t.Fatal(err)
	}
	return p
}

func writeFileT(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
