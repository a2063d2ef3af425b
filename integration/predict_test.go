//go:build integration

package integration

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"slices"
	"testing"
)

// pcrlockDir is where the guest keeps kexec-measured's systemd-pcrlock
// component (one of the directories systemd-pcrlock reads).
const pcrlockDir = "/var/lib/pcrlock.d/900-kexec-measured.pcrlock.d"

// predictScript is the stage-1 part of TestPredict that runs before the
// measured load: predict (from the TPM, and from the firmware log when the
// guest has one), the systemd-pcrlock component with a fallback variant and
// the planned load, the Keylime fragment, and Debian 13's
// `systemd-pcrlock predict --pcr=9` over that component.
func predictScript(load, cmdline string) string {
	loadArgs := load + ` --append "` + cmdline + `"`
	fallbackArgs := load + ` --append "` + cmdline + ` fallback"`
	return `km uptime predict-start $(cat /proc/uptime)
mount -t securityfs securityfs /sys/kernel/security
FW=/sys/kernel/security/tpm0/binary_bios_measurements
kexec-measured predict ` + loadArgs + ` --json >/tmp/predict.json; km rc predict $?
dump predict /tmp/predict.json
km uptime predicted $(cat /proc/uptime)
if [ -f $FW ]; then
	kexec-measured predict ` + loadArgs + ` --firmware-log $FW --banks sha1,sha256,sha384,sha512 --json >/tmp/predict-fw.json; km rc predict-fw $?
	km uptime predicted-fw $(cat /proc/uptime)
	dump predict-fw /tmp/predict-fw.json
fi
kexec-measured predict ` + fallbackArgs + ` --pcrlock ` + pcrlockDir + ` --variant fallback >/dev/null; km rc pcrlock-fallback $?
kexec-measured predict ` + loadArgs + ` --pcrlock ` + pcrlockDir + ` --variant planned --keylime >/tmp/keylime.json; km rc keylime $?
dump keylime /tmp/keylime.json
km uptime pcrlocked $(cat /proc/uptime)
ls ` + pcrlockDir + `
SYSTEMD_COLORS=0 /trixie/run systemd-pcrlock predict --pcr=9 >/tmp/sd-predict.txt 2>&1; km rc sd-predict $?
dump sd-predict /tmp/sd-predict.txt
km uptime predict-end $(cat /proc/uptime)
`
}

// TestPredict: in the first boot, `kexec-measured predict` with the load's
// arguments predicts PCR 9 (from the TPM, and equally from the firmware
// log), writes a systemd-pcrlock component, and Debian 13's
// systemd-pcrlock lists the predicted value; then the measured load and
// kexec run, and in the second boot the TPM's PCR 9 equals the prediction
// in every bank, is one of systemd-pcrlock's predicted values, and is the
// first value of the Keylime fragment.
func TestPredict(t *testing.T) {
	e := getEnv(t, true)
	comps := mainComponents(t, e)
	items := componentItems(t, e, comps, stage2Cmdline)
	load := "-l /stage2/vmlinuz " + initrdArgs(comps)
	r := kexecRun{
		Components: comps,
		Prepare:    predictScript(load, stage2Cmdline),
		Load:       "kexec-measured " + load + ` --append "` + stage2Cmdline + `"`,
		Exec:       "kexec-measured -e",
		Items:      items,
		Files:      trixieGuestFiles(t, "systemd-pcrlock"),
		// Four predictions and systemd-pcrlock under TCG before the load.
		Timeout: 2 * vmTimeout,
	}
	res := r.do(t, e)
	c := res.Console
	stage2 := c.PCRs(t, "stage2", 9)

	for _, name := range []string{"predict", "pcrlock-fallback", "keylime", "sd-predict"} {
		if rc := c.RC(t, name); rc != 0 {
			out, _ := c.File(t, name)
			t.Fatalf("%s: exit status %d\n%s", name, rc, out)
		}
	}
	predicted := guestPrediction(t, c, "predict")
	comparePCRs(t, "predict in stage 1 vs. host files", predicted, res.Want)
	comparePCRs(t, "predict in stage 1 vs. stage 2's TPM", predicted, stage2)
	if c.Has("rc", "predict-fw") {
		if rc := c.RC(t, "predict-fw"); rc != 0 {
			t.Errorf("predict --firmware-log: exit status %d", rc)
		} else {
			comparePCRs(t, "predict --firmware-log vs. predict --tpm", guestPrediction(t, c, "predict-fw"), predicted)
		}
	} else {
		t.Log("the guest has no firmware log: predict --firmware-log not tried")
	}

	sdOut, _ := c.File(t, "sd-predict")
	sdValues := pcrlockValues(sdOut)
	want := hex.EncodeToString(stage2["sha256"])
	if !slices.Contains(sdValues, want) {
		t.Errorf("stage 2's PCR 9 sha256 %s is not among systemd-pcrlock's predictions %v\n%s", want, sdValues, sdOut)
	}

	kl, _ := c.File(t, "keylime")
	var policy map[string][]string
	if err := json.Unmarshal(kl, &policy); err != nil {
		t.Fatalf("Keylime fragment: %v: %s", err, kl)
	}
	if vals := policy["9"]; len(policy) != 1 || len(vals) != 2 || vals[0] != want {
		t.Errorf("Keylime fragment %s: want {\"9\": [%s, <fallback>]}", kl, want)
	} else if !slices.Contains(sdValues, vals[1]) {
		t.Errorf("the fallback variant's value %s is not among systemd-pcrlock's predictions %v", vals[1], sdValues)
	}

	t.Log("== predict (stage 1) → kexec → stage 2 ==")
	for _, bank := range allBanks {
		t.Logf("  %-6s predicted %x", bank, predicted[bank])
		t.Logf("  %-6s stage 2   %x", bank, stage2[bank])
	}
	t.Logf("systemd-pcrlock predict --pcr=9 (Debian 13) in stage 1:\n%s", sdOut)
	t.Logf("Keylime tpm_policy: %s", bytes.TrimSpace(kl))
}

// guestPrediction returns the values of the predict --json output the
// guest dumped as name.
func guestPrediction(t *testing.T, c *console, name string) map[string][]byte {
	t.Helper()
	b, ok := c.File(t, name)
	if !ok {
		t.Fatalf("the guest wrote no %s output", name)
	}
	var p struct {
		PCR    int               `json:"pcr"`
		Values map[string]string `json:"values"`
	}
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("%s: %v: %s", name, err, b)
	}
	if p.PCR != 9 {
		t.Errorf("%s: PCR %d", name, p.PCR)
	}
	out := map[string][]byte{}
	for bank, x := range p.Values {
		v, err := hex.DecodeString(x)
		if err != nil {
			t.Fatalf("%s: %s: %v", name, bank, err)
		}
		out[bank] = v
	}
	return out
}

// pcrlockLine is one predicted value in systemd-pcrlock predict's text
// output ("  sha256: <hex>" under "Results for PCR 9 ...").
var pcrlockLine = regexp.MustCompile(`(?m)^\s+sha256\s*:\s*([0-9a-f]{64})\s*$`)

// pcrlockValues returns the sha256 values systemd-pcrlock predict printed.
func pcrlockValues(out []byte) []string {
	var vals []string
	for _, m := range pcrlockLine.FindAllSubmatch(out, -1) {
		vals = append(vals, string(m[1]))
	}
	return vals
}
