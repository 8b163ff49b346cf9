package stats

import (
	"context"
	"fmt"
	"strings"
)

// Month is a company's (or a partnership's) month.
type Month struct {
	Month                      string
	Clicks, Signups, Customers int64
	RevenueUSD, RewardsUSD     int64
	Rewards                    map[string]Count // by status
}

// Count is a number of rewards and their sum in US cents.
type Count struct{ N, USD int64 }

const monthCols = `SUM(clicks), SUM(signups), SUM(customers), SUM(revenue_usd), SUM(rewards_usd),
	SUM(hold_n), SUM(hold_usd), SUM(pending_n), SUM(pending_usd), SUM(approved_n), SUM(approved_usd),
	SUM(declined_n), SUM(declined_usd), SUM(paid_n), SUM(paid_usd)`

func scanMonth(sc interface{ Scan(...any) error }, m *Month, lead ...any) error {
	var st [10]int64
	dst := append(lead, &m.Clicks, &m.Signups, &m.Customers, &m.RevenueUSD, &m.RewardsUSD)
	for i := range st {
		dst = append(dst, &st[i])
	}
	if err := sc.Scan(dst...); err != nil {
		return err
	}
	m.Rewards = map[string]Count{}
	for i, s := range rewardStatuses {
		m.Rewards[s] = Count{N: st[2*i], USD: st[2*i+1]}
	}
	return nil
}

// Months sums a company's months from..to (YYYY-MM, inclusive), or one
// partnership's when partnership is not 0. Months with nothing are absent.
func (s *Service) Months(ctx context.Context, company, partnership int64, from, to string) ([]Month, error) {
	where, args := "company_id = ? AND month >= ? AND month <= ?", []any{company, from, to}
	if partnership != 0 {
		where += " AND partnership_id = ?"
		args = append(args, partnership)
	}
	rows, err := s.db.Query(ctx, "SELECT month, "+coalesced()+" FROM stats_months WHERE "+where+" GROUP BY month ORDER BY month", args...)
	if err != nil {
		return nil, fmt.Errorf("read monthly stats: %w", err)
	}
	defer rows.Close()
	var out []Month
	for rows.Next() {
		var m Month
		if err := scanMonth(rows, &m, &m.Month); err != nil {
			return nil, fmt.Errorf("scan monthly stats: %w", err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// Total sums a partnership's (or with partnership 0, a company's) whole
// history.
func (s *Service) Total(ctx context.Context, company, partnership int64) (Month, error) {
	where, args := "company_id = ?", []any{company}
	if partnership != 0 {
		where += " AND partnership_id = ?"
		args = append(args, partnership)
	}
	var m Month
	if err := scanMonth(s.db.QueryRow(ctx, "SELECT "+coalesced()+" FROM stats_months WHERE "+where, args...), &m); err != nil {
		return m, fmt.Errorf("read total stats: %w", err)
	}
	return m, nil
}

// coalesced is monthCols with empty sums read as 0.
func coalesced() string {
	parts := strings.Split(monthCols, ",")
	for i, p := range parts {
		parts[i] = "COALESCE(" + strings.TrimSpace(p) + ", 0)"
	}
	return strings.Join(parts, ", ")
}

// Partner is a partnership's sums over some months.
type Partner struct {
	PartnershipID         int64
	Customers, RevenueUSD int64
}

// TopPartners are a company's n partnerships with the most revenue in
// from..to.
func (s *Service) TopPartners(ctx context.Context, company int64, from, to string, n int) ([]Partner, error) {
	rows, err := s.db.Query(ctx, `SELECT partnership_id, SUM(customers), SUM(revenue_usd) FROM stats_months
		WHERE company_id = ? AND month >= ? AND month <= ? GROUP BY partnership_id HAVING SUM(revenue_usd) <> 0
		ORDER BY 3 DESC, 1 LIMIT ?`, company, from, to, n)
	if err != nil {
		return nil, fmt.Errorf("read top partners: %w", err)
	}
	defer rows.Close()
	var out []Partner
	for rows.Next() {
		var p Partner
		if err := rows.Scan(&p.PartnershipID, &p.Customers, &p.RevenueUSD); err != nil {
			return nil, fmt.Errorf("scan top partners: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// LinkClicks are the clicks of links, by link id.
func (s *Service) LinkClicks(ctx context.Context, ids []int64) (map[int64]int64, error) {
	out := map[int64]int64{}
	if len(ids) == 0 {
		return out, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := s.db.Query(ctx, "SELECT link_id, clicks FROM stats_links WHERE link_id IN ("+strings.TrimSuffix(strings.Repeat("?, ", len(ids)), ", ")+")", args...)
	if err != nil {
		return nil, fmt.Errorf("read link clicks: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, n int64
		if err := rows.Scan(&id, &n); err != nil {
			return nil, err
		}
		out[id] = n
	}
	return out, rows.Err()
}
