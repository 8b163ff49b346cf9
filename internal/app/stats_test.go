package app_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/partnerd/partnerd/internal/stats"
)

// truth is what the rollups should say of a company, counted from the
// tables themselves: per partnership and month, clicks, customers,
// revenue and rewards by status, test data left out.
func truth(t *testing.T, e *env) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	q := func(query string, each func(key string, v int64)) {
		rows, err := e.app.DB.Query(context.Background(), query, e.company.ID)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var pid, at, v int64
			var extra string
			if err := rows.Scan(&pid, &at, &extra, &v); err != nil {
				t.Fatal(err)
			}
			each(fmt.Sprintf("%d/%s/%s", pid, time.UnixMilli(at).UTC().Format("2006-01"), extra), v)
		}
	}
	add := func(k string, v int64) { out[k] += v }
	q("SELECT partnership_id, created_at, 'clicks', 1 FROM clicks WHERE company_id = ? AND test = 0", add)
	q("SELECT partnership_id, created_at, 'customers', 1 FROM customers WHERE company_id = ? AND test = 0", add)
	q("SELECT partnership_id, created_at, 'revenue', amount FROM transactions WHERE company_id = ? AND test = 0 AND archived = 0", add)
	q("SELECT partnership_id, created_at, status, amount FROM rewards WHERE company_id = ? AND test = 0 AND archived = 0", add)
	q("SELECT partnership_id, created_at, status || '_n', 1 FROM rewards WHERE company_id = ? AND test = 0 AND archived = 0", add)
	for k, v := range out {
		if v == 0 {
			delete(out, k)
		}
	}
	return out
}

// rolled is what the rollups say, in truth's shape.
func rolled(t *testing.T, e *env, partnerships []int64) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, pid := range partnerships {
		months, err := e.app.Stats.Months(context.Background(), e.company.ID, pid, "2000-01", "2100-12")
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range months {
			k := fmt.Sprintf("%d/%s/", pid, m.Month)
			out[k+"clicks"] += m.Clicks
			out[k+"customers"] += m.Customers
			out[k+"revenue"] += m.RevenueUSD
			for st, c := range m.Rewards {
				out[k+st] += c.USD
				out[k+st+"_n"] += c.N
			}
		}
	}
	for k, v := range out {
		if v == 0 {
			delete(out, k)
		}
	}
	return out
}

func sameCounts(t *testing.T, what string, got, want map[string]int64) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s is %d in the rollups, %d in the data", what, k, got[k], v)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: %s is %d in the rollups, absent from the data", what, k, v)
		}
	}
}

func TestRollupsFollowTheData(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.app.Stats.Horizon = 0
		e.must("POST", "/api/v2/offers", e.prod, map[string]any{"name": "Rev", "trigger": "transaction", "type": "percent", "rate": "10", "hold_days": 0})
		e.partnership("ann@partner.test", "ann")
		e.partnership("bob@partner.test", "bob")
		var ids []int64
		for _, k := range []string{"ann", "bob"} {
			var id int64
			if err := e.app.DB.QueryRow(ctx, "SELECT id FROM partnerships WHERE partner_key = ? AND company_id = ?", k, e.company.ID).Scan(&id); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		click := func(slug string, n int) {
			for range n {
				readAll(e.raw("GET", "/r/"+slug, "", nil, ""))
			}
			if err := e.app.Tracking.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
		refresh := func() {
			t.Helper()
			if err := e.app.Stats.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
		}

		// January: clicks, customers and payments for both partners; a
		// test-mode customer and payment, which the rollups leave out.
		click("ann", 3)
		click("bob", 2)
		e.customer("c1", "c1@x.test", "ann")
		e.customer("c2", "c2@x.test", "bob")
		e.tick()
		e.must("POST", "/api/v2/customers", e.test, map[string]any{"customer_key": "ct", "email": "t@x.test", "partner_key": "gstest"})
		for i, c := range []string{"c1", "c1", "c2"} {
			e.tick()
			e.must("POST", "/api/v2/transactions", e.prod, map[string]any{"key": fmt.Sprintf("txn-%d", i), "customer_key": c, "amount": 5000, "currency": "USD"})
		}
		e.must("POST", "/api/v2/transactions", e.test, map[string]any{"key": "txn-test", "customer_key": "ct", "amount": 999, "currency": "USD"})
		refresh()
		sameCounts(t, "after January", rolled(t, e, ids), truth(t, e))
		if got := rolled(t, e, ids)[fmt.Sprintf("%d/2026-01/clicks", ids[0])]; got != 3 {
			t.Fatalf("ann's January clicks: %d", got)
		}

		// A refresh with nothing new changes nothing: clicks are added once.
		refresh()
		sameCounts(t, "refreshed again", rolled(t, e, ids), truth(t, e))

		// February: more clicks; a refund; a payment deleted (archived); a
		// reward declined. Changes to January's rows land in January.
		e.clock.Set(time.Date(2026, 2, 10, 0, 0, 0, 0, time.UTC))
		click("ann", 4)
		e.must("POST", "/api/v2/transactions", e.prod, map[string]any{"key": "txn-refund", "customer_key": "c1", "amount": -5000, "currency": "USD"})
		e.tick()
		e.must("DELETE", "/api/v2/transactions/txn-2", e.prod, nil)
		rws := e.must("GET", "/api/v2/rewards?partner_key=ann", e.prod, nil).items()
		e.tick()
		e.must("POST", "/api/v2/rewards/"+rws[len(rws)-1]["key"].(string)+"/decline", e.prod, map[string]any{"reason": "fraud"})
		refresh()
		sameCounts(t, "after February", rolled(t, e, ids), truth(t, e))

		// Company totals and the top partners agree with the months.
		total, err := e.app.Stats.Total(ctx, e.company.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		if total.Clicks != 9 || total.Customers != 2 {
			t.Fatalf("company total: %+v", total)
		}
		// Bob's only payment was deleted: he has no revenue to rank by.
		top, err := e.app.Stats.TopPartners(ctx, e.company.ID, "2026-01", "2026-02", 10)
		if err != nil || len(top) != 1 || top[0].PartnershipID != ids[0] || top[0].RevenueUSD != 5000 || top[0].Customers != 1 {
			t.Fatalf("top partners: %+v %v", top, err)
		}
	})
}

// With a horizon, new clicks wait until their ids have been seen for that
// long, so that a transaction still writing lower ids is not skipped; then
// they are counted, once.
func TestRollupsWaitForTheHorizon(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		clk := e.clock
		e.app.Stats.Horizon = time.Minute
		e.partnership("ann@partner.test", "ann")
		readAll(e.raw("GET", "/r/ann", "", nil, ""))
		readAll(e.raw("GET", "/r/ann", "", nil, ""))
		if err := e.app.Tracking.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		clicks := func() int64 {
			t.Helper()
			if err := e.app.Stats.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
			tot, err := e.app.Stats.Total(ctx, e.company.ID, 0)
			if err != nil {
				t.Fatal(err)
			}
			return tot.Clicks
		}
		if n := clicks(); n != 0 {
			t.Fatalf("clicks counted before the horizon: %d", n)
		}
		clk.Advance(30 * time.Second)
		if n := clicks(); n != 0 {
			t.Fatalf("clicks counted half-way to the horizon: %d", n)
		}
		clk.Advance(31 * time.Second)
		if n := clicks(); n != 2 {
			t.Fatalf("clicks after the horizon: %d, want 2", n)
		}
		clk.Advance(2 * time.Minute)
		if n := clicks(); n != 2 {
			t.Fatalf("clicks counted twice: %d", n)
		}
		// A lease left by a refresher that died (run out) is taken over.
		readAll(e.raw("GET", "/r/ann", "", nil, ""))
		if err := e.app.Tracking.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		e.app.Stats.Horizon = 0
		if _, err := e.app.DB.Exec(ctx, "UPDATE stats_state SET value = 1 WHERE name = 'lease'"); err != nil {
			t.Fatal(err)
		}
		if n := clicks(); n != 3 {
			t.Fatalf("clicks after the third: %d, want 3", n)
		}
		// Another refresher holds the lease: this one does nothing.
		if _, err := e.app.DB.Exec(ctx, "UPDATE stats_state SET value = ? WHERE name = 'lease'", clk.Now().Add(time.Minute).UnixMilli()); err != nil {
			t.Fatal(err)
		}
		if err := e.app.Stats.Refresh(ctx); err != stats.ErrBusy {
			t.Fatalf("a refresh while another holds the lease: %v", err)
		}
	})
}
