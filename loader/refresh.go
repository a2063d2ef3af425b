package loader

import (
	"bytes"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/kexec-measured/kexec-measured/eventlog"
	"github.com/kexec-measured/kexec-measured/pcr"
)

// LoadState is what a refresh needs to re-load a measured load exactly:
// its inputs and the records it logged. A measured load (not -p) returns
// it in Result.State; the command keeps it in a file (docs/handoff.md).
type LoadState struct {
	Kernel  string   `json:"kernel"`
	Initrds []string `json:"initrds"`
	Cmdline string   `json:"cmdline"`
	// KernelRange, InitrdRanges and CmdlineSection are the load's
	// Request fields of a boot entry (a UKI's sections).
	KernelRange    *Range   `json:"kernelRange,omitempty"`
	InitrdRanges   []*Range `json:"initrdRanges,omitempty"`
	CmdlineSection string   `json:"cmdlineSection,omitempty"`
	Split          bool     `json:"splitInitrd,omitempty"`
	Debug          bool     `json:"debug,omitempty"`
	PCR            int      `json:"pcr"`
	Log            string   `json:"log"`
	// Records are the JSON texts of the load's records, as appended to
	// the log.
	Records []string `json:"records"`
}

var (
	// ErrRefreshChanged reports an input that no longer has the digest
	// its record logged: a refresh then loads nothing.
	ErrRefreshChanged = errors.New("loader: refresh: an input changed since it was measured")
	// ErrRefreshNotLogged reports a load whose records are not (or no
	// longer) in the log.
	ErrRefreshNotLogged = errors.New("loader: refresh: the load's records are not in the log")
)

// newState returns the state of a measured load of req, or nil for a load
// that cannot be refreshed (a panic kernel, no handoff).
func newState(req Request, im *Image, pcrIndex int, logPath string) (*LoadState, error) {
	if req.Panic || im.Handoff == nil {
		return nil, nil
	}
	st := &LoadState{Kernel: req.Kernel, Initrds: slices.Clone(req.Initrds), Cmdline: im.Cmdline, Split: req.SplitInitrd,
		KernelRange: req.KernelRange, InitrdRanges: req.InitrdRanges, CmdlineSection: req.CmdlineSection,
		Debug: req.Debug, PCR: pcrIndex, Log: logPath}
	for _, m := range im.Measurements {
		text, err := m.Record.MarshalJSON()
		if err != nil {
			return nil, err
		}
		st.Records = append(st.Records, string(text))
	}
	return st, nil
}

// Refresh re-loads the load that st describes with a fresh handoff, built
// from the log as it stands now, so that records appended since the load
// (an orderly shutdown goes on measuring) reach the next boot. It extends
// nothing: it reads the inputs again into new memfds, checks every
// measurement against the digests the load logged (ErrRefreshChanged),
// checks that those records are in the log at log (ErrRefreshNotLogged),
// builds the handoff under the log's lock, and calls kexec_file_load with
// the same command line. l.Handoff and log are required; l.PCRs is not
// used. On any error nothing is loaded: the earlier load, with its older
// handoff, stays loaded.
func (l *Loader) Refresh(st *LoadState, log EventLog, logBytes func() ([]byte, error)) (*Result, error) {
	res := &Result{}
	if l.Handoff == nil || log == nil {
		return res, errors.New("loader: refresh needs a handoff builder and the log")
	}
	var recs []eventlog.Record
	for i, text := range st.Records {
		r, err := eventlog.ReadAll(bytes.NewReader([]byte("\x1e" + text + "\n")))
		if err != nil || len(r) != 1 {
			return res, fmt.Errorf("loader: refresh: record %d of the load state: %v", i, err)
		}
		recs = append(recs, r[0])
	}
	banks := recordBanks(recs)
	if len(banks) == 0 {
		return res, fmt.Errorf("%w: the logged records carry no digest we compute", ErrRefreshNotLogged)
	}
	copyBanks := banks
	if st.Split {
		copyBanks = nil
	}
	if st.InitrdRanges != nil && len(st.InitrdRanges) != len(st.Initrds) {
		return res, fmt.Errorf("loader: refresh: %d initrd ranges for %d initrds", len(st.InitrdRanges), len(st.Initrds))
	}
	im, err := readInputs(st.Kernel, st.Initrds, st.KernelRange, st.InitrdRanges, copyBanks, pipeline{chunk: pipeChunk, afterChunk: l.afterChunk})
	if err != nil {
		return res, err
	}
	res.Image = im
	im.Cmdline, im.CmdlineSection = st.Cmdline, st.CmdlineSection
	if err := im.addMeasurements(st.Split, true, l.Limits, l.warn()); err != nil {
		return res, err
	}
	if len(im.Measurements) != len(recs) {
		return res, fmt.Errorf("%w: %d events now, %d logged", ErrRefreshChanged, len(im.Measurements), len(recs))
	}
	im.Banks = banks
	if err := digestAll(im.Measurements, banks); err != nil {
		return res, err
	}
	for i := range im.Measurements {
		m := &im.Measurements[i]
		if err := sameMeasurement(m, recs[i], st.PCR); err != nil {
			return res, fmt.Errorf("%w: %s: %v", ErrRefreshChanged, m.describe(), err)
		}
		m.Record = recs[i]
	}

	var handoff []byte
	err = l.step(res, "lock the log, check the load's records are in it, build the handoff", func() error {
		if err := log.Lock(); err != nil && !errors.Is(err, eventlog.ErrInterrupted) {
			return fmt.Errorf("locking the measurement log: %w", err)
		}
		defer log.Unlock()
		raw, err := logBytes()
		if err != nil {
			return fmt.Errorf("reading the measurement log: %w", err)
		}
		if err := inOrder(raw, recs); err != nil {
			return err
		}
		handoff, err = l.Handoff.Build()
		if err != nil {
			return fmt.Errorf("building the handoff: %w", err)
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	desc := fmt.Sprintf("append the handoff component to the initrd at offset %d", align4(im.InitrdSize))
	if err := l.step(res, desc, func() error { return im.appendHandoff(handoff, l.memAvailable()) }); err != nil {
		return res, err
	}
	if err := im.Seal(); err != nil {
		return res, err
	}
	flags := 0
	if st.Debug {
		flags |= FlagDebug
	}
	desc = fmt.Sprintf("kexec_file_load(kernel memfd, %s, %q, %s)", initrdDesc(im), st.Cmdline, flagNames(flags))
	err = l.step(res, desc, func() error {
		return l.Sys.KexecFileLoad(int(im.kernel.Fd()), int(im.initrd.Fd()), st.Cmdline, flags)
	})
	return res, err
}

// sameMeasurement checks a measurement made now against its logged record:
// same PCR, the same event, offset and size, and in every bank the record
// has, the same digest.
func sameMeasurement(m *Measurement, rec eventlog.Record, pcrIndex int) error {
	if rec.PCR != pcrIndex {
		return fmt.Errorf("logged on PCR %d, not %d", rec.PCR, pcrIndex)
	}
	want, err := eventlog.NewKexecRecord(pcrIndex, m.Sums, eventlog.KexecContent{})
	if err != nil {
		return err
	}
	for _, d := range want.Digests {
		h, _ := pcr.Parse(d.HashAlg)
		got, err := rec.Sum(h)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, m.Sums[h]) {
			return fmt.Errorf("%s digest is %x now, %x when measured", d.HashAlg, m.Sums[h], got)
		}
	}
	var c eventlog.KexecContent
	if err := jsonUnmarshalContent(rec.Content, &c); err != nil {
		return err
	}
	if c.Event != m.Event || c.Offset != m.Offset || c.Size != m.Size || c.Section != m.Section {
		return fmt.Errorf("now %s at %d, %d bytes; logged %s at %d, %d bytes", m.Event, m.Offset, m.Size, c.Event, c.Offset, c.Size)
	}
	return nil
}

// inOrder checks that the records' texts are in the log, in order.
func inOrder(raw []byte, recs []eventlog.Record) error {
	rest := raw
	for i, r := range recs {
		b, err := r.Encode()
		if err != nil {
			return err
		}
		j := bytes.Index(rest, b)
		if j < 0 {
			return fmt.Errorf("%w: record %d (%s) is missing", ErrRefreshNotLogged, i, r.Content)
		}
		rest = rest[j+len(b):]
	}
	return nil
}

// recordBanks returns the banks we compute that the first record carries.
func recordBanks(recs []eventlog.Record) []crypto.Hash {
	var out []crypto.Hash
	for _, h := range pcr.Banks() {
		if _, err := recs[0].Sum(h); err == nil {
			out = append(out, h)
		}
	}
	return out
}

func jsonUnmarshalContent(b []byte, c *eventlog.KexecContent) error {
	if err := json.Unmarshal(b, c); err != nil {
		return fmt.Errorf("the logged record's content: %w", err)
	}
	return nil
}

// DefaultStatePath is where the command keeps the LoadState of the last
// measured load (in /run: it does not outlive the boot).
const DefaultStatePath = "/run/kexec-measured/load.json"
