package web

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/partnerd/partnerd/internal/stats"
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

// overviewStats are a company's last twelve months.
type overviewStats struct {
	Months    []string
	Clicks    []int64
	Signups   []int64
	Customers []int64
	Revenue   []int64 // USD cents
	Rewards   []int64 // USD cents, not declined
	Top       []topPartner
	AsOf      int64 // when the rollups were brought up to date
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
	from, to := time.UnixMilli(bounds[0]).UTC().Format("2006-01"), time.UnixMilli(bounds[len(bounds)-2]).UTC().Format("2006-01")
	st := overviewStats{Months: labels}
	list, err := s.Stats.Months(ctx, companyID, 0, from, to)
	if err != nil {
		return st, err
	}
	byMonth := map[string]stats.Month{}
	for _, m := range list {
		byMonth[m.Month] = m
	}
	for i := range labels {
		m := byMonth[time.UnixMilli(bounds[i]).UTC().Format("2006-01")]
		st.Clicks = append(st.Clicks, m.Clicks)
		st.Signups = append(st.Signups, m.Signups)
		st.Customers = append(st.Customers, m.Customers)
		st.Revenue = append(st.Revenue, m.RevenueUSD)
		st.Rewards = append(st.Rewards, m.RewardsUSD)
	}
	top, err := s.Stats.TopPartners(ctx, companyID, from, to, 10)
	if err != nil {
		return st, err
	}
	for _, t := range top {
		var tp topPartner
		if err := s.DB.QueryRow(ctx, "SELECT key, first_name || ' ' || last_name, email FROM partnerships WHERE id = ? AND company_id = ?",
			t.PartnershipID, companyID).Scan(&tp.Key, &tp.Name, &tp.Email); err != nil {
			return st, fmt.Errorf("read top partner: %w", err)
		}
		tp.Name, tp.Customers, tp.Revenue = strings.TrimSpace(tp.Name), t.Customers, t.RevenueUSD
		st.Top = append(st.Top, tp)
	}
	if st.AsOf, err = s.Stats.RefreshedAt(ctx); err != nil {
		return st, err
	}
	return st, nil
}
