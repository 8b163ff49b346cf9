package stats

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/partnerd/partnerd/internal/store"
)

// An append-only table and the rollup column its rows add to.
type appended struct {
	table, column string
	perLink       bool // clicks also count per link
}

var appendOnly = []appended{
	{table: "clicks", column: "clicks", perLink: true},
	{table: "signups", column: "signups"},
}

type bucket struct {
	company, partnership int64
	month                string
}

// refreshAppended adds the rows appended since the last refresh, up to an
// id seen at least Horizon ago.
func (s *Service) refreshAppended(ctx context.Context, l *lease, t appended) error {
	done, err := s.state(ctx, s.db, t.table+".done")
	if err != nil {
		return err
	}
	seen, err := s.state(ctx, s.db, t.table+".seen")
	if err != nil {
		return err
	}
	seenAt, err := s.state(ctx, s.db, t.table+".seen_at")
	if err != nil {
		return err
	}
	var newest int64
	if err := s.db.QueryRow(ctx, "SELECT COALESCE(MAX(id), 0) FROM "+t.table).Scan(&newest); err != nil {
		return fmt.Errorf("newest %s: %w", t.table, err)
	}
	upTo := done
	switch {
	case s.Horizon == 0:
		upTo = newest
	case seen > done && s.now()-seenAt >= s.Horizon.Milliseconds():
		upTo = seen
	}
	for lo := done; lo < upTo; {
		hi := min(lo+clickChunk, upTo)
		if err := s.addRange(ctx, l, t, lo, hi); err != nil {
			return err
		}
		lo = hi
	}
	if upTo >= seen && newest > upTo {
		// Caught up with the last mark: set the next one.
		if err := s.setState(ctx, s.db, t.table+".seen", newest); err != nil {
			return err
		}
		return s.setState(ctx, s.db, t.table+".seen_at", s.now())
	}
	return nil
}

// addRange adds the rows with ids in (lo, hi], and moves the table's mark
// to hi, in one transaction.
func (s *Service) addRange(ctx context.Context, l *lease, t appended, lo, hi int64) error {
	cols := "id, company_id, partnership_id, created_at"
	if t.perLink {
		cols += ", link_id"
	}
	return s.db.Tx(ctx, func(tx *store.Tx) error {
		if err := s.renew(ctx, tx, l); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, "SELECT "+cols+" FROM "+t.table+" WHERE id > ? AND id <= ? AND test = 0 AND partnership_id IS NOT NULL", lo, hi)
		if err != nil {
			return fmt.Errorf("read %s: %w", t.table, err)
		}
		counts := map[bucket]int64{}
		links := map[int64]int64{}
		for rows.Next() {
			var id, company, partnership, at, link int64
			dst := []any{&id, &company, &partnership, &at}
			if t.perLink {
				dst = append(dst, &link)
			}
			if err := rows.Scan(dst...); err != nil {
				rows.Close()
				return fmt.Errorf("scan %s: %w", t.table, err)
			}
			counts[bucket{company, partnership, month(at)}]++
			if t.perLink {
				links[link]++
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read %s: %w", t.table, err)
		}
		for b, n := range counts {
			if _, err := tx.Exec(ctx, `INSERT INTO stats_months (company_id, partnership_id, month, `+t.column+`) VALUES (?, ?, ?, ?)
				ON CONFLICT (company_id, month, partnership_id) DO UPDATE SET `+t.column+` = stats_months.`+t.column+` + excluded.`+t.column,
				b.company, b.partnership, b.month, n); err != nil {
				return fmt.Errorf("add %s: %w", t.table, err)
			}
		}
		for l, n := range links {
			if _, err := tx.Exec(ctx, `INSERT INTO stats_links (link_id, clicks) VALUES (?, ?)
				ON CONFLICT (link_id) DO UPDATE SET clicks = stats_links.clicks + excluded.clicks`, l, n); err != nil {
				return fmt.Errorf("add link clicks: %w", err)
			}
		}
		return s.setState(ctx, tx, t.table+".done", hi)
	})
}

// A table whose rows change, and how a month of it is recomputed: query
// returns (partnership_id, status or ”, count, usd) for one company and
// month; set names the columns it owns and how a row's values fill them.
type changing struct {
	table   string
	columns []string
	query   string
	fill    func(status string, n, usd int64) map[string]int64
}

const usd = "COALESCE(%[1]s.amount_usd, CASE WHEN %[1]s.currency = 'USD' THEN %[1]s.amount ELSE 0 END)"

var rewardStatuses = []string{"hold", "pending", "approved", "declined", "paid"}

var mutable = []changing{
	{table: "customers", columns: []string{"customers"},
		query: `SELECT partnership_id, '', COUNT(*), 0 FROM customers WHERE company_id = ? AND created_at >= ? AND created_at < ? AND test = 0
			GROUP BY partnership_id`,
		fill: func(_ string, n, _ int64) map[string]int64 { return map[string]int64{"customers": n} }},
	{table: "transactions", columns: []string{"revenue_usd"},
		query: `SELECT t.partnership_id, '', COUNT(*), SUM(` + fmt.Sprintf(usd, "t") + `) FROM transactions t
			WHERE t.company_id = ? AND t.created_at >= ? AND t.created_at < ? AND t.test = 0 AND t.archived = 0 GROUP BY t.partnership_id`,
		fill: func(_ string, _, v int64) map[string]int64 { return map[string]int64{"revenue_usd": v} }},
	{table: "rewards", columns: rewardColumns(),
		query: `SELECT r.partnership_id, r.status, COUNT(*), SUM(` + fmt.Sprintf(usd, "r") + `) FROM rewards r
			WHERE r.company_id = ? AND r.created_at >= ? AND r.created_at < ? AND r.test = 0 AND r.archived = 0 GROUP BY r.partnership_id, r.status`,
		fill: func(status string, n, v int64) map[string]int64 {
			m := map[string]int64{status + "_n": n, status + "_usd": v}
			if status != "declined" {
				m["rewards_usd"] = v
			}
			return m
		}},
}

func rewardColumns() []string {
	cols := []string{"rewards_usd"}
	for _, st := range rewardStatuses {
		cols = append(cols, st+"_n", st+"_usd")
	}
	return cols
}

// refreshChanged recomputes the months whose rows changed since the last
// refresh, company by company (the updated_at indexes lead with it).
func (s *Service) refreshChanged(ctx context.Context, l *lease, t changing) error {
	mark, err := s.state(ctx, s.db, t.table+".updated")
	if err != nil {
		return err
	}
	since := max(0, mark-margin.Milliseconds())
	companies, err := s.companies(ctx)
	if err != nil {
		return err
	}
	newest := mark
	for _, company := range companies {
		rows, err := s.db.Query(ctx, "SELECT created_at, updated_at FROM "+t.table+" WHERE company_id = ? AND updated_at > ?", company, since)
		if err != nil {
			return fmt.Errorf("read changed %s: %w", t.table, err)
		}
		months := map[string]bool{}
		for rows.Next() {
			var created, updated int64
			if err := rows.Scan(&created, &updated); err != nil {
				rows.Close()
				return fmt.Errorf("scan changed %s: %w", t.table, err)
			}
			months[month(created)] = true
			newest = max(newest, updated)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read changed %s: %w", t.table, err)
		}
		list := make([]string, 0, len(months))
		for m := range months {
			list = append(list, m)
		}
		sort.Strings(list)
		for _, m := range list {
			if err := s.recompute(ctx, l, t, company, m); err != nil {
				return err
			}
		}
	}
	return s.setState(ctx, s.db, t.table+".updated", newest)
}

// recompute sets a table's columns of one company's month from its rows.
func (s *Service) recompute(ctx context.Context, l *lease, t changing, company int64, m string) error {
	start, end, err := monthRange(m)
	if err != nil {
		return err
	}
	return s.db.Tx(ctx, func(tx *store.Tx) error {
		if err := s.renew(ctx, tx, l); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, t.query, company, start, end)
		if err != nil {
			return fmt.Errorf("recompute %s %s: %w", t.table, m, err)
		}
		sums := map[int64]map[string]int64{}
		for rows.Next() {
			var partnership, n int64
			var status string
			var v *int64
			if err := rows.Scan(&partnership, &status, &n, &v); err != nil {
				rows.Close()
				return fmt.Errorf("scan %s %s: %w", t.table, m, err)
			}
			if sums[partnership] == nil {
				sums[partnership] = map[string]int64{}
			}
			val := int64(0)
			if v != nil {
				val = *v
			}
			for col, x := range t.fill(status, n, val) {
				sums[partnership][col] += x
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("recompute %s %s: %w", t.table, m, err)
		}
		zero := make([]string, len(t.columns))
		for i, c := range t.columns {
			zero[i] = c + " = 0"
		}
		if _, err := tx.Exec(ctx, "UPDATE stats_months SET "+strings.Join(zero, ", ")+" WHERE company_id = ? AND month = ?", company, m); err != nil {
			return fmt.Errorf("clear %s %s: %w", t.table, m, err)
		}
		for partnership, cols := range sums {
			names := make([]string, 0, len(cols))
			for c := range cols {
				names = append(names, c)
			}
			sort.Strings(names)
			vals := []any{company, partnership, m}
			sets := make([]string, len(names))
			for i, c := range names {
				vals = append(vals, cols[c])
				sets[i] = c + " = excluded." + c
			}
			q := "INSERT INTO stats_months (company_id, partnership_id, month, " + strings.Join(names, ", ") + ") VALUES (?, ?, ?" +
				strings.Repeat(", ?", len(names)) + ") ON CONFLICT (company_id, month, partnership_id) DO UPDATE SET " + strings.Join(sets, ", ")
			if _, err := tx.Exec(ctx, q, vals...); err != nil {
				return fmt.Errorf("write %s %s: %w", t.table, m, err)
			}
		}
		return nil
	})
}

func (s *Service) companies(ctx context.Context) ([]int64, error) {
	rows, err := s.db.Query(ctx, "SELECT id FROM companies ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("list companies: %w", err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}
