package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/partnerd/partnerd/internal/store"
	"github.com/partnerd/partnerd/internal/store/storetest"
)

// TestListCountsFromItsTableWhenItCan: a list whose conditions name only
// its own table is counted from CountFrom, without the joins; one that
// filters on a joined table is counted through From. The test breaks
// CountFrom's contract on purpose (its join drops the rows whose company
// does not exist) so that the two counts differ and show which was used.
func TestListCountsFromItsTableWhenItCan(t *testing.T) {
	for _, eng := range storetest.Engines(t) {
		t.Run(eng.Name, func(t *testing.T) {
			ctx := context.Background()
			db := eng.Open(t)
			if _, err := db.Exec(ctx, `CREATE TABLE list_items (id BIGINT PRIMARY KEY, key TEXT NOT NULL, company_id BIGINT NOT NULL, created_at BIGINT NOT NULL)`); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec(ctx, "INSERT INTO companies (id, key, name, created_at, updated_at) VALUES (1, 'comp_a', 'A', 1, 1)"); err != nil {
				t.Fatal(err)
			}
			// Items 1..6 belong to company 1; 7..10 to a company that does not exist.
			for i := 1; i <= 10; i++ {
				company := 1
				if i > 6 {
					company = 99
				}
				if _, err := db.Exec(ctx, "INSERT INTO list_items (id, key, company_id, created_at) VALUES (?, ?, ?, ?)", i, fmt.Sprintf("item_%d", i), company, i); err != nil {
					t.Fatal(err)
				}
			}
			list := func(filter string, args ...any) store.Result {
				t.Helper()
				spec := store.ListSpec{Select: "i.id", From: "list_items i JOIN companies c ON c.id = i.company_id", CountFrom: "list_items i",
					KeyCol: "i.key", IDCol: "i.id", SortCol: "i.created_at", Limit: 3}
				spec.Where(filter, args...)
				items, res, err := store.List(ctx, db, spec, func(sc store.Scanner) (int64, error) {
					var id int64
					return id, sc.Scan(&id)
				})
				if err != nil {
					t.Fatal(err)
				}
				if len(items) != 3 || !res.HasMore {
					t.Fatalf("%s: page %v, has_more %v", filter, items, res.HasMore)
				}
				return res
			}
			if res := list("i.created_at >= ?", 0); res.Total != 10 {
				t.Errorf("conditions on the list's own table: total %d, want 10 (counted from list_items alone)", res.Total)
			}
			if res := list("c.key = ?", "comp_a"); res.Total != 6 {
				t.Errorf("a condition on a joined table: total %d, want 6 (counted through the join)", res.Total)
			}
			if res := list("(i.created_at >= ? OR c.name = ?)", 0, "A"); res.Total != 6 {
				t.Errorf("a condition naming both tables: total %d, want 6 (counted through the join)", res.Total)
			}
		})
	}
}
