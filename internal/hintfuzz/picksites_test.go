package hintfuzz

import (
	"math/rand"
	"testing"
)

// TestPickSites: the short budget asks for one site per hint; picking used to slice
// with n-2 = -1 and panicked (go test -short ./internal/hintfuzz).
func TestPickSites(t *testing.T) {
	ss := make([]Site, 5)
	for i := range ss {
		ss[i].Rank = i
	}
	rng := rand.New(rand.NewSource(1))
	for _, c := range []struct{ sites, n, want int }{
		{5, 1, 1}, {5, 2, 2}, {5, 3, 3}, {5, 9, 5}, {1, 3, 1}, {2, 1, 1}, {2, 3, 2},
	} {
		got := pickSites(ss[:c.sites], c.n, rng)
		if len(got) != c.want {
			t.Errorf("%d sites, n = %d: picked %d, want %d", c.sites, c.n, len(got), c.want)
			continue
		}
		seen := map[int]bool{}
		for _, s := range got {
			if seen[s.Rank] {
				t.Errorf("%d sites, n = %d: site %d picked twice", c.sites, c.n, s.Rank)
			}
			seen[s.Rank] = true
		}
		if got[0].Rank != 0 || (c.want > 1 && got[1].Rank != c.sites-1) {
			t.Errorf("%d sites, n = %d: picked %v, want the first, then the last", c.sites, c.n, got)
		}
	}
}
