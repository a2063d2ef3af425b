package loader

import (
	"crypto"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"sync"
)

// pipeChunk is how much of an input is copied into its memfd before every
// bank hashes it from the read-only mapping, while the copy of the next
// chunk goes on. Measured with BenchmarkPipeline (docs/measurement.md).
const pipeChunk = 2 << 20

// pipeAhead bounds how many copied chunks may wait for the slowest bank.
const pipeAhead = 4

// input is one file to copy into a memfd and, with banks, to hash there.
type input struct {
	path     string
	src      *os.File
	size     int64    // what fstat gave (or the range's size): exactly this many bytes are copied
	base     int64    // where in src they start: 0, or a range's offset (Request.KernelRange, InitrdRanges)
	fileSize int64    // what fstat gave for src: the file must end there
	pad      int64    // zero bytes written to dst before the input (alignment)
	dst      *os.File // the memfd, written at its file offset
	view     []byte   // the input's bytes in the read-only mapping of dst
}

// end is where the input's file must end: what fstat gave for it, or the
// end of the copied bytes when fileSize is not set.
func (in input) end() int64 {
	if in.fileSize > 0 {
		return in.fileSize
	}
	return in.base + in.size
}

// chunk is a copied range of one input, as the banks see it.
type chunk struct {
	in   int    // index of the input
	data []byte // a slice of the read-only mapping of the memfd
	last bool   // the input's last chunk (an empty input has one, empty)
}

// pipeline copies inputs into memfds and digests them on the way.
type pipeline struct {
	chunk      int64  // bytes per chunk; pipeChunk in loads, others in benchmarks
	afterChunk func() // if not nil, runs after each chunk is copied (tests rewrite the source there)
}

// copyAndDigest copies the inputs, in order, into their memfds, p.chunk
// bytes at a time, and returns each input's digest in every bank (sums[i][b]
// for inputs[i] and banks[b]; nil sums without banks). Each chunk is hashed
// in every bank from the read-only mapping of the memfd after it was
// written, on one goroutine per bank, while the next chunks are copied:
// what is hashed is what the memfd holds, and nothing writes it again
// (docs/measurement.md).
func (p pipeline) copyAndDigest(inputs []input, banks []crypto.Hash) ([][][]byte, error) {
	for _, h := range banks {
		if !h.Available() {
			return nil, fmt.Errorf("PCR bank %v: hash algorithm not available", h)
		}
	}
	sums := make([][][]byte, len(inputs))
	for i := range sums {
		sums[i] = make([][]byte, len(banks))
	}
	queues := make([]chan chunk, len(banks))
	var wg sync.WaitGroup
	for b, bank := range banks {
		queues[b] = make(chan chunk, pipeAhead)
		wg.Add(1)
		go func(q <-chan chunk) {
			defer wg.Done()
			var h hash.Hash
			for c := range q {
				if h == nil {
					h = bank.New()
				}
				h.Write(c.data)
				if c.last {
					sums[c.in][b] = h.Sum(nil)
					h = nil
				}
			}
		}(queues[b])
	}
	err := p.copyInputs(inputs, func(c chunk) {
		if p.afterChunk != nil {
			p.afterChunk()
		}
		for _, q := range queues {
			q <- c
		}
	})
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
	if err != nil {
		return nil, err
	}
	return sums, nil
}

// copyInputs copies every input into its memfd chunk by chunk, handing
// each chunk to copied once it is in the memfd, and checks that each input
// ends where fstat said. Errors are *InputError naming the input.
func (p pipeline) copyInputs(inputs []input, copied func(chunk)) error {
	if p.chunk <= 0 {
		p.chunk = pipeChunk
	}
	var buf []byte
	for i, in := range inputs {
		if in.pad > 0 {
			if err := writeZeros(in.dst, in.pad); err != nil {
				return err
			}
		}
		var off int64
		for {
			n := min(in.size-off, p.chunk)
			if m, err := copyRange(in.dst, in.src, in.base+off, n, &buf); errors.Is(err, io.ErrUnexpectedEOF) {
				return &InputError{Path: in.path, Err: fmt.Errorf("%w: it ended after %d of the %d bytes fstat gave (it shrank, or it has no fixed size, like the files of /proc and /sys)", ErrSizeChanged, off+m, in.size)}
			} else if err != nil {
				return &InputError{Path: in.path, Err: err}
			}
			c := chunk{in: i, data: in.view[off : off+n], last: off+n == in.size}
			if c.last {
				// The end is the end: nothing more to read, the size unchanged.
				if err := checkEnd(in.src, in.end()); err != nil {
					return &InputError{Path: in.path, Err: err}
				}
			}
			copied(c)
			off += n
			if c.last {
				break
			}
		}
	}
	return nil
}
