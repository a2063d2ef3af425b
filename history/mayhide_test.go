package history

import (
	"crypto"
	"slices"
	"testing"

	"github.com/kexec-measured/kexec-measured/eventlog"
)

func TestMayHideAndOK(t *testing.T) {
	skip := []*eventlog.SkipError{{Offset: 10, Size: 5}}
	checks := []PCRCheck{
		{PCR: 11, Bank: crypto.SHA256, State: Mismatch},
		{PCR: 9, Bank: crypto.SHA1, State: Match},
		{PCR: 9, Bank: crypto.SHA256, State: Mismatch},
		{PCR: 11, Bank: crypto.SHA1, State: Mismatch},
	}
	for _, tc := range []struct {
		name   string
		rep    Report
		hide   []int
		wantOK bool
	}{
		{"skipped, two PCRs unexplained", Report{Skipped: skip, Checks: checks}, []int{9, 11}, false},
		{"skipped, all match", Report{Skipped: skip, Checks: checks[1:2]}, nil, false},
		{"nothing skipped", Report{Checks: checks[1:2]}, nil, true},
		{"nothing skipped, a mismatch", Report{Checks: checks}, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.rep.MayHide(); !slices.Equal(got, tc.hide) {
				t.Errorf("MayHide() = %v, want %v", got, tc.hide)
			}
			if got := tc.rep.OK(); got != tc.wantOK {
				t.Errorf("OK() = %v, want %v", got, tc.wantOK)
			}
		})
	}
}
