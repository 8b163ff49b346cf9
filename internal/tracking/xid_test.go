package tracking

import (
	"regexp"
	"testing"
	"time"
)

func TestXIDsSortByTimeAndDiffer(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	re := regexp.MustCompile(`^[0-9A-Za-z]{14}$`)
	prev := ""
	seen := map[string]bool{}
	for i := 0; i < 2000; i++ {
		x := newXID(t0.Add(time.Duration(i/10) * time.Millisecond)) // ten ids per millisecond
		if !re.MatchString(x) {
			t.Fatalf("xid %q is not 14 base62 characters", x)
		}
		if seen[x] {
			t.Fatalf("xid %q made twice", x)
		}
		seen[x] = true
		if i%10 == 0 && x[:7] <= prev {
			t.Fatalf("xid prefix %q does not sort after %q", x[:7], prev)
		}
		prev = x[:7]
	}
}
