package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// TestLaterPagesReuseASlowCount: the pages after the first of a list
// whose count was slow take its total while it is recent; a first page,
// a quick count, or an old one counts again.
func TestLaterPagesReuseASlowCount(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "partnerd.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(ctx, `CREATE TABLE list_items (id BIGINT PRIMARY KEY, key TEXT NOT NULL, created_at BIGINT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	next := 1
	add := func(n int) {
		for ; n > 0; n-- {
			if _, err := db.Exec(ctx, "INSERT INTO list_items (id, key, created_at) VALUES (?, ?, ?)", next, fmt.Sprintf("item_%d", next), next); err != nil {
				t.Fatal(err)
			}
			next++
		}
	}
	total := func(after string) int {
		t.Helper()
		spec := ListSpec{Select: "i.id", From: "list_items i", KeyCol: "i.key", IDCol: "i.id", SortCol: "i.created_at", Limit: 2, After: after}
		spec.Where("i.created_at > ?", 0)
		_, res, err := List(ctx, db, spec, func(sc Scanner) (int64, error) {
			var id int64
			return id, sc.Scan(&id)
		})
		if err != nil {
			t.Fatal(err)
		}
		return res.Total
	}
	add(10)

	// Quick counts are never kept.
	total("")
	add(1)
	if got := total("item_1"); got != 11 {
		t.Fatalf("a quick count was reused: total %d, want 11", got)
	}

	// Every count is "slow" from here.
	db.counts.slow = 0
	if got := total(""); got != 11 {
		t.Fatalf("first page: total %d, want 11", got)
	}
	add(5)
	if got := total("item_1"); got != 11 {
		t.Errorf("a later page counted again: total %d, want the first page's 11", got)
	}
	if got := total(""); got != 16 {
		t.Errorf("a first page reused a count: total %d, want 16", got)
	}
	add(1)
	db.counts.ttl = time.Nanosecond
	time.Sleep(time.Millisecond)
	if got := total("item_1"); got != 17 {
		t.Errorf("an old count was reused: total %d, want 17", got)
	}
}
