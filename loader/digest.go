package loader

import (
	"crypto"
	"fmt"
	"runtime"
	"sort"
	"sync"
)

// digestAll computes every bank's digest of every measurement that does not
// have them yet (those of whole inputs were computed while copying, see
// copyAndDigest), reading each measured range once per bank from its
// read-only mapping. The (measurement,
// bank) pairs are spread over GOMAXPROCS workers, largest first, so that the
// banks of a large component are hashed in parallel.
func digestAll(ms []Measurement, banks []crypto.Hash) error {
	for _, h := range banks {
		if !h.Available() {
			return fmt.Errorf("PCR bank %v: hash algorithm not available", h)
		}
	}
	type job struct{ m, b int }
	jobs := make([]job, 0, len(ms)*len(banks))
	sums := make([][][]byte, len(ms))
	for i := range ms {
		sums[i] = make([][]byte, len(banks))
		for b, h := range banks {
			if s, ok := ms[i].Sums[h]; ok {
				sums[i][b] = s
				continue
			}
			jobs = append(jobs, job{i, b})
		}
	}
	sort.SliceStable(jobs, func(x, y int) bool { return len(ms[jobs[x].m].data) > len(ms[jobs[y].m].data) })

	queue := make(chan job)
	var wg sync.WaitGroup
	workers := min(runtime.GOMAXPROCS(0), len(jobs))
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range queue {
				h := banks[j.b].New()
				h.Write(ms[j.m].data)
				sums[j.m][j.b] = h.Sum(nil)
			}
		}()
	}
	for _, j := range jobs {
		queue <- j
	}
	close(queue)
	wg.Wait()

	for i := range ms {
		ms[i].Sums = make(map[crypto.Hash][]byte, len(banks))
		for b, h := range banks {
			ms[i].Sums[h] = sums[i][b]
		}
	}
	return nil
}
