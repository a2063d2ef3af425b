package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"

	"github.com/kexec-measured/kexec-measured/eventlog"
	"github.com/kexec-measured/kexec-measured/loader"
	"github.com/kexec-measured/kexec-measured/pcr"
)

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

// writePlanJSON prints the plan of a dry run as one JSON object with the
// fields dryRun, kernel, initrd, cmdline (these three only when a load was
// prepared), pcr, banks, events and steps. Each event is a log record's
// JSON text exactly as it would be appended (eventlog.Record.MarshalJSON:
// compact, no HTML escaping), one per line; the other fields are indented
// and not HTML-escaped either.
func writePlanJSON(w io.Writer, o *options, res *loader.Result) error {
	type field struct {
		name  string
		value any
	}
	fields := []field{{"dryRun", true}}
	banks := []string{}
	var events [][]byte
	if im := res.Image; im != nil {
		initrd := initrdJSON{Size: im.InitrdSize, Components: []componentJSON{}}
		for _, c := range im.Initrd {
			initrd.Components = append(initrd.Components, componentJSON{Path: c.Path, Offset: c.Offset, Size: c.Size, Section: c.Section})
		}
		fields = append(fields,
			field{"kernel", componentJSON{Path: im.Kernel.Path, Size: im.Kernel.Size, Section: im.Kernel.Section}},
			field{"initrd", initrd},
			field{"cmdline", im.Cmdline})
		for _, h := range im.Banks {
			name, err := pcr.Name(h)
			if err != nil {
				return err
			}
			banks = append(banks, name)
		}
		for _, m := range im.Measurements {
			text, err := m.Record.MarshalJSON()
			if err != nil {
				return err
			}
			events = append(events, text)
		}
	}
	steps := res.Steps
	if steps == nil {
		steps = []string{}
	}
	fields = append(fields, field{"pcr", o.pcr}, field{"banks", banks})

	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("  ", "  ")
	b.WriteString("{\n")
	for _, f := range fields {
		fmt.Fprintf(&b, "  %q: ", f.name)
		if err := enc.Encode(f.value); err != nil {
			return err
		}
		b.Truncate(b.Len() - 1) // the Encoder's newline
		b.WriteString(",\n")
	}
	b.WriteString(`  "events": [`)
	for i, e := range events {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("\n    ")
		b.Write(e)
	}
	if len(events) > 0 {
		b.WriteString("\n  ")
	}
	b.WriteString("],\n  \"steps\": ")
	if err := enc.Encode(steps); err != nil {
		return err
	}
	b.Truncate(b.Len() - 1)
	b.WriteString("\n}\n")
	_, err := w.Write(b.Bytes())
	return err
}

// writePlanText prints the plan of a dry run for a person.
func writePlanText(w io.Writer, o *options, res *loader.Result) error {
	var b bytes.Buffer
	fmt.Fprintln(&b, "dry run: nothing loaded, no TPM extend, no log write")
	if im := res.Image; im != nil {
		fmt.Fprintf(&b, "kernel   %s%s (%d bytes)\n", im.Kernel.Path, sectionSuffix(im.Kernel.Section), im.Kernel.Size)
		fmt.Fprintf(&b, "initrd   %d bytes in %d component(s)\n", im.InitrdSize, len(im.Initrd))
		for i, c := range im.Initrd {
			fmt.Fprintf(&b, "  %2d  offset %10d  size %10d  %s%s\n", i, c.Offset, c.Size, c.Path, sectionSuffix(c.Section))
		}
		fmt.Fprintf(&b, "cmdline  %q\n", im.Cmdline)
		fmt.Fprintf(&b, "events   PCR %d\n", o.pcr)
		for _, m := range im.Measurements {
			fmt.Fprintf(&b, "  %s  offset %d size %d\n", describeEvent(m.KexecContent), m.Offset, m.Size)
			for _, h := range im.Banks {
				name, err := pcr.Name(h)
				if err != nil {
					return err
				}
				fmt.Fprintf(&b, "    %-7s %s\n", name, hex.EncodeToString(m.Sums[h]))
			}
		}
	}
	if len(res.Steps) > 0 {
		fmt.Fprintln(&b, "would:")
		for _, s := range res.Steps {
			fmt.Fprintf(&b, "  %s\n", s)
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

// sectionSuffix spells a UKI section after a path: " [.linux]".
func sectionSuffix(section string) string {
	if section == "" {
		return ""
	}
	return " [" + section + "]"
}

// describeEvent names an event for the text outputs of a dry run and of
// predict: "kexec-initrd /boot/initrd.img segment 1 (gzip)".
func describeEvent(c eventlog.KexecContent) string {
	desc := c.Event
	if c.Path != "" {
		desc += " " + c.Path
	}
	desc += sectionSuffix(c.Section)
	if c.Segment != nil {
		desc += fmt.Sprintf(" segment %d (%s)", *c.Segment, c.Kind)
	}
	return desc
}
