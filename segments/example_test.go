package segments

import (
	"bytes"
	"fmt"
	"io"
	"log"
)

// An image of two uncompressed cpio archives, the second after NUL padding
// and followed by bytes that are not an archive. The early archive is
// 110+38 (header, name) + 5+3 (data, padding) + 124 (TRAILER!!!) = 280
// bytes, then 8 NULs; the second is 110+6 + 10+2 = 128 bytes.
func ExampleReader() {
	early := mkcpio([]entry{{name: "kernel/x86/microcode/GenuineIntel.bin", data: []byte("ucode")}}, cpioOpts{})
	main := mkcpio([]entry{{name: "init", data: []byte("#!/bin/sh\n")}}, cpioOpts{noTrailer: true})
	img := append(append(append(early, make([]byte, 8)...), main...), "junk"...)

	r := NewReader(bytes.NewReader(img), int64(len(img)), Limits{})
	for {
		s, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%d: %s at %d, %d bytes (%d padding), %d entries, trailer %v\n", s.Index, s.Kind, s.Offset, s.Size, s.Padding, s.Entries, s.Trailer)
		for _, w := range s.Warnings {
			fmt.Println("  ", w.Code)
		}
	}
	// Output:
	// 0: cpio at 0, 288 bytes (8 padding), 1 entries, trailer true
	// 1: cpio at 288, 128 bytes (0 padding), 1 entries, trailer false
	// 2: unknown at 416, 4 bytes (0 padding), 0 entries, trailer false
	//    unknown-bytes
}
