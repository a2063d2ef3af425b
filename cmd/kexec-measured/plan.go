package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"

	"github.com/kexec-measured/kexec-measured/eventlog"
	"github.com/kexec-measured/kexec-measured/loader"
)

// planJSON is the --dry-run --json output.
type planJSON struct {
	DryRun  bool              `json:"dryRun"`
	Kernel  *componentJSON    `json:"kernel,omitempty"`
	Initrd  *initrdJSON       `json:"initrd,omitempty"`
	Cmdline *string           `json:"cmdline,omitempty"`
	PCR     int               `json:"pcr"`
	Banks   []string          `json:"banks"`
	Events  []json.RawMessage `json:"events"`
	Steps   []string          `json:"steps"`
}

type componentJSON struct {
	Path    string `json:"path"`
	Offset  int64  `json:"offset"`
	Size    int64  `json:"size"`
	Section string `json:"section,omitempty"`
}

type initrdJSON struct {
	Size       int64           `json:"size"`
	Components []componentJSON `json:"components"`
}

// writePlanJSON prints the plan of a dry run as one JSON object whose
// events are the log records exactly as they would be appended.
func writePlanJSON(w io.Writer, o *options, res *loader.Result) error {
	p := planJSON{DryRun: true, PCR: o.pcr, Banks: []string{}, Events: []json.RawMessage{}, Steps: res.Steps}
	if p.Steps == nil {
		p.Steps = []string{}
	}
	if im := res.Image; im != nil {
		p.Kernel = &componentJSON{Path: im.Kernel.Path, Size: im.Kernel.Size, Section: im.Kernel.Section}
		p.Initrd = &initrdJSON{Size: im.InitrdSize, Components: []componentJSON{}}
		for _, c := range im.Initrd {
			p.Initrd.Components = append(p.Initrd.Components, componentJSON{Path: c.Path, Offset: c.Offset, Size: c.Size, Section: c.Section})
		}
		p.Cmdline = &im.Cmdline
		for _, h := range im.Banks {
			name, err := eventlog.AlgName(h)
			if err != nil {
				return err
			}
			p.Banks = append(p.Banks, name)
		}
		for _, m := range im.Measurements {
			b, err := m.Record.Encode()
			if err != nil {
				return err
			}
			p.Events = append(p.Events, trimRecord(b))
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(p)
}

// trimRecord strips the JSON-SEQ framing (RS ... LF) of an encoded record.
func trimRecord(b []byte) json.RawMessage {
	if len(b) > 0 && b[0] == 0x1e {
		b = b[1:]
	}
	if len(b) > 0 && b[len(b)-1] == '\n' {
		b = b[:len(b)-1]
	}
	return b
}

// writePlanText prints the plan of a dry run for a person.
func writePlanText(w io.Writer, o *options, res *loader.Result) error {
	fmt.Fprintln(w, "dry run: nothing loaded, no TPM extend, no log write")
	if im := res.Image; im != nil {
		fmt.Fprintf(w, "kernel   %s%s (%d bytes)\n", im.Kernel.Path, sectionSuffix(im.Kernel.Section), im.Kernel.Size)
		fmt.Fprintf(w, "initrd   %d bytes in %d component(s)\n", im.InitrdSize, len(im.Initrd))
		for i, c := range im.Initrd {
			fmt.Fprintf(w, "  %2d  offset %10d  size %10d  %s%s\n", i, c.Offset, c.Size, c.Path, sectionSuffix(c.Section))
		}
		fmt.Fprintf(w, "cmdline  %q\n", im.Cmdline)
		fmt.Fprintf(w, "events   PCR %d\n", o.pcr)
		for _, m := range im.Measurements {
			desc := m.Event
			if m.Path != "" {
				desc += " " + m.Path
			}
			desc += sectionSuffix(m.Section)
			if m.Segment != nil {
				desc += fmt.Sprintf(" segment %d (%s)", *m.Segment, m.Kind)
			}
			fmt.Fprintf(w, "  %s  offset %d size %d\n", desc, m.Offset, m.Size)
			for _, h := range im.Banks {
				name, _ := eventlog.AlgName(h)
				fmt.Fprintf(w, "    %-7s %s\n", name, hex.EncodeToString(m.Sums[h]))
			}
		}
	}
	if len(res.Steps) > 0 {
		fmt.Fprintln(w, "would:")
		for _, s := range res.Steps {
			fmt.Fprintf(w, "  %s\n", s)
		}
	}
	return nil
}

// sectionSuffix spells a UKI section after a path: " [.linux]".
func sectionSuffix(section string) string {
	if section == "" {
		return ""
	}
	return " [" + section + "]"
}
