package hub

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/partnerd/partnerd/internal/store"
	"github.com/partnerd/partnerd/internal/store/storetest"
)

// TestStoredRecordsAreProbedByIndexInGenericPlans checks the plans
// PostgreSQL keeps for the per-page statements once it stops planning
// them for each call: made on an empty table, as on a first sync, they must
// still look each key up in the unique index rather than filter the
// whole stream (which cost 45 ms a page at 8,000 records and grew with
// the data).
func TestStoredRecordsAreProbedByIndexInGenericPlans(t *testing.T) {
	for _, eng := range storetest.Engines(t) {
		if eng.Name != "postgres" {
			continue // SQLite plans each statement with its values
		}
		ctx := context.Background()
		db := eng.Open(t)
		plan := func(name, types, query, execute string) string {
			var lines []string
			err := db.Tx(ctx, func(tx *store.Tx) error {
				for _, q := range []string{"SET LOCAL plan_cache_mode = force_generic_plan", "PREPARE " + name + types + " AS " + query} {
					if _, err := tx.Exec(ctx, q); err != nil {
						return err
					}
				}
				l, err := explain(ctx, tx, "EXECUTE "+name+execute)
				if err != nil {
					return err
				}
				lines = l
				_, err = tx.Exec(ctx, "DEALLOCATE "+name)
				return err
			})
			if err != nil {
				t.Fatalf("explain %s: %v", name, err)
			}
			return strings.Join(lines, "\n")
		}
		lookup := plan("lookup", "(text[], bigint, text)", lookupStoredPG, "('{a,b}', 1, 'customers')")
		if !strings.Contains(lookup, "Nested Loop") ||
			!strings.Contains(lookup, "Index Cond: ((connection_id = $2) AND (stream = $3) AND (key = k.key))") ||
			strings.Contains(lookup, "Filter") {
			t.Errorf("the stored-record lookup's generic plan does not probe the index a key:\n%s", lookup)
		}
		// Marking records seen: PostgreSQL keeps a generic plan after
		// five calls, made from the table's size then. The test makes
		// that plan on an empty table, grows the table, and asks again,
		// in a transaction set up as a sweep's page is.
		s := testService(t, db, DefaultConfig)
		c := connect(t, s, fakeProgram(t))
		seen, _ := inList(store.Postgres, "UPDATE hub_records SET seen_at = ?, deleted_at = NULL WHERE id", "bigint", nil, []int64{1})
		var update string
		err := db.Tx(ctx, func(tx *store.Tx) error {
			if err := planEachCall(ctx, tx); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, "PREPARE seen(bigint, bigint[]) AS "+seen); err != nil {
				return err
			}
			for range 6 {
				if _, err := tx.Exec(ctx, "EXECUTE seen(1, '{1,2}')"); err != nil {
					return err
				}
			}
			var recs []record
			for i := range 3000 {
				k := fmt.Sprintf("cust_%05d", i)
				recs = append(recs, record{key: k, raw: `{"key":"` + k + `"}`})
			}
			if _, err := insertFresh(ctx, tx, c.ID, "customers", recs, 1, 1, false); err != nil {
				return err
			}
			lines, err := explain(ctx, tx, "EXECUTE seen(1, '{1,2}')")
			update = strings.Join(lines, "\n")
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(update, "Index Cond: (id = ANY ('{1,2}'::bigint[]))") || strings.Contains(update, "Seq Scan") {
			t.Errorf("marking records seen does not use the primary key once the table has grown:\n%s", update)
		}
	}
}

// explain returns the lines of PostgreSQL's plan for query, trimmed.
func explain(ctx context.Context, tx *store.Tx, query string) ([]string, error) {
	rows, err := tx.Query(ctx, "EXPLAIN "+query)
	if err != nil {
		return nil, fmt.Errorf("explain: %w", err)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var l string
		if err := rows.Scan(&l); err != nil {
			return nil, fmt.Errorf("explain: %w", err)
		}
		lines = append(lines, strings.TrimSpace(l))
	}
	return lines, rows.Err()
}
