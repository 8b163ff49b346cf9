package store

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLaterPagesReuseASlowCount: the pages after the first of a list
// whose count was slow take its total while it is recent; a first page,
// a quick count, or an old one counts again.
func TestLaterPagesReuseASlowCount(t *testing.T) {
	ctx := context.Background()
	db := tempSQLite(t)
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

// TestAPageAfterACursorWalksTheIndex: on SQLite, with the statistics of
// a large table, the page after a cursor must be read by walking the
// (company, created_at, id) index from the cursor, not found by two
// index searches and sorted whole.
func TestAPageAfterACursorWalksTheIndex(t *testing.T) {
	ctx := context.Background()
	db := tempSQLite(t)
	for _, q := range []string{
		`CREATE TABLE list_items (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, company_id BIGINT NOT NULL, created_at BIGINT NOT NULL)`,
		`CREATE INDEX list_items_company_created ON list_items (company_id, created_at, id)`,
		`INSERT INTO list_items (id, key, company_id, created_at) VALUES (1, 'item_1', 1, 1), (2, 'item_2', 1, 2)`,
		`ANALYZE`,
		// What ANALYZE records for 240,000 customers of one company.
		`DELETE FROM sqlite_stat1 WHERE tbl = 'list_items'`,
		`INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES ('list_items', 'list_items_company_created', '240000 240000 1 1'), ('list_items', 'sqlite_autoindex_list_items_1', '240000 1')`,
		`ANALYZE sqlite_schema`, // loads the statistics
	} {
		if _, err := db.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	spec := ListSpec{Select: "i.id", From: "list_items i", KeyCol: "i.key", IDCol: "i.id", SortCol: "i.created_at", Desc: true}
	spec.Where("i.company_id = ?", 1)
	query := pageQuery(spec, "i.company_id = ? AND "+afterCursor(spec, "<"), "DESC")
	got := queryPlan(t, db, query, 1, 2, 2, 50)
	if !strings.Contains(got, "INDEX list_items_company_created (company_id=? AND created_at<?)") || strings.Contains(got, "TEMP B-TREE") || strings.Contains(got, "MULTI-INDEX OR") {
		t.Fatalf("the page after a cursor does not walk the index:\n%s\n%s", query, got)
	}
}

// TestStatisticsCountACompanysRowsWhole: Optimize reads whole indexes,
// so the statistics say how many rows one company really has. A sample
// said about a thousand, whatever the company held, and SQLite then
// planned a sort of them all instead of reading an index in order.
func TestStatisticsCountACompanysRowsWhole(t *testing.T) {
	ctx := context.Background()
	db := tempSQLite(t)
	for _, q := range []string{
		`CREATE TABLE list_items (id INTEGER PRIMARY KEY, company_id BIGINT NOT NULL, created_at BIGINT NOT NULL)`,
		`CREATE INDEX list_items_company_created ON list_items (company_id, created_at, id)`,
		`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)
		 INSERT INTO list_items (id, company_id, created_at) SELECT i, 1, i FROM n`,
	} {
		if _, err := db.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := db.Optimize(ctx); err != nil {
		t.Fatal(err)
	}
	var stat string
	if err := db.QueryRow(ctx, "SELECT stat FROM sqlite_stat1 WHERE idx = 'list_items_company_created'").Scan(&stat); err != nil {
		t.Fatalf("no statistics for the index: %v", err)
	}
	if !strings.HasPrefix(stat, "5000 5000 ") {
		t.Fatalf("the statistics of 5,000 rows of one company: %q, want \"5000 5000 …\"", stat)
	}
}

// TestRewardsOfAStatusAreCountedFromTheIndex: a list of one status's live
// rewards is counted from rewards_status alone (no read of each reward),
// and read newest first without a sort.
func TestRewardsOfAStatusAreCountedFromTheIndex(t *testing.T) {
	ctx := context.Background()
	db := tempSQLite(t)
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	spec := ListSpec{Select: "r.id", From: "rewards r", KeyCol: "r.key", IDCol: "r.id", SortCol: "r.created_at", Desc: true}
	spec.Where("r.company_id = ? AND r.status = ? AND r.archived = 0", 1, "declined")
	where := strings.Join(spec.Filters, " AND ")
	count := queryPlan(t, db, "SELECT COUNT(*) FROM (SELECT 1 FROM rewards r WHERE "+where+" LIMIT 10001) bounded", 1, "declined")
	if !strings.Contains(count, "COVERING INDEX rewards_status (company_id=? AND status=? AND archived=?)") {
		t.Errorf("the count of a status's rewards reads the table:\n%s", count)
	}
	page := queryPlan(t, db, pageQuery(spec, where, "DESC"), 1, "declined", 50)
	if !strings.Contains(page, "INDEX rewards_status (company_id=? AND status=? AND archived=?)") || strings.Contains(page, "TEMP B-TREE") {
		t.Errorf("a page of a status's rewards is not read in the index's order:\n%s", page)
	}
}

// TestAnUpgradeTakesTheStatisticsOfItsIndexes: an index a migration
// makes in a database that has statistics gets its own at once; without
// them SQLite took it for the most selective of all.
func TestAnUpgradeTakesTheStatisticsOfItsIndexes(t *testing.T) {
	ctx := context.Background()
	db := tempSQLite(t)
	if _, err := db.migrateTo(ctx, 15); err != nil {
		t.Fatal(err)
	}
	// Rewards alone, without their company and partner: the test reads
	// statistics, not the ledger.
	if _, err := db.write.ExecContext(ctx, "PRAGMA foreign_keys=OFF"); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40)
		 INSERT INTO rewards (key, company_id, partnership_id, source, amount, currency, status, ready_at, created_at, updated_at)
		 SELECT 'rew_' || i, 1, 1, 'transaction', 100, 'USD', CASE WHEN i % 2 = 0 THEN 'paid' ELSE 'declined' END, i, i, i FROM n`,
		`ANALYZE`,
	} {
		if _, err := db.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if _, err := db.write.ExecContext(ctx, "PRAGMA foreign_keys=ON"); err != nil {
		t.Fatal(err)
	}
	applied, err := db.Migrate(ctx)
	if err != nil || len(applied) == 0 {
		t.Fatalf("the upgrade: %v %v", applied, err)
	}
	var stat string
	if err := db.QueryRow(ctx, "SELECT stat FROM sqlite_stat1 WHERE idx = 'rewards_status'").Scan(&stat); err != nil {
		t.Fatalf("the index 016 made has no statistics: %v", err)
	}
	if f := strings.Fields(stat); len(f) != 6 || f[0] != "40" {
		t.Fatalf("the statistics of rewards_status after the upgrade: %q", stat)
	}
}

// queryPlan is SQLite's plan of query, a line a step.
func queryPlan(t *testing.T, db *DB, query string, args ...any) string {
	t.Helper()
	rows, err := db.Query(context.Background(), "EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

// tempSQLite opens a new SQLite database, closed when the test ends.
func tempSQLite(t *testing.T) *DB {
	t.Helper()
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "partnerd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
