package web

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/partnerd/partnerd/internal/store"
)

// months are the last n calendar months (UTC) up to and including now's,
// as n+1 boundaries in epoch ms.
func months(now time.Time, n int) (labels []string, bounds []int64) {
	first := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, -(n - 1), 0)
	for i := 0; i <= n; i++ {
		m := first.AddDate(0, i, 0)
		bounds = append(bounds, m.UnixMilli())
		if i < n {
			labels = append(labels, m.Format("Jan 2006"))
		}
	}
	return labels, bounds
}

// bucket is a portable SQL expression giving the month index (0..n-1) of
// col, for rows already limited to [bounds[0], bounds[n]).
func bucket(col string, bounds []int64) (string, []any) {
	var b strings.Builder
	var args []any
	b.WriteString("CASE")
	for i := 1; i < len(bounds)-1; i++ {
		fmt.Fprintf(&b, " WHEN %s < ? THEN %d", col, i-1)
		args = append(args, bounds[i])
	}
	fmt.Fprintf(&b, " ELSE %d END", len(bounds)-2)
	return b.String(), args
}

// series runs a per-month aggregate: query has "%s" where the bucket
// expression goes and ends with the window's "col >= ? AND col < ?"; its
// other arguments come first. It returns one value a month.
func series(ctx context.Context, db *store.DB, col, query string, bounds []int64, args ...any) ([]int64, error) {
	expr, bargs := bucket(col, bounds)
	out := make([]int64, len(bounds)-1)
	all := append(append(bargs, args...), bounds[0], bounds[len(bounds)-1])
	rows, err := db.Query(ctx, fmt.Sprintf(query, expr), all...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var i int
		var v int64
		if err := rows.Scan(&i, &v); err != nil {
			return nil, err
		}
		if i >= 0 && i < len(out) {
			out[i] = v
		}
	}
	return out, rows.Err()
}

// usd is an amount in US cents where it is known: the stored conversion,
// else the amount itself when it is in USD.
const usd = "COALESCE(%[1]s.amount_usd, CASE WHEN %[1]s.currency = 'USD' THEN %[1]s.amount ELSE 0 END)"

// overviewStats are a company's last twelve months.
type overviewStats struct {
	Months    []string
	Clicks    []int64
	Signups   []int64
	Customers []int64
	Revenue   []int64 // USD cents
	Rewards   []int64 // USD cents, not declined
	Top       []topPartner
}

type topPartner struct {
	Key, Name, Email   string
	Customers, Revenue int64
}

func sum(v []int64) int64 {
	var t int64
	for _, x := range v {
		t += x
	}
	return t
}

func (s *Server) overviewStats(ctx context.Context, companyID int64) (overviewStats, error) {
	labels, bounds := months(time.UnixMilli(s.now()).UTC(), 12)
	st := overviewStats{Months: labels}
	var err error
	run := func(dst *[]int64, what, col, query string) {
		if err != nil {
			return
		}
		if *dst, err = series(ctx, s.DB, col, query, bounds, companyID); err != nil {
			err = fmt.Errorf("%s by month: %w", what, err)
		}
	}
	run(&st.Clicks, "clicks", "c.created_at", `SELECT %s, COUNT(*) FROM clicks c JOIN links l ON l.id = c.link_id
		WHERE l.company_id = ? AND c.test = 0 AND c.created_at >= ? AND c.created_at < ? GROUP BY 1`)
	run(&st.Signups, "sign-ups", "created_at", `SELECT %s, COUNT(*) FROM signups
		WHERE company_id = ? AND test = 0 AND created_at >= ? AND created_at < ? GROUP BY 1`)
	run(&st.Customers, "customers", "created_at", `SELECT %s, COUNT(*) FROM customers
		WHERE company_id = ? AND test = 0 AND created_at >= ? AND created_at < ? GROUP BY 1`)
	run(&st.Revenue, "revenue", "t.created_at", `SELECT %s, SUM(`+fmt.Sprintf(usd, "t")+`) FROM transactions t
		WHERE t.company_id = ? AND t.test = 0 AND t.archived = 0 AND t.created_at >= ? AND t.created_at < ? GROUP BY 1`)
	run(&st.Rewards, "rewards", "rw.created_at", `SELECT %s, SUM(`+fmt.Sprintf(usd, "rw")+`) FROM rewards rw
		WHERE rw.company_id = ? AND rw.test = 0 AND rw.archived = 0 AND rw.status <> 'declined' AND rw.created_at >= ? AND rw.created_at < ? GROUP BY 1`)
	if err != nil {
		return st, err
	}
	rows, err := s.DB.Query(ctx, `SELECT p.key, p.first_name || ' ' || p.last_name, p.email, COUNT(DISTINCT t.customer_id), SUM(`+fmt.Sprintf(usd, "t")+`)
		FROM transactions t JOIN partnerships p ON p.id = t.partnership_id
		WHERE t.company_id = ? AND t.test = 0 AND t.archived = 0 AND t.created_at >= ? AND t.created_at < ?
		GROUP BY p.key, p.first_name, p.last_name, p.email ORDER BY 5 DESC, p.key LIMIT 10`, companyID, bounds[0], bounds[len(bounds)-1])
	if err != nil {
		return st, fmt.Errorf("top partners: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var t topPartner
		if err := rows.Scan(&t.Key, &t.Name, &t.Email, &t.Customers, &t.Revenue); err != nil {
			return st, fmt.Errorf("top partners: %w", err)
		}
		t.Name = strings.TrimSpace(t.Name)
		st.Top = append(st.Top, t)
	}
	return st, rows.Err()
}
