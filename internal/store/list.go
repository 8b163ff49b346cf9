package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/partnerd/partnerd/internal/errs"
)

// ListSpec describes one page of a keyed, cursor-paged list, the way
// PartnerStack pages: cursors are item keys, starting_after moves forward in
// the chosen order and ending_before moves back.
type ListSpec struct {
	Select string // the columns to scan, e.g. "p.id, p.key, ..."
	From   string // tables and joins, e.g. "partnerships p JOIN groups g ON g.id = p.group_id"
	KeyCol string // the item key column, e.g. "p.key"
	IDCol  string // the integer id column that breaks ties, e.g. "p.id"

	// Scope limits what a caller may see (its company, its partnership).
	// Cursors are looked up within Scope only, so an item that stops
	// matching a filter between two pages still works as a cursor.
	Scope     []string
	ScopeArgs []any
	// Filters narrow the list further.
	Filters    []string
	FilterArgs []any

	// CountFrom, when set, is From's own table and alias alone (e.g.
	// "transactions t"). The list is counted from it when every scope
	// and filter condition names only that alias's columns, instead of
	// joining every row of a long list to tables the count does not
	// need. It may be set only when From's joins neither add rows nor
	// drop them: each joins one parent row by id, through a NOT NULL
	// foreign key (JOIN) or a nullable one (LEFT JOIN).
	CountFrom string

	SortCol string // column to order by, e.g. "p.created_at"
	Desc    bool
	Limit   int
	After   string // starting_after
	Before  string // ending_before
	// CountUpTo, when set, bounds the count of the list: Total stops at
	// CountUpTo+1 (meaning "more than CountUpTo"). Counting a long list
	// exactly costs a read of every row it holds on every page.
	CountUpTo int
}

// Result is what List found besides the rows.
type Result struct {
	HasMore bool
	Total   int
}

// Scanner is what a row offers: *sql.Row and *sql.Rows both implement it.
type Scanner interface {
	Scan(dest ...any) error
}

// List runs spec and returns the page's items in page order.
func List[T any](ctx context.Context, q Querier, spec ListSpec, scan func(Scanner) (T, error)) ([]T, Result, error) {
	var res Result
	where := append(append([]string{}, spec.Scope...), spec.Filters...)
	args := append(append([]any{}, spec.ScopeArgs...), spec.FilterArgs...)
	whereSQL := "1=1"
	if len(where) > 0 {
		whereSQL = strings.Join(where, " AND ")
	}

	countFrom := spec.From
	if spec.CountFrom != "" && namesOnly(where, aliasOf(spec.CountFrom)) {
		countFrom = spec.CountFrom
	}
	count := "SELECT COUNT(*) FROM " + countFrom + " WHERE " + whereSQL
	if spec.CountUpTo > 0 {
		count = fmt.Sprintf("SELECT COUNT(*) FROM (SELECT 1 FROM %s WHERE %s LIMIT %d) bounded", countFrom, whereSQL, spec.CountUpTo+1)
	}
	// A first page counts the list. The following pages (a cursor) of a
	// list whose count was slow take the total counted for its first
	// page, if recent: paging through n rows would otherwise read all n
	// on every page.
	db, _ := q.(*DB)
	countKey := count + "\x00" + fmt.Sprint(args...)
	counted := false
	if db != nil && (spec.After != "" || spec.Before != "") {
		res.Total, counted = db.counts.get(countKey)
	}
	if !counted {
		began := time.Now()
		if err := q.QueryRow(ctx, count, args...).Scan(&res.Total); err != nil {
			return nil, res, fmt.Errorf("count list: %w", err)
		}
		if db != nil {
			db.counts.put(countKey, res.Total, time.Since(began))
		}
	}

	desc := spec.Desc
	backward := spec.Before != ""
	if backward {
		desc = !desc // walk away from the cursor, then put the page back in order
	}
	var items []T
	readPage := func(pq Querier) error {
		pageWhere := whereSQL
		pageArgs := append([]any{}, args...)
		if spec.After != "" || spec.Before != "" {
			cursor, param := spec.After, "starting_after"
			if backward {
				cursor, param = spec.Before, "ending_before"
			}
			scope := "1=1"
			if len(spec.Scope) > 0 {
				scope = strings.Join(spec.Scope, " AND ")
			}
			var sortVal, idVal int64
			err := pq.QueryRow(ctx, "SELECT "+spec.SortCol+", "+spec.IDCol+" FROM "+spec.From+" WHERE "+scope+" AND "+spec.KeyCol+" = ?",
				append(append([]any{}, spec.ScopeArgs...), cursor)...).Scan(&sortVal, &idVal)
			if err == sql.ErrNoRows {
				return errs.E(errs.Invalid, "'%s' refers to an unknown key: %s", param, cursor)
			}
			if err != nil {
				return fmt.Errorf("look up cursor: %w", err)
			}
			op := ">"
			if desc {
				op = "<"
			}
			pageWhere += " AND " + afterCursor(spec, op)
			pageArgs = append(pageArgs, sortVal, idVal)
		}
		dir := "ASC"
		if desc {
			dir = "DESC"
		}
		query := pageQuery(spec, pageWhere, dir)
		pageArgs = append(pageArgs, spec.Limit+1)
		rows, err := pq.Query(ctx, query, pageArgs...)
		if err != nil {
			return fmt.Errorf("list: %w", err)
		}
		defer rows.Close()
		items = make([]T, 0, spec.Limit)
		for rows.Next() {
			if len(items) == spec.Limit {
				res.HasMore = true
				break
			}
			item, err := scan(rows)
			if err != nil {
				return err
			}
			items = append(items, item)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("list rows: %w", err)
		}
		return nil
	}
	var err error
	if db != nil && db.dialect == Postgres && strings.Count(spec.From, " JOIN ") >= manyJoins {
		// PostgreSQL searches the order of a join of many tables on every
		// call: 28-37 ms to plan the rewards list (eleven tables) against
		// 1 ms to run it. The list's joins are written in the order to run
		// them, from the list's table to the parents of each row, so the
		// planner is told to keep it (2.4 ms to plan).
		err = db.Tx(ctx, func(tx *Tx) error {
			if _, err := tx.Exec(ctx, "SET LOCAL join_collapse_limit = 1"); err != nil {
				return fmt.Errorf("list: %w", err)
			}
			return readPage(tx)
		})
	} else {
		err = readPage(q)
	}
	if err != nil {
		return nil, res, err
	}
	if backward {
		for i, j := 0, len(items)-1; i < j; i, j = i+1, j-1 {
			items[i], items[j] = items[j], items[i]
		}
	}
	return items, res, nil
}

// manyJoins is where a list's joins are many enough for PostgreSQL's
// search of their order to cost more than the list.
const manyJoins = 6

// afterCursor is the condition that keeps the rows past a cursor, in
// the order op gives ("<" walking down). It is a row value, not
// "sort < ? OR (sort = ? AND id < ?)": with bound values and a sampled
// statistic SQLite planned that OR as two index searches and a sort of
// everything they found (1.4 s for a page of 240,000 customers) instead
// of walking the index from the cursor. Both engines search an index by
// a row value.
func afterCursor(spec ListSpec, op string) string {
	return fmt.Sprintf("(%s, %s) %s (?, ?)", spec.SortCol, spec.IDCol, op)
}

// pageQuery selects a page's rows: where holds every condition.
func pageQuery(spec ListSpec, where, dir string) string {
	return fmt.Sprintf("SELECT %s FROM %s WHERE %s ORDER BY %s %s, %s %s LIMIT ?",
		spec.Select, spec.From, where, spec.SortCol, dir, spec.IDCol, dir)
}

// countCache keeps the totals of lists whose count took long, for a
// short while: the pages after the first of the same list (same
// conditions and arguments) use them. A total read on a later page is
// thus up to ttl old; the page's rows are always read fresh.
type countCache struct {
	slow time.Duration // counts faster than this are not kept
	ttl  time.Duration
	mu   sync.Mutex
	m    map[string]countEntry
}

type countEntry struct {
	total int
	at    time.Time
}

const maxCounts = 1000

func newCountCache() *countCache {
	return &countCache{slow: 50 * time.Millisecond, ttl: 30 * time.Second, m: map[string]countEntry{}}
}

func (c *countCache) get(key string) (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok || time.Since(e.at) > c.ttl {
		return 0, false
	}
	return e.total, true
}

func (c *countCache) put(key string, total int, took time.Duration) {
	if took < c.slow {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxCounts {
		for k, e := range c.m {
			if time.Since(e.at) > c.ttl {
				delete(c.m, k)
			}
		}
		if len(c.m) >= maxCounts {
			clear(c.m)
		}
	}
	c.m[key] = countEntry{total: total, at: time.Now()}
}

// qualified finds the table aliases a condition names ("cu" in
// "cu.email = ?").
var qualified = regexp.MustCompile(`\b([A-Za-z_][A-Za-z0-9_]*)\.[A-Za-z_]`)

// aliasOf returns the alias of "table alias".
func aliasOf(tableAlias string) string {
	f := strings.Fields(tableAlias)
	return f[len(f)-1]
}

// namesOnly tells whether every condition names columns of alias only.
func namesOnly(conds []string, alias string) bool {
	for _, c := range conds {
		for _, m := range qualified.FindAllStringSubmatch(c, -1) {
			if m[1] != alias {
				return false
			}
		}
	}
	return true
}

// Page is what a caller asks of a list: its size, cursor, order and the
// standard time windows (epoch ms, inclusive).
type Page struct {
	Limit      int
	After      string
	Before     string
	OrderBy    string // an integer column of the table: created_at (default), updated_at, ...
	Desc       bool
	MinCreated *int64
	MaxCreated *int64
	MinUpdated *int64
	MaxUpdated *int64
	// CountUpTo bounds the list's count (see ListSpec.CountUpTo).
	CountUpTo int
}

// Apply copies the page's cursor, order and time windows onto spec, for the
// table aliased as alias.
func (p Page) Apply(spec *ListSpec, alias string) {
	spec.Limit = p.Limit
	spec.After = p.After
	spec.Before = p.Before
	spec.Desc = p.Desc
	spec.CountUpTo = p.CountUpTo
	col := "created_at"
	if p.OrderBy != "" {
		col = p.OrderBy // validated by the caller against the columns it allows
	}
	spec.SortCol = alias + "." + col
	window := func(v *int64, cond string) {
		if v != nil {
			spec.Filters = append(spec.Filters, alias+"."+cond)
			spec.FilterArgs = append(spec.FilterArgs, *v)
		}
	}
	window(p.MinCreated, "created_at >= ?")
	window(p.MaxCreated, "created_at <= ?")
	window(p.MinUpdated, "updated_at >= ?")
	window(p.MaxUpdated, "updated_at <= ?")
}

// Within narrows the scope (what the caller may see at all).
func (s *ListSpec) Within(cond string, args ...any) {
	s.Scope = append(s.Scope, cond)
	s.ScopeArgs = append(s.ScopeArgs, args...)
}

// WhereSet adds a filter comparing with v, unless v is empty (the caller
// did not ask for that filter).
func (s *ListSpec) WhereSet(cond, v string) {
	if v != "" {
		s.Where(cond, v)
	}
}

// WhereRef adds a filter that col refers to the row of table whose keyCol
// is key, within the company (nothing when key is ""). The row is found
// through its key's index and the list is filtered on its own column:
// the list keeps to its table's indexes and is counted alone (see
// CountFrom), where a condition on a joined table's key would join every
// row of the list first. (table, keyCol) must be unique in a company.
func (s *ListSpec) WhereRef(col, table, keyCol string, companyID int64, key string) {
	s.WhereRefAny(col, table, []string{keyCol}, companyID, key)
}

// WhereRefAny is WhereRef for a key that may be in any of keyCols (a
// customer's own key or the vendor's customer_key), each unique in a
// company.
//
// Each look-up is a scalar subquery, "col = (SELECT id …)" or
// "col IN ((SELECT id …), (SELECT id …))", not "col IN (SELECT id …)": PostgreSQL evaluates a scalar subquery once,
// before the list, and searches col's index with its id, while a
// semi-join is one more table to order among the list's joins. Past
// eight tables (join_collapse_limit) it kept the joins' written order:
// a transaction's rewards were found by joining all 1.2 million rewards
// to their eight parents first (4.6 s).
func (s *ListSpec) WhereRefAny(col, table string, keyCols []string, companyID int64, key string) {
	if key == "" {
		return
	}
	subs := make([]string, len(keyCols))
	args := make([]any, 0, 2*len(keyCols))
	for i, k := range keyCols {
		subs[i] = fmt.Sprintf("(SELECT id FROM %s WHERE company_id = ? AND %s = ?)", table, k)
		args = append(args, companyID, key)
	}
	if len(subs) == 1 {
		// "col IN ((SELECT …))" would be read as the semi-join.
		s.Where(fmt.Sprintf("%s = %s", col, subs[0]), args...)
		return
	}
	s.Where(fmt.Sprintf("%s IN (%s)", col, strings.Join(subs, ", ")), args...)
}

// Where adds a filter condition with its arguments.
func (s *ListSpec) Where(cond string, args ...any) {
	s.Filters = append(s.Filters, cond)
	s.FilterArgs = append(s.FilterArgs, args...)
}

// One runs a query that names at most one row and scans it. No row is an
// errs.NotFound saying "<what> not found", the answer every look-up by key
// gives.
func One[T any](ctx context.Context, q Querier, what string, scan func(Scanner) (T, error), query string, args ...any) (T, error) {
	v, err := scan(q.QueryRow(ctx, query, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return v, errs.E(errs.NotFound, "%s not found", what)
	}
	return v, err
}
