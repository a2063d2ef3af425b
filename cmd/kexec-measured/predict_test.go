//go:build linux

package main

import (
	"bytes"
	"compress/gzip"
	"crypto"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kexec-measured/kexec-measured/eventlog"
	"github.com/kexec-measured/kexec-measured/internal/hashtest"
	"github.com/kexec-measured/kexec-measured/internal/newc"
	"github.com/kexec-measured/kexec-measured/pcr"
	"github.com/kexec-measured/kexec-measured/tpm"
	"github.com/kexec-measured/kexec-measured/tpm/swtpmtest"
)

// handoffConstant is what the handoff event measures in every bank (see
// docs/handoff.md): a constant, so a prediction needs no file for it.
const handoffConstant = "kexec-measured handoff v1"

// predictTest runs `kexec-measured predict` with args in e.
func predictTest(e env, args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := predictMain(args, e, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// predicted parses the --json output of predict.
func predicted(t *testing.T, out string) predictionJSON {
	t.Helper()
	var p predictionJSON
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("predict --json: %v\n%s", err, out)
	}
	return p
}

// values decodes {"sha256": "<hex>"} into the bank map.
func values(t *testing.T, m map[string]string) map[crypto.Hash][]byte {
	t.Helper()
	out := map[crypto.Hash][]byte{}
	for name, x := range m {
		h, err := pcr.Parse(name)
		if err != nil {
			t.Fatal(err)
		}
		if out[h], err = hex.DecodeString(x); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// splitFixture writes a kernel and two initrd components built from
// segments (an uncompressed cpio followed by a gzip cpio, and a gzip cpio
// alone) and returns the paths and, per component, its segments' bytes.
func splitFixture(t *testing.T, dir string) (kernel string, initrds []string, segs [][][]byte) {
	t.Helper()
	kernel = filepath.Join(dir, "vmlinuz")
	os.WriteFile(kernel, []byte("MZ pretend kernel "+t.Name()), 0o644)
	archive := func(name, body string) []byte {
		b, err := newc.Archive([]newc.File{{Name: name, Perm: 0o644, Data: []byte(body)}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	gz := func(b []byte) []byte {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		w.Write(b)
		w.Close()
		return buf.Bytes()
	}
	early := archive("kernel/x86/microcode/GenuineIntel.bin", strings.Repeat("ucode", 100))
	main := gz(archive("init", "#!/bin/sh\necho "+t.Name()+"\n"))
	mods := gz(archive("lib/modules/x.ko", strings.Repeat("module", 300)))
	for i, c := range [][][]byte{{early, main}, {mods}} {
		p := filepath.Join(dir, []string{"distro.img", "modules.cpio.gz"}[i])
		os.WriteFile(p, bytes.Join(c, nil), 0o644)
		initrds = append(initrds, p)
		segs = append(segs, c)
	}
	return kernel, initrds, segs
}

// expected computes, independently of the loader, what the load of kernel
// and initrd components (each a list of segments) with cmdline extends
// onto start in bank h: the kernel, each component (or, with split, each
// segment), the handoff constant when the load has a handoff event, the
// command line.
func expected(t *testing.T, h crypto.Hash, start []byte, kernel string, segs [][][]byte, split, handoff bool, cmdline string) []byte {
	t.Helper()
	k, err := os.ReadFile(kernel)
	if err != nil {
		t.Fatal(err)
	}
	items := [][]byte{k}
	for _, c := range segs {
		if split {
			items = append(items, c...)
		} else {
			items = append(items, bytes.Join(c, nil))
		}
	}
	if handoff {
		items = append(items, []byte(handoffConstant))
	}
	items = append(items, []byte(cmdline))
	return hashtest.PCR(h, start, items...)
}

// hasHandoff reports whether a prediction lists the handoff event.
func hasHandoff(p predictionJSON) bool {
	return slices.ContainsFunc(p.Events, func(e eventJSON) bool { return e.Event == "kexec-handoff" })
}

// TestPredictEqualsLoad: in every mode, with and without --split-initrd,
// and from a PCR that already holds a value, predict --tpm gives in all
// four banks the value computed independently from the input files, and
// the measured load that follows leaves exactly that value in the swtpm's
// PCR 9 (and in the replay of its log). predict itself changes nothing.
func TestPredictEqualsLoad(t *testing.T) {
	tests := []struct {
		name  string
		mode  []string
		split bool
	}{
		{"-l", []string{"-l"}, false},
		{"-l --split-initrd", []string{"-l"}, true},
		{"-p", []string{"-p"}, false},
		{"-p --split-initrd", []string{"-p"}, true},
		{"no mode", nil, false},
		{"-f --split-initrd", []string{"-f"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec, _ := swtpmtest.Start(t)
			dir := t.TempDir()
			kernel, initrds, segs := splitFixture(t, dir)
			// A PCR that already holds something, as after a firmware boot.
			dev, err := tpm.Open(spec)
			if err != nil {
				t.Fatal(err)
			}
			sums := map[crypto.Hash][]byte{}
			for _, h := range allBanks {
				sums[h] = hashtest.Sum(h, []byte("firmware boot"))
			}
			if err := dev.Extend(9, sums); err != nil {
				t.Fatal(err)
			}
			dev.Close()
			before := readPCRs(t, spec)

			cmdline := "console=ttyS0 " + tt.name
			args := append(slices.Clone(tt.mode), kernel, "--append", cmdline, "--tpm", spec)
			for _, p := range initrds {
				args = append(args, "--initrd", p)
			}
			if tt.split {
				args = append(args, "--split-initrd")
			}
			e, sys := testEnv(t)
			code, out, stderr := predictTest(e, append(slices.Clone(args), "--json")...)
			if code != 0 {
				t.Fatalf("predict: exit %d: %s", code, stderr)
			}
			p := predicted(t, out)
			if len(sys.Loads) != 0 || slices.Contains(sys.Calls, "kexec_file_load") {
				t.Fatalf("predict loaded: %v", sys.Calls)
			}
			if after := readPCRs(t, spec); !mapsEqual(after, before) {
				t.Fatal("predict changed the PCR")
			}
			got := values(t, p.Values)
			if len(got) != len(allBanks) {
				t.Fatalf("predicted %d banks, want %d", len(got), len(allBanks))
			}
			for _, h := range allBanks {
				want := expected(t, h, before[h], kernel, segs, tt.split, hasHandoff(p), cmdline)
				if !bytes.Equal(got[h], want) {
					t.Errorf("%v: predicted %x, independent %x", h, got[h], want)
				}
			}

			logPath := filepath.Join(dir, "tpm2-measure.log")
			if code, _, stderr := runTest(e, append(args, "--log", logPath)...); code != 0 {
				t.Fatalf("load: exit %d: %s", code, stderr)
			}
			if len(sys.Loads) != 1 {
				t.Fatalf("%d loads after the load", len(sys.Loads))
			}
			tpmVals := readPCRs(t, spec)
			log, err := eventlog.ReadFile(logPath)
			if err != nil {
				t.Fatal(err)
			}
			if len(log.Records) != len(p.Events) {
				t.Errorf("the load logged %d events, predict listed %d", len(log.Records), len(p.Events))
			}
			for _, h := range allBanks {
				if !bytes.Equal(tpmVals[h], got[h]) {
					t.Errorf("%v: TPM after the load %x, predicted %x", h, tpmVals[h], got[h])
				}
				v := before[h]
				for _, rec := range log.Records {
					d, err := rec.Sum(h)
					if err != nil {
						t.Fatal(err)
					}
					v = hashtest.Extend(h, v, d)
				}
				if !bytes.Equal(v, got[h]) {
					t.Errorf("%v: log replayed onto the start %x, predicted %x", h, v, got[h])
				}
			}
		})
	}
}

func mapsEqual(a, b map[crypto.Hash][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for h, v := range a {
		if !bytes.Equal(b[h], v) {
			return false
		}
	}
	return true
}

// TestPredictChangedComponent: a component rewritten (same path, same
// size) between predict and the load gives the load a value other than
// the prediction, and a new prediction its value: nothing is cached by
// path.
func TestPredictChangedComponent(t *testing.T) {
	spec, _ := swtpmtest.Start(t)
	dir := t.TempDir()
	kernel, initrds, _ := inputs(t, dir, 2)
	args := []string{"-l", kernel, "--initrd", initrds[0], "--initrd", initrds[1], "--tpm", spec}
	e, _ := testEnv(t)
	code, out, stderr := predictTest(e, append(slices.Clone(args), "--json")...)
	if code != 0 {
		t.Fatalf("predict: exit %d: %s", code, stderr)
	}
	first := values(t, predicted(t, out).Values)

	old, _ := os.ReadFile(initrds[1])
	changed := bytes.ToUpper(old)
	if bytes.Equal(changed, old) {
		t.Fatal("fixture: the change changes nothing")
	}
	os.WriteFile(initrds[1], changed, 0o644)

	code, out, stderr = predictTest(e, append(slices.Clone(args), "--json")...)
	if code != 0 {
		t.Fatalf("predict: exit %d: %s", code, stderr)
	}
	second := values(t, predicted(t, out).Values)
	if code, _, stderr := runTest(e, append(args, "--log", filepath.Join(dir, "log"))...); code != 0 {
		t.Fatalf("load: exit %d: %s", code, stderr)
	}
	tpmVals := readPCRs(t, spec)
	for _, h := range allBanks {
		if bytes.Equal(tpmVals[h], first[h]) {
			t.Errorf("%v: the load of the changed component gave the first prediction %x", h, first[h])
		}
		if !bytes.Equal(tpmVals[h], second[h]) {
			t.Errorf("%v: TPM %x, prediction after the change %x", h, tpmVals[h], second[h])
		}
	}
}

// TestPredictStarts: --from-zero starts from the reset value; --log
// replays the userspace log, which after a measured load on a fresh swtpm
// gives the TPM's own value, so that predicting the next load from the log
// and from the TPM agree. The pcrlock component of a log start lists the
// earlier load's records ahead of the planned ones.
func TestPredictStarts(t *testing.T) {
	spec, _ := swtpmtest.Start(t)
	dir := t.TempDir()
	kernel, initrds, contents := inputs(t, dir, 1)
	banks := "sha1,sha256,sha384,sha512"
	e, _ := testEnv(t)

	code, out, stderr := predictTest(e, "-l", kernel, "--initrd", initrds[0], "--from-zero", "--banks", banks, "--json")
	if code != 0 {
		t.Fatalf("predict --from-zero: exit %d: %s", code, stderr)
	}
	p := predicted(t, out)
	if p.Start.Source != "zero" {
		t.Errorf("start source %q", p.Start.Source)
	}
	for h, v := range values(t, p.Values) {
		want := hashtest.PCR(h, nil, append(slices.Clone(contents), handoffItems(p)...)...)
		if !bytes.Equal(v, want) {
			t.Errorf("--from-zero %v: %x, want %x", h, v, want)
		}
	}

	logPath := filepath.Join(dir, "tpm2-measure.log")
	if code, _, stderr := runTest(e, "-l", kernel, "--initrd", initrds[0], "--tpm", spec, "--log", logPath); code != 0 {
		t.Fatalf("load: exit %d: %s", code, stderr)
	}
	next := []string{"-l", kernel, "--append", "next boot", "--json"}
	code, out, stderr = predictTest(e, append(slices.Clone(next), "--log", logPath, "--banks", banks, "--pcrlock", filepath.Join(dir, "c.pcrlock"))...)
	if code != 0 {
		t.Fatalf("predict --log: exit %d: %s", code, stderr)
	}
	fromLog := predicted(t, out)
	code, out, stderr = predictTest(e, append(slices.Clone(next), "--tpm", spec)...)
	if code != 0 {
		t.Fatalf("predict --tpm: exit %d: %s", code, stderr)
	}
	fromTPM := predicted(t, out)
	if fromLog.Start.Source != "log" || fromTPM.Start.Source != "tpm" {
		t.Errorf("sources %q, %q", fromLog.Start.Source, fromTPM.Start.Source)
	}
	if !mapsEqual(values(t, fromLog.Start.Values), readPCRs(t, spec)) {
		t.Errorf("log start %v is not the TPM's value", fromLog.Start.Values)
	}
	if !mapsEqual(values(t, fromLog.Values), values(t, fromTPM.Values)) {
		t.Errorf("from the log %v, from the TPM %v", fromLog.Values, fromTPM.Values)
	}

	var comp struct {
		Records []struct {
			PCR     int               `json:"pcr"`
			Digests []eventlog.Digest `json:"digests"`
		} `json:"records"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "c.pcrlock"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &comp); err != nil {
		t.Fatal(err)
	}
	log, err := eventlog.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if want := len(log.Records) + len(fromLog.Events); len(comp.Records) != want {
		t.Fatalf("component has %d records, want %d (the earlier load's and the planned)", len(comp.Records), want)
	}
	// Replaying the component from zero is the prediction: it holds every
	// extend of the chain.
	for _, h := range allBanks {
		name, _ := pcr.Name(h)
		v := pcr.Initial(h, 9)
		for _, r := range comp.Records {
			i := slices.IndexFunc(r.Digests, func(d eventlog.Digest) bool { return d.HashAlg == name })
			if i < 0 {
				t.Fatalf("record without %s", name)
			}
			d, _ := hex.DecodeString(r.Digests[i].Digest)
			v = hashtest.Extend(h, v, d)
		}
		if want := values(t, fromLog.Values)[h]; !bytes.Equal(v, want) {
			t.Errorf("%v: component replayed %x, predicted %x", h, v, want)
		}
	}
}

// handoffItems is the handoff constant when the prediction lists the
// handoff event, as the item hashtest.PCR digests; it goes before the
// command line, which is the last item.
func handoffItems(p predictionJSON) [][]byte {
	items := [][]byte{}
	if hasHandoff(p) {
		items = append(items, []byte(handoffConstant))
	}
	return append(items, []byte(""))
}

// TestPredictVariantsAndKeylime: --pcrlock=DIR.pcrlock.d keeps the newest
// --keep-variants planned loads as variants, and --keylime lists the
// planned load's sha256 value first, then the other variants'.
func TestPredictVariantsAndKeylime(t *testing.T) {
	dir := t.TempDir()
	kernel, initrds, _ := inputs(t, dir, 1)
	comp := filepath.Join(dir, "pcrlock.d", "900-kexec-measured.pcrlock.d")
	e, _ := testEnv(t)
	val := map[string]string{}
	for _, v := range []string{"old", "new", "newest"} {
		code, out, stderr := predictTest(e, "-l", kernel, "--initrd", initrds[0], "--append", v, "--from-zero",
			"--pcrlock", comp, "--variant", v, "--json")
		if code != 0 {
			t.Fatalf("predict --variant %s: exit %d: %s", v, code, stderr)
		}
		val[v] = predicted(t, out).Values["sha256"]
	}
	files, _ := filepath.Glob(filepath.Join(comp, "*"))
	slices.Sort(files)
	if want := []string{filepath.Join(comp, "new.pcrlock"), filepath.Join(comp, "newest.pcrlock")}; !slices.Equal(files, want) {
		t.Errorf("component directory holds %v, want %v", files, want)
	}
	code, out, stderr := predictTest(e, "-l", kernel, "--initrd", initrds[0], "--append", "planned", "--from-zero",
		"--pcrlock", comp, "--variant", "planned", "--keep-variants", "3", "--keylime")
	if code != 0 {
		t.Fatalf("predict --keylime: exit %d: %s", code, stderr)
	}
	var policy map[string][]string
	if err := json.Unmarshal([]byte(out), &policy); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	_, plannedOut, _ := predictTest(e, "-l", kernel, "--initrd", initrds[0], "--append", "planned", "--from-zero", "--json")
	want := []string{predicted(t, plannedOut).Values["sha256"], val["newest"], val["new"]}
	if len(policy) != 1 || !slices.Equal(policy["9"], want) {
		t.Errorf("Keylime policy %v, want {\"9\": %v}", policy, want)
	}
}

// TestPredictRefuses: what predict cannot do is a usage error (exit 2)
// naming the problem, with nothing loaded and nothing written.
func TestPredictRefuses(t *testing.T) {
	dir := t.TempDir()
	kernel, initrds, _ := inputs(t, dir, 1)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unload", []string{"-u"}, "predict needs a load"},
		{"exec", []string{"-e"}, "predict needs a load"},
		{"status", []string{"-S", kernel}, "predict needs a load"},
		{"no kernel", []string{"-l", "--from-zero"}, "no kernel specified"},
		{"missing component", []string{"-l", kernel, "--initrd", dir + "/missing", "--from-zero"}, dir + "/missing"},
		{"zero and tpm", []string{"-l", kernel, "--from-zero", "--tpm", "swtpm:127.0.0.1:1"}, "--from-zero excludes"},
		{"tpm and log", []string{"-l", kernel, "--tpm", "swtpm:127.0.0.1:1", "--log", "x"}, "not both"},
		{"tpm none", []string{"-l", kernel, "--tpm=none"}, "--tpm=none"},
		{"no TPM", []string{"-l", kernel}, "--from-zero"},
		{"variant without a directory", []string{"-l", kernel, "--from-zero", "--pcrlock", dir + "/x.pcrlock", "--variant", "a"}, "--variant needs"},
		{"bad variant", []string{"-l", kernel, "--from-zero", "--pcrlock", dir + "/x.pcrlock.d", "--variant", "../a"}, "variant name"},
		{"bad pcrlock name", []string{"-l", kernel, "--from-zero", "--pcrlock", dir + "/x.json"}, "ending in .pcrlock"},
		{"keylime and json", []string{"-l", kernel, "--from-zero", "--keylime", "--json"}, "drop --json"},
		{"keylime without sha256", []string{"-l", kernel, "--from-zero", "--banks", "sha1", "--keylime"}, "sha256"},
		{"initrd-out", []string{"-l", kernel, "--from-zero", "--initrd-out", dir + "/out"}, "--initrd-out"},
		{"missing log", []string{"-l", kernel, "--log", dir + "/nolog"}, dir + "/nolog"},
		{"missing firmware log", []string{"-l", kernel, "--firmware-log", dir + "/nofw"}, dir + "/nofw"},
		{"bad firmware log", []string{"-l", kernel, "--firmware-log", initrds[0]}, "--firmware-log=" + initrds[0]},
		{"endless firmware log", []string{"-l", kernel, "--firmware-log", "/dev/zero"}, "more than the"},
		{"unknown option", []string{"-l", kernel, "--bogus"}, "unrecognized option"},
		{"bad keep", []string{"-l", kernel, "--keep-variants", "0"}, "--keep-variants"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, sys := testEnv(t)
			args := append(slices.Clone(tt.args), "--initrd", initrds[0])
			code, out, stderr := predictTest(e, args...)
			if code != 2 {
				t.Errorf("exit %d, want 2; stdout %q", code, out)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr %q lacks %q", stderr, tt.want)
			}
			if len(sys.Calls) != 0 && slices.Contains(sys.Calls, "kexec_file_load") {
				t.Errorf("calls: %v", sys.Calls)
			}
			if _, err := os.Stat(dir + "/x.pcrlock"); err == nil {
				t.Error("wrote a component")
			}
		})
	}
}

// TestPredictSameParser: predict takes a load's arguments in every form
// the load's parser accepts (abbreviated long options, --opt value,
// grouped short options, the kernel anywhere), and predicts the same as
// the plain spelling.
func TestPredictSameParser(t *testing.T) {
	dir := t.TempDir()
	kernel, initrds, _ := inputs(t, dir, 2)
	e, _ := testEnv(t)
	spellings := [][]string{
		{"-l", kernel, "--initrd=" + initrds[0], "--initrd=" + initrds[1], "--append=a b", "--from-zero", "--json"},
		{"--initrd", initrds[0], "--ramdisk", initrds[1], "--load", "--command-line", "a b", kernel, "--from-z", "--js"},
		{"-lx", "--append", "ignored", "--append", "a b", "--ramd", initrds[0], "--initrd", initrds[1], "--from-zero", "--json", "--", kernel},
	}
	var first string
	for i, args := range spellings {
		code, out, stderr := predictTest(e, args...)
		if code != 0 {
			t.Fatalf("spelling %d: exit %d: %s", i, code, stderr)
		}
		v := predicted(t, out).Values["sha256"]
		if i == 0 {
			first = v
		} else if v != first {
			t.Errorf("spelling %d predicts %s, the first %s", i, v, first)
		}
	}
}

// TestPredictOtherPCR: with --pcr, the prediction is for that PCR, from
// its own start value, and the load then extends exactly that value there.
func TestPredictOtherPCR(t *testing.T) {
	spec, _ := swtpmtest.Start(t)
	dir := t.TempDir()
	kernel, initrds, contents := inputs(t, dir, 1)
	args := []string{"-l", kernel, "--initrd", initrds[0], "--pcr", "14", "--tpm", spec}
	e, _ := testEnv(t)
	code, out, stderr := predictTest(e, append(slices.Clone(args), "--json", "--pcrlock", filepath.Join(dir, "c.pcrlock"))...)
	if code != 0 {
		t.Fatalf("predict: exit %d: %s", code, stderr)
	}
	p := predicted(t, out)
	if p.PCR != 14 {
		t.Errorf("prediction for PCR %d", p.PCR)
	}
	if code, _, stderr := runTest(e, append(args, "--log", filepath.Join(dir, "log"))...); code != 0 {
		t.Fatalf("load: exit %d: %s", code, stderr)
	}
	dev, err := tpm.Open(spec)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	vals, err := dev.ReadPCRs(14)
	if err != nil {
		t.Fatal(err)
	}
	for h, v := range values(t, p.Values) {
		want := hashtest.PCR(h, nil, append(slices.Clone(contents), handoffItems(p)...)...)
		if !bytes.Equal(v, want) || !bytes.Equal(vals[h], v) {
			t.Errorf("%v: predicted %x, independent %x, TPM PCR 14 %x", h, v, want, vals[h])
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, "c.pcrlock"))
	if !strings.Contains(string(b), `"pcr": 14`) || strings.Contains(string(b), `"pcr": 9`) {
		t.Errorf("component not for PCR 14:\n%s", b)
	}
}

// TestPredictDefaultVariant: without --variant the variant is named after
// the kernel a link points to, so that planning /boot/vmlinuz after an
// upgrade keeps the previous kernel's variant.
func TestPredictDefaultVariant(t *testing.T) {
	dir := t.TempDir()
	comp := filepath.Join(dir, "900-kexec-measured.pcrlock.d")
	link := filepath.Join(dir, "vmlinuz")
	e, _ := testEnv(t)
	for _, version := range []string{"6.1.0-1-amd64", "6.1.0-2-amd64"} {
		k := filepath.Join(dir, "vmlinuz-"+version)
		os.WriteFile(k, []byte("kernel "+version), 0o644)
		os.Remove(link)
		os.Symlink(filepath.Base(k), link)
		if code, _, stderr := predictTest(e, "-l", link, "--from-zero", "--pcrlock", comp); code != 0 {
			t.Fatalf("predict: exit %d: %s", code, stderr)
		}
	}
	files, _ := filepath.Glob(filepath.Join(comp, "*.pcrlock"))
	want := []string{filepath.Join(comp, "vmlinuz-6.1.0-1-amd64.pcrlock"), filepath.Join(comp, "vmlinuz-6.1.0-2-amd64.pcrlock")}
	if !slices.Equal(files, want) {
		t.Errorf("variants %v, want %v", files, want)
	}
}
