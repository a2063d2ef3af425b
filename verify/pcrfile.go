package verify

import (
	"bytes"
	"crypto"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/kexec-measured/kexec-measured/pcr"
)

// PCRValues are PCR values per bank, indexed by PCR; a nil value is a PCR
// that was not read or not given.
type PCRValues map[crypto.Hash][pcr.Count][]byte

// MaxPCRFileSize bounds a --pcrs file.
const MaxPCRFileSize = 1 << 20

// ErrPCRFile reports a PCR values file that does not parse.
var ErrPCRFile = errors.New("verify: bad PCR values file")

// Banks returns the banks of v in crypto.Hash order.
func (v PCRValues) Banks() []crypto.Hash {
	out := make([]crypto.Hash, 0, len(v))
	for h := range v {
		out = append(out, h)
	}
	slices.Sort(out)
	return out
}

// ParsePCRValues parses PCR values in one of the forms docs/verify.md
// lists: our JSON ({"pcrs":{"sha256":{"9":"<hex>",...},...}}, what
// `kexec-measured export` writes), or the YAML that tpm2_pcrread prints
// ("  sha256:" then "    9 : 0x<hex>" lines) and that tpm2_quote and
// tpm2_checkquote print under a top-level "pcrs:" key (their other keys
// are skipped). The parser is strict: a bank or PCR given twice, a PCR
// outside 0-23, a value that is not hex of the bank's size, an unknown
// bank, a tab, or no value at all is an error wrapping ErrPCRFile that
// names source and the line.
func ParsePCRValues(data []byte, source string) (PCRValues, error) {
	if len(data) > MaxPCRFileSize {
		return nil, fmt.Errorf("%w: %s: %d bytes, more than the limit of %d", ErrPCRFile, source, len(data), MaxPCRFileSize)
	}
	var v PCRValues
	var err error
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) > 0 && t[0] == '{' {
		v, err = parsePCRJSON(data)
	} else {
		v, err = parsePCRYAML(data)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrPCRFile, source, err)
	}
	return v, nil
}

// setPCR stores one value, checking index, size and duplicates.
func (v PCRValues) setPCR(bank crypto.Hash, index, value string, prefixed bool) error {
	n, err := strconv.Atoi(index)
	if err != nil || strconv.Itoa(n) != index {
		return fmt.Errorf("PCR index %q is not a decimal number", index)
	}
	if err := pcr.Check(n); err != nil {
		return err
	}
	if prefixed {
		var ok bool
		if value, ok = strings.CutPrefix(value, "0x"); !ok {
			return fmt.Errorf("PCR %d: value %q does not start with 0x", n, value)
		}
	}
	b, err := hex.DecodeString(value)
	if err != nil || len(b) != bank.Size() {
		return fmt.Errorf("PCR %d: value %q is not %d bytes of hex", n, value, bank.Size())
	}
	vals := v[bank]
	if vals[n] != nil {
		return fmt.Errorf("PCR %d given twice", n)
	}
	vals[n] = b
	v[bank] = vals
	return nil
}

func parsePCRJSON(data []byte) (PCRValues, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var w struct {
		PCRs map[string]map[string]string `json:"pcrs"`
	}
	if err := dec.Decode(&w); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON object")
	}
	v := PCRValues{}
	for name, pcrs := range w.PCRs {
		h, err := pcr.Parse(name)
		if err != nil {
			return nil, err
		}
		if _, dup := v[h]; dup {
			return nil, fmt.Errorf("bank %s given twice", name)
		}
		v[h] = [pcr.Count][]byte{}
		for i, val := range pcrs {
			if err := v.setPCR(h, i, val, false); err != nil {
				return nil, fmt.Errorf("bank %s: %w", name, err)
			}
		}
	}
	if len(v) == 0 {
		return nil, errors.New("no PCR values")
	}
	return v, nil
}

// yamlNode is one "key: value" line of the YAML subset tpm2-tools prints,
// with the lines indented below it.
type yamlNode struct {
	line       int
	key, value string
	plain      bool // the line has a key and a colon (not a list item or a bare scalar)
	children   []*yamlNode
}

// parseYAMLTree nests lines by indentation. A list item ("- ...") counts as
// one space deeper than its dash, so that YAML's lists at their parent's
// indentation (as tpm2_eventlog prints them) nest under the parent.
func parseYAMLTree(data []byte) (*yamlNode, error) {
	root := &yamlNode{}
	type level struct {
		indent int
		node   *yamlNode
	}
	stack := []level{{-1, root}}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if strings.ContainsRune(line, '\t') {
			return nil, fmt.Errorf("line %d: a tab", i+1)
		}
		body := strings.TrimLeft(line, " ")
		if body == "" || body[0] == '#' || line == "---" || line == "..." {
			continue
		}
		indent := len(line) - len(body)
		n := &yamlNode{line: i + 1}
		if strings.HasPrefix(body, "- ") || body == "-" {
			indent++
		} else if k, val, ok := strings.Cut(body, ":"); ok {
			n.key, n.value, n.plain = strings.TrimSpace(k), strings.TrimSpace(val), true
		}
		for stack[len(stack)-1].indent >= indent {
			stack = stack[:len(stack)-1]
		}
		parent := stack[len(stack)-1].node
		parent.children = append(parent.children, n)
		stack = append(stack, level{indent, n})
	}
	return root, nil
}

func parsePCRYAML(data []byte) (PCRValues, error) {
	root, err := parseYAMLTree(data)
	if err != nil {
		return nil, err
	}
	v := PCRValues{}
	var banks []*yamlNode
	sawPCRs := false
	for _, n := range root.children {
		switch {
		case !n.plain:
			return nil, fmt.Errorf("line %d: not a \"key: value\" line", n.line)
		case n.key == "pcrs":
			if sawPCRs || len(banks) > 0 {
				return nil, fmt.Errorf("line %d: a second set of PCR values", n.line)
			}
			sawPCRs = true
			if n.value != "" {
				return nil, fmt.Errorf("line %d: \"pcrs:\" with a value", n.line)
			}
			for _, b := range n.children {
				if _, err := pcr.Parse(b.key); err != nil || !b.plain {
					return nil, fmt.Errorf("line %d: %q is not a PCR bank (want sha1, sha256, sha384 or sha512)", b.line, b.key)
				}
			}
			banks = n.children
		default:
			if _, err := pcr.Parse(n.key); err == nil {
				if sawPCRs {
					return nil, fmt.Errorf("line %d: a bank outside \"pcrs:\"", n.line)
				}
				banks = append(banks, n)
			}
			// any other key (tpm2_quote's "quoted:", "signature:", ...)
			// is skipped with what is indented below it
		}
	}
	for _, b := range banks {
		h, _ := pcr.Parse(b.key)
		if b.value != "" {
			return nil, fmt.Errorf("line %d: bank %s: a value on the bank's line", b.line, b.key)
		}
		if _, dup := v[h]; dup {
			return nil, fmt.Errorf("line %d: bank %s given twice", b.line, b.key)
		}
		v[h] = [pcr.Count][]byte{}
		for _, p := range b.children {
			if !p.plain || len(p.children) > 0 {
				return nil, fmt.Errorf("line %d: bank %s: not a \"PCR : 0xVALUE\" line", p.line, b.key)
			}
			if err := v.setPCR(h, p.key, p.value, true); err != nil {
				return nil, fmt.Errorf("line %d: bank %s: %w", p.line, b.key, err)
			}
		}
	}
	if len(v) == 0 {
		return nil, errors.New("no PCR values (want a bank such as \"sha256:\" at the top or under \"pcrs:\")")
	}
	return v, nil
}

// EncodePCRValues writes v in our JSON form, banks in crypto.Hash order and
// PCRs in numeric order, one value a line; PCRs without a value are left
// out. ParsePCRValues reads it back.
func EncodePCRValues(w io.Writer, v PCRValues) error {
	var b strings.Builder
	b.WriteString("{\n  \"pcrs\": {")
	for i, h := range v.Banks() {
		name, err := pcr.Name(h)
		if err != nil {
			return fmt.Errorf("verify: encode PCR values: %w", err)
		}
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "\n    %q: {", name)
		first := true
		for n, val := range v[h] {
			if val == nil {
				continue
			}
			if !first {
				b.WriteString(",")
			}
			first = false
			fmt.Fprintf(&b, "\n      \"%d\": \"%x\"", n, val)
		}
		b.WriteString("\n    }")
	}
	b.WriteString("\n  }\n}\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("verify: write PCR values: %w", err)
	}
	return nil
}
