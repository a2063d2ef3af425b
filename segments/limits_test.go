package segments

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// zerosCpio is a cpio archive holding one file of n zero bytes: the payload
// of a decompression bomb.
func zerosCpio(n int) []byte {
	return mkcpio([]entry{{name: "zeros", data: make([]byte, n), ino: 1}}, cpioOpts{})
}

// randomCpio is a cpio archive of n random bytes: it does not compress.
func randomCpio(n int) []byte {
	rng := rand.New(rand.NewPCG(3, 4))
	data := make([]byte, n)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	return mkcpio([]entry{{name: "random", data: data, ino: 1}}, cpioOpts{})
}

// TestBombs: every compressed kind, holding more zeros than the limits
// allow, stops the walk with ErrLimit naming the limit that stopped it;
// the same kinds within the limits are walked completely.
func TestBombs(t *testing.T) {
	bomb := zerosCpio(4 << 20)
	for _, kind := range []string{KindGzip, KindBzip2, KindLZMA, KindXZ, KindLZO, KindLZ4, KindZstd} {
		img := compressKind(t, bomb, kind)
		tests := []struct {
			name string
			lim  Limits
			want string // the limit named; "" for a complete walk
		}{
			{"ratio floor", Limits{MaxRatio: 2, RatioFloor: 1 << 20}, "RatioFloor"},
			{"ratio", Limits{MaxRatio: int64(2<<20) / int64(len(img)), RatioFloor: 1}, "MaxRatio"},
			{"absolute cap", Limits{MaxRatio: -1, MaxDecompressed: 1 << 20}, "MaxDecompressed"},
			{"absolute cap below the ratio", Limits{MaxRatio: 1 << 30, MaxDecompressed: 1 << 20}, "MaxDecompressed"},
			{"time", Limits{MaxDuration: time.Nanosecond}, "MaxDuration"},
			{"within the limits", Limits{MaxRatio: 2, RatioFloor: 8 << 20}, ""},
		}
		for _, tc := range tests {
			t.Run(kind+"/"+tc.name, func(t *testing.T) {
				segs, err := walk(bytes.NewReader(img), int64(len(img)), tc.lim)
				if tc.want == "" {
					if err != nil || len(segs) != 1 || segs[0].UncompressedSize != int64(len(bomb)) || segs[0].Entries != 1 {
						t.Fatalf("walk = %v, %d segments; want one complete segment of %d bytes", err, len(segs), len(bomb))
					}
					return
				}
				if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("walk = %v, want ErrLimit naming %s", err, tc.want)
				}
			})
		}
	}
}

// TestRatioBudget pins the decompression budget of an image.
func TestRatioBudget(t *testing.T) {
	tests := []struct {
		lim  Limits
		size int64
		want int64
	}{
		{Limits{}, 1 << 20, DefaultRatioFloor},
		{Limits{}, 64 << 20, DefaultMaxRatio * 64 << 20},
		{Limits{}, 1 << 30, DefaultMaxDecompressed},
		{Limits{MaxRatio: -1}, 1, DefaultMaxDecompressed},
		{Limits{MaxRatio: 10, RatioFloor: 100}, 5, 100},
		{Limits{MaxRatio: 10, RatioFloor: 100}, 50, 500},
		{Limits{MaxRatio: 10, RatioFloor: 100, MaxDecompressed: 300}, 50, 300},
		{Limits{MaxRatio: 10, RatioFloor: 1000, MaxDecompressed: 300}, 5, 300},
		{Limits{MaxRatio: 1 << 62}, 1 << 40, DefaultMaxDecompressed}, // no overflow
	}
	for _, tc := range tests {
		if got, why := tc.lim.withDefaults().budget(tc.size); got != tc.want || why == "" {
			t.Errorf("%+v.budget(%d) = %d (%s), want %d", tc.lim, tc.size, got, why, tc.want)
		}
	}
}

// TestSegmentAndEntryLimits: an image of many members stops at MaxSegments,
// one of many entries at MaxEntries, each named.
func TestSegmentAndEntryLimits(t *testing.T) {
	member := compressKind(t, mkcpio(sampleFiles("m", 1), cpioOpts{}), KindGzip)
	img := bytes.Repeat(member, 50)
	segs, err := walk(bytes.NewReader(img), int64(len(img)), Limits{MaxSegments: 20})
	if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "MaxSegments") || len(segs) != 20 {
		t.Fatalf("walk = %d segments, %v; want 20 and ErrLimit naming MaxSegments", len(segs), err)
	}
	entries := make([]entry, 5000)
	for i := range entries {
		entries[i] = entry{name: fmt.Sprintf("f%d", i)}
	}
	long := mkcpio(entries, cpioOpts{})
	r := NewReader(bytes.NewReader(long), int64(len(long)), Limits{MaxDuration: time.Millisecond})
	time.Sleep(2 * time.Millisecond)
	r.lim.MaxDuration, r.index = 0, 0 // past the deadline only inside the cpio walk
	if _, err := r.parse(r.at(0), &Segment{}); !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "MaxDuration") {
		t.Fatalf("walk of 5000 entries past the deadline = %v, want ErrLimit naming MaxDuration", err)
	}
	many := mkcpio(sampleFiles("e", 100), cpioOpts{})
	if _, err := walk(bytes.NewReader(many), int64(len(many)), Limits{MaxEntries: 50}); !errors.Is(err, ErrLimit) {
		t.Fatalf("walk of 100 entries with MaxEntries 50 = %v, want ErrLimit", err)
	}
}

// TestZstdWindowRefused: a zstd frame asking for a window above maxDict is
// mapped but not decoded (a corrupt warning), and nothing of that size is
// allocated.
func TestZstdWindowRefused(t *testing.T) {
	// Frame header: no single segment, no checksum; window descriptor
	// exponent 18 (2^28 = 256 MiB); one last raw block of 1 byte.
	img := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 18 << 3, 1<<0 | 0<<1 | 1<<3, 0, 0, 'x'}
	segs, err := walk(bytes.NewReader(img), int64(len(img)), Limits{})
	if err != nil || len(segs) != 1 || segs[0].Kind != KindZstd || !hasWarning(segs[0], WarnCorrupt) {
		t.Fatalf("walk = %v, %+v; want one zstd segment with a corrupt warning", err, segs)
	}
}

// TestInspectLimitWarning: a limit that cuts the walk short is a WarnLimit
// warning of the report, which names the limit, and the report is not clean.
func TestInspectLimitWarning(t *testing.T) {
	img := append(mkcpio(sampleFiles("early", 1), cpioOpts{}), compressKind(t, zerosCpio(4<<20), KindZstd)...)
	for _, streamed := range []bool{false, true} {
		var out bytes.Buffer
		opt := InspectOptions{Limits: Limits{MaxRatio: 2, RatioFloor: 1 << 20}}
		if streamed {
			opt.Out = NewJSONWriter(&out)
		}
		rep, err := Inspect(bytes.NewReader(img), int64(len(img)), opt)
		if !errors.Is(err, ErrLimit) || rep.Clean() || len(rep.Warnings) != 1 || rep.Warnings[0].Code != WarnLimit ||
			!strings.Contains(rep.Warnings[0].Message, "RatioFloor") || rep.Warnings[0].Offset == 0 {
			t.Fatalf("streamed %v: Inspect = %v, warnings %+v; want one limit warning at the zstd segment naming RatioFloor", streamed, err, rep.Warnings)
		}
		if streamed && !strings.Contains(out.String(), `"code":"limit"`) {
			t.Errorf("the JSON lacks the limit warning: %s", out.String())
		}
	}
}

// TestRealImagesWithinLimits: images that do not compress, and ones of
// ordinary text, are far from the default limits.
func TestRealImagesWithinLimits(t *testing.T) {
	raw := append(randomCpio(1<<20), mkcpio(sampleFiles("text", 200), cpioOpts{})...)
	for _, kind := range []string{KindGzip, KindXZ, KindZstd} {
		img := compressKind(t, raw, kind)
		segs, err := walk(bytes.NewReader(img), int64(len(img)), Limits{})
		if err != nil || len(segs) != 1 || segs[0].UncompressedSize != int64(len(raw)) {
			t.Errorf("%s: walk = %v, %d segments", kind, err, len(segs))
		}
	}
}

var _ io.ReaderAt = (*bytes.Reader)(nil)
