package segments

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

func TestCpioReader(t *testing.T) {
	es := []entry{
		{name: "dir", mode: 0o40755, nlink: 2},
		{name: "dir/sh", mode: 0o120777, data: []byte("/bin/busybox")},
		{name: "dir/a", data: []byte("odd length data")},
		{name: "h1", ino: 9, nlink: 2},
		{name: "h2", ino: 9, nlink: 2, data: []byte("data on the last link")},
		{name: strings.Repeat("n", 4095), data: []byte("x")},
	}
	for _, o := range []cpioOpts{{}, {crc: true}, {upper: true}, {crc: true, upper: true}, {noTrailer: true}} {
		raw := mkcpio(es, o)
		// Two archives with NUL padding between them, as in one member.
		stream := append(append(append([]byte{}, raw...), make([]byte, 16)...), raw...)
		cr := NewCpioReader(bytes.NewReader(stream), Limits{})
		for round := 0; round < 2; round++ {
			for i, e := range es {
				h, err := cr.Next()
				if err != nil {
					t.Fatalf("%+v round %d entry %d: %v", o, round, i, err)
				}
				data, err := io.ReadAll(cr)
				if err != nil {
					t.Fatalf("%+v entry %q: reading data: %v", o, e.name, err)
				}
				if h.Name != e.name || !bytes.Equal(data, e.data) || h.Size != int64(len(e.data)) {
					t.Errorf("%+v entry %d = %q (%d bytes %q), want %q %q", o, i, h.Name, h.Size, data, e.name, e.data)
				}
				wantLink, wantHard := "", ""
				if e.mode&modeTypeMask == modeLink {
					wantLink = string(e.data)
				}
				if e.name == "h2" || (e.name == "h1" && round == 1 && o.noTrailer) {
					// Without TRAILER!!! the link table carries over to
					// the second archive, as in the kernel.
					wantHard = "h1"
				}
				if h.Linkname != wantLink || h.HardLink != wantHard {
					t.Errorf("%+v entry %q: link %q hard link %q, want %q %q", o, e.name, h.Linkname, h.HardLink, wantLink, wantHard)
				}
			}
		}
		if h, err := cr.Next(); err != io.EOF {
			t.Errorf("%+v: after the last entry: %+v, %v; want io.EOF", o, h, err)
		}
		if cr.Entries() != 2*len(es) || cr.Trailer() == o.noTrailer || len(cr.Warnings()) != 0 {
			t.Errorf("%+v: %d entries, trailer %v, warnings %v", o, cr.Entries(), cr.Trailer(), cr.Warnings())
		}
	}
}

func TestCpioReaderErrors(t *testing.T) {
	good := mkcpio(sampleFiles("e", 2), cpioOpts{})
	first := mkcpio([]entry{{name: "first", data: []byte("1234")}}, cpioOpts{noTrailer: true})
	badHex := bytes.Clone(good)
	copy(badHex[6:14], "0000000g")
	// newc writes no name longer than the kernel's PATH_MAX: write the
	// longest and patch its c_namesize (header bytes 94-101) one up.
	longName := mkcpio([]entry{{name: strings.Repeat("x", 4095)}}, cpioOpts{})
	copy(longName[94:102], fmt.Sprintf("%08x", 4097))
	tests := []struct {
		name    string
		data    []byte
		lim     Limits
		want    error
		entries int // entries returned before the error
	}{
		{"junk after NULs", append(append(bytes.Clone(first), 0, 0, 0, 0), "junk"...), Limits{}, ErrJunk, 1},
		{"misaligned header after NULs", append(append(bytes.Clone(first), 0, 0), good...), Limits{}, ErrJunk, 1},
		{"odc magic", append(bytes.Clone(first), "070707"+strings.Repeat("0", 104)...), Limits{}, ErrHeader, 1},
		{"bad hex", badHex, Limits{}, ErrHeader, 0},
		{"name too long", longName, Limits{}, ErrHeader, 0},
		{"truncated data", first[:118], Limits{}, io.ErrUnexpectedEOF, 1},
		{"truncated second header", good[:200], Limits{}, io.ErrUnexpectedEOF, 1},
		{"truncated header", first[:50], Limits{}, io.ErrUnexpectedEOF, 0},
		{"too many entries", good, Limits{MaxEntries: 2}, ErrLimit, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cr := NewCpioReader(bytes.NewReader(tc.data), tc.lim)
			n := 0
			var err error
			for {
				if _, err = cr.Next(); err != nil {
					break
				}
				n++
			}
			if !errors.Is(err, tc.want) || n != tc.entries {
				t.Fatalf("after %d entries: %v; want %d entries then %v", n, err, tc.entries, tc.want)
			}
			if !strings.Contains(err.Error(), "offset") {
				t.Errorf("error %q does not name the offset", err)
			}
			if _, again := cr.Next(); again != err {
				t.Errorf("error not sticky: %v then %v", err, again)
			}
		})
	}
}

func TestCpioChecksum(t *testing.T) {
	es := []entry{{name: "a", data: []byte("abc")}, {name: "b", data: []byte("defg")}}
	cr := NewCpioReader(bytes.NewReader(mkcpio(es, cpioOpts{crc: true, badSum: true})), Limits{})
	for {
		if _, err := cr.Next(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	w := cr.Warnings()
	if len(w) != 1 || w[0].Code != WarnCpioChecksum || !strings.Contains(w[0].Message, `"a"`) {
		t.Fatalf("warnings = %v, want one checksum warning for \"a\"", w)
	}
}
