package app_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/partnerd/partnerd/internal/webhooks"
)

func num(v any) int64 { f, _ := v.(float64); return int64(f) }

// rewardsOf lists the rewards of a transaction (archived included).
func (e *env) rewardsOf(txKey string) []map[string]any {
	e.t.Helper()
	return e.must("GET", "/api/v2/rewards?include_archived=true&limit=250&transaction_key="+txKey, e.prod, nil).items()
}

func (e *env) txn(customerKey string, amount int64, currency string, extra map[string]any) map[string]any {
	e.t.Helper()
	e.tick()
	body := map[string]any{"customer_key": customerKey, "amount": amount, "currency": currency}
	for k, v := range extra {
		body[k] = v
	}
	return e.must("POST", "/api/v2/transactions", e.prod, body).data()
}

func TestOffersAreValidatedAndEditable(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		for _, c := range []struct {
			body map[string]any
			want string
		}{
			{map[string]any{"name": "x", "trigger": "transaction", "type": "percent"}, "'rate' is required"},
			{map[string]any{"name": "x", "trigger": "transaction", "type": "percent", "rate": "101"}, "at most 100"},
			{map[string]any{"name": "x", "trigger": "transaction", "type": "percent", "rate": "1.23456"}, "at most 4 decimal places"},
			{map[string]any{"name": "x", "trigger": "transaction", "type": "percent", "rate": "-5"}, "'rate'"},
			{map[string]any{"name": "x", "trigger": "customer", "type": "percent", "rate": "5"}, "use flat"},
			{map[string]any{"name": "x", "trigger": "customer", "type": "flat", "amount": 100}, "'amount' and 'currency' are required"},
			{map[string]any{"name": "x", "trigger": "customer", "type": "flat", "amount": 100, "currency": "ZZZ"}, "'currency'"},
			{map[string]any{"name": "x", "trigger": "customer", "type": "flat", "amount": 100, "currency": "USD", "duration_months": 3}, "only applies to transaction offers"},
			{map[string]any{"name": "x", "trigger": "transaction", "type": "flat", "amount": 100, "currency": "USD", "action_type": "demo"}, "only applies to action offers"},
			{map[string]any{"name": "x", "trigger": "sale", "type": "flat", "amount": 100, "currency": "USD"}, "'trigger'"},
			{map[string]any{"name": "x", "trigger": "transaction", "type": "percent", "rate": "5", "group_key": "grup_nope"}, "'group_key'"},
			{map[string]any{"name": "x", "trigger": "transaction", "type": "percent", "rate": "5", "hold_days": 400}, "'hold_days'"},
			{map[string]any{"name": "x", "trigger": "transaction", "type": "percent", "rate": "5", "bonus": 1}, "Additional properties"},
		} {
			e.fails(400, c.want, "POST", "/api/v2/offers", e.prod, c.body)
		}
		if n := e.count("/api/v2/offers?include_archived=true", e.prod); n != 0 {
			t.Fatalf("refused offers were stored: %d", n)
		}
		e.fails(403, "production keys", "POST", "/api/v2/offers", e.test, map[string]any{"name": "x", "trigger": "transaction", "type": "percent", "rate": "5"})

		o := e.must("POST", "/api/v2/offers", e.prod, map[string]any{"name": "Rev share", "trigger": "transaction", "type": "percent", "rate": "20", "duration_months": 12}).data()
		key := o["key"].(string)
		up := e.must("PATCH", "/api/v2/offers/"+key, e.prod, map[string]any{"rate": "12.5", "duration_months": nil}).data()
		if up["rate"] != "12.5" || up["duration_months"] != nil || up["name"] != "Rev share" {
			t.Fatalf("patch: %v", up)
		}
		e.fails(400, "'amount' and 'currency' are for flat offers", "PATCH", "/api/v2/offers/"+key, e.prod, map[string]any{"amount": 5, "currency": "USD"})
		if got := e.must("GET", "/api/v2/offers/"+key, e.prod, nil).data(); got["rate"] != "12.5" {
			t.Fatalf("refused patch changed the offer: %v", got)
		}
		e.must("DELETE", "/api/v2/offers/"+key, e.prod, nil)
		if n := e.count("/api/v2/offers", e.prod); n != 0 {
			t.Fatalf("archived offer still listed")
		}
		e.fails(409, "archived", "PATCH", "/api/v2/offers/"+key, e.prod, map[string]any{"rate": "10"})
		other, otherAuth := e.newCompany("Other")
		_ = other
		e.fails(404, "offer not found", "GET", "/api/v2/offers/"+key, otherAuth, nil)
	})
}

func TestRewardsFollowOffersAndExplainThemselves(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		gold := e.must("POST", "/api/v2/groups", e.prod, map[string]any{"name": "Gold"}).data()["key"].(string)
		e.must("POST", "/api/v2/offers", e.prod, map[string]any{"name": "Sign-up bonus", "trigger": "customer", "type": "flat", "amount": 1000, "currency": "USD"})
		e.must("POST", "/api/v2/offers", e.prod, map[string]any{"name": "Rev share", "trigger": "transaction", "type": "percent", "rate": "12.5", "duration_months": 12})
		e.must("POST", "/api/v2/offers", e.prod, map[string]any{"name": "Gold Pro bonus", "trigger": "transaction", "type": "percent", "rate": "5",
			"group_key": gold, "product_key": "pro"})
		e.partnership("ann@agency.io", "ann")
		cu := e.customer("c1", "bob@client.com", "ann")

		signup := e.must("GET", "/api/v2/rewards?customer_key=c1", e.prod, nil).items()
		if len(signup) != 1 || num(signup[0]["amount"]) != 1000 || signup[0]["reward_status"] != "approved" || signup[0]["transaction"] != nil {
			t.Fatalf("sign-up reward: %v", signup)
		}

		t1 := e.txn("c1", 1999, "USD", map[string]any{"product_key": "pro"})
		rs := e.rewardsOf(t1["key"].(string))
		if len(rs) != 1 || num(rs[0]["amount"]) != 250 || rs[0]["currency"] != "USD" || num(rs[0]["amount_usd"]) != 250 {
			t.Fatalf("12.5%% of 19.99 must be one reward of 250 cents (249.875 rounded half away from zero): %v", rs)
		}
		ex := e.must("GET", "/api/v2/rewards/"+rs[0]["key"].(string)+"/explain", e.prod, nil).data()["explanation"].(map[string]any)
		if ex["exact"] != "249.875000" || !strings.Contains(ex["formula"].(string), "1999 × 12.5 / 100") ||
			!strings.Contains(ex["rounding"].(string), "half away from zero") || ex["offer"].(map[string]any)["name"] != "Rev share" {
			t.Fatalf("explanation: %v", ex)
		}
		why := e.must("GET", "/api/v2/transactions/"+t1["key"].(string)+"/explain", e.prod, nil).data()
		offers := why["offers"].([]any)
		if why["earns"] != true || len(offers) != 2 || offers[1].(map[string]any)["reason_code"] != "other_group" {
			t.Fatalf("transaction explanation: %v", why)
		}

		// Moving the partnership to Gold changes its future rewards only.
		e.must("PATCH", "/api/v2/partnerships/ann", e.prod, map[string]any{"group_key": gold})
		t2 := e.txn("c1", 10000, "USD", map[string]any{"product_key": "pro"})
		if rs := e.rewardsOf(t2["key"].(string)); len(rs) != 2 {
			t.Fatalf("in Gold a pro transaction earns both offers: %v", rs)
		}
		if rs := e.rewardsOf(t1["key"].(string)); len(rs) != 1 {
			t.Fatalf("the earlier transaction gained a reward after the group change: %v", rs)
		}
		t3 := e.txn("c1", 10000, "USD", map[string]any{"product_key": "basic"})
		why = e.must("GET", "/api/v2/transactions/"+t3["key"].(string)+"/explain", e.prod, nil).data()
		if o := why["offers"].([]any)[1].(map[string]any); o["reason_code"] != "filtered_by_product" {
			t.Fatalf("product filter: %v", why)
		}
		// Outside the 12-month window.
		e.clock.Advance(366 * 24 * time.Hour)
		t4 := e.txn("c1", 10000, "USD", nil)
		why = e.must("GET", "/api/v2/transactions/"+t4["key"].(string)+"/explain", e.prod, nil).data()
		if why["earns"] != false || why["offers"].([]any)[0].(map[string]any)["reason_code"] != "outside_recurring_window" || len(e.rewardsOf(t4["key"].(string))) != 0 {
			t.Fatalf("window: %v", why)
		}
		// Test mode never earns.
		e.tick()
		tc := e.must("POST", "/api/v2/customers", e.test, map[string]any{"customer_key": "tc", "email": "t@client.com", "partner_key": "gstest"}).data()
		tt := e.must("POST", "/api/v2/transactions", e.test, map[string]any{"customer_key": "tc", "amount": 5000, "currency": "USD"}).data()
		why = e.must("GET", "/api/v2/transactions/"+tt["key"].(string)+"/explain", e.prod, nil).data()
		if why["reason_code"] != "test_mode" || len(e.rewardsOf(tt["key"].(string))) != 0 || e.count("/api/v2/rewards?customer_key="+tc["key"].(string), e.prod) != 0 {
			t.Fatalf("test mode earned: %v", why)
		}
		_ = cu
	})
}

func TestSelfReferralIsHeldAndVendorDecides(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		e.must("POST", "/api/v2/offers", e.prod, map[string]any{"name": "Rev", "trigger": "transaction", "type": "percent", "rate": "10", "hold_days": 30})
		e.partnership("ann@agency.io", "ann")
		e.partnership("joe@gmail.com", "joe")
		e.customer("same", "ann@agency.io", "ann")
		e.customer("domain", "boss@agency.io", "ann")
		e.customer("public", "someone@gmail.com", "joe")
		e.customer("fine", "x@client.com", "ann")
		status := func(ck string) map[string]any {
			t := e.txn(ck, 1000, "USD", nil)
			return e.rewardsOf(t["key"].(string))[0]
		}
		for ck, want := range map[string]string{"same": "hold", "domain": "hold", "public": "pending", "fine": "pending"} {
			r := status(ck)
			if r["reward_status"] != want {
				t.Fatalf("%s: status %v, want %s (%v)", ck, r["reward_status"], want, r["hold_reason"])
			}
			if want == "hold" && !strings.Contains(r["hold_reason"].(string), "self-referral") {
				t.Fatalf("hold without reason: %v", r)
			}
		}
		held := e.must("GET", "/api/v2/rewards?status=hold", e.prod, nil).items()
		if len(held) != 2 {
			t.Fatalf("held: %d", len(held))
		}
		e.fails(400, "'reason'", "POST", "/api/v2/rewards/"+held[0]["key"].(string)+"/decline", e.prod, map[string]any{})
		d := e.must("POST", "/api/v2/rewards/"+held[0]["key"].(string)+"/decline", e.prod, map[string]any{"reason": "self-referral confirmed"}).data()
		if d["reward_status"] != "declined" || d["decline_reason"] != "self-referral confirmed" {
			t.Fatalf("decline: %v", d)
		}
		a := e.must("POST", "/api/v2/rewards/"+held[1]["key"].(string)+"/approve", e.prod, map[string]any{}).data()
		if a["reward_status"] != "approved" {
			t.Fatalf("approve: %v", a)
		}
		// The hold period ends: pending rewards become approved.
		e.clock.Advance(31 * 24 * time.Hour)
		if _, err := e.app.Ledger.ApprovePendingNow(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n := e.count("/api/v2/rewards?status=pending", e.prod); n != 0 {
			t.Fatalf("%d rewards still pending after their hold period", n)
		}
		if n := e.count("/api/v2/rewards?status=approved", e.prod); n != 3 {
			t.Fatalf("approved: %d, want 3", n)
		}
		e.fails(400, "'status'", "GET", "/api/v2/rewards?status=new", e.prod, nil)
		e.fails(400, "'order_by'", "GET", "/api/v2/rewards?order_by=partner", e.prod, nil)
		byAmount := e.must("GET", "/api/v2/rewards?order_by=-amount", e.prod, nil)
		_ = byAmount
	})
}

func TestPayoutsClawbacksAndPartnerView(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.must("POST", "/api/v2/offers", e.prod, map[string]any{"name": "Rev", "trigger": "transaction", "type": "percent", "rate": "20"})
		e.partnership("ann@agency.io", "ann")
		e.partnership("bea@other.io", "bea")
		e.customer("c1", "c1@client.com", "ann")
		e.customer("c2", "c2@client.com", "bea")
		e.clock.Set(time.Date(2026, 10, 5, 0, 0, 0, 0, time.UTC))
		t1 := e.txn("c1", 10000, "USD", nil) // 20.00 for ann
		e.txn("c1", 5000, "EUR", nil)        // 10.00 EUR for ann: another payout
		e.txn("c2", 2000, "USD", nil)        // 4.00 for bea: below the 5.00 minimum
		e.clock.Set(time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC))
		e.txn("c1", 99900, "USD", nil) // November: not in October's payout

		res, err := e.app.Ledger.RunPayouts(ctx, e.company.ID, "2026-10")
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Created) != 2 || res.CarriedOver != 1 {
			t.Fatalf("run: %+v", res)
		}
		again, err := e.app.Ledger.RunPayouts(ctx, e.company.ID, "2026-10")
		if err != nil || len(again.Created) != 0 {
			t.Fatalf("a second run of the period paid again: %+v %v", again, err)
		}
		pos := e.must("GET", "/api/v2/payouts?period=2026-10", e.prod, nil).items()
		usd := e.must("GET", "/api/v2/payouts?period=2026-10&partnership_key="+pos[0]["partnership_key"].(string), e.prod, nil).items()[0]
		for _, po := range pos {
			if po["currency"] == "USD" {
				usd = po
			}
		}
		if usd["currency"] != "USD" || num(usd["amount"]) != 2000 || num(usd["reward_count"]) != 1 || usd["status"] != "pending" {
			t.Fatalf("USD payout: %v", pos)
		}
		csv := e.rawGet("/api/v2/payouts/export?period=2026-10", e.prod)
		if !strings.Contains(csv, "payout_key,period,partner_key") || !strings.Contains(csv, ",ann,ann@agency.io,,20.00,USD,2000,1,pending,") {
			t.Fatalf("csv:\n%s", csv)
		}
		e.fails(400, "'external_reference'", "POST", "/api/v2/payouts/"+usd["key"].(string)+"/paid", e.prod, map[string]any{})
		paid := e.must("POST", "/api/v2/payouts/"+usd["key"].(string)+"/paid", e.prod, map[string]any{"external_reference": "wire-1"}).data()
		if paid["status"] != "paid" || paid["external_reference"] != "wire-1" {
			t.Fatalf("paid: %v", paid)
		}
		e.must("POST", "/api/v2/payouts/"+usd["key"].(string)+"/paid", e.prod, map[string]any{"external_reference": "wire-1"})
		e.fails(409, "already paid", "POST", "/api/v2/payouts/"+usd["key"].(string)+"/paid", e.prod, map[string]any{"external_reference": "wire-2"})
		r1 := e.rewardsOf(t1["key"].(string))[0]
		if r1["reward_status"] != "paid" || r1["payout_key"] != usd["key"] {
			t.Fatalf("reward after payout: %v", r1)
		}
		e.fails(409, "paid rewards cannot change", "POST", "/api/v2/rewards/"+r1["key"].(string)+"/decline", e.prod, map[string]any{"reason": "x"})

		// A refund after payout claws back; the next payout nets it.
		e.must("DELETE", "/api/v2/transactions/"+t1["key"].(string), e.prod, nil)
		rs := e.rewardsOf(t1["key"].(string))
		claws := e.must("GET", "/api/v2/rewards?partner_key=ann&limit=250", e.prod, nil).items()
		var claw map[string]any
		for _, r := range claws {
			if r["source"] == "clawback" {
				claw = r
			}
		}
		if len(rs) != 1 || rs[0]["reward_status"] != "paid" || claw == nil || num(claw["amount"]) != -2000 || claw["reverses"] != r1["key"] || claw["reward_status"] != "approved" {
			t.Fatalf("clawback: rewards %v, clawback %v", rs, claw)
		}
		res, err = e.app.Ledger.RunPayouts(ctx, e.company.ID, "2026-11")
		if err != nil {
			t.Fatal(err)
		}
		nov := e.must("GET", "/api/v2/payouts?period=2026-11&partnership_key="+claw["partnership"].(map[string]any)["key"].(string), e.prod, nil).items()
		if len(nov) != 1 || num(nov[0]["amount"]) != 19980-2000 {
			t.Fatalf("November payout must net the clawback: %v", nov)
		}

		// A reversal before payout archives the reward instead.
		e.clock.Set(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
		t5 := e.txn("c1", 3000, "USD", nil)
		e.must("DELETE", "/api/v2/transactions/"+t5["key"].(string), e.prod, nil)
		if rs := e.rewardsOf(t5["key"].(string)); len(rs) != 1 || rs[0]["archived"] != true {
			t.Fatalf("unpaid reversal: %v", rs)
		}
		if n := e.count("/api/v2/rewards?transaction_key="+t5["key"].(string), e.prod); n != 0 {
			t.Fatalf("a reversed reward is still listed")
		}

		// A partner sees only its own rewards and payouts.
		tok, err := e.app.Program.CreatePartnerToken(ctx, e.company.Key, "bea")
		if err != nil {
			t.Fatal(err)
		}
		mine := e.must("GET", "/api/v2/rewards?limit=250", bearer(tok), nil).items()
		if len(mine) != 1 || mine[0]["partnership"].(map[string]any)["partner_key"] != "bea" {
			t.Fatalf("partner rewards: %v", mine)
		}
		if n := e.count("/api/v2/payouts", bearer(tok)); n != 0 {
			t.Fatalf("bea sees %d payouts", n)
		}
		e.fails(404, "reward not found", "GET", "/api/v2/rewards/"+r1["key"].(string), bearer(tok), nil)
		e.fails(404, "payout not found", "GET", "/api/v2/payouts/"+usd["key"].(string), bearer(tok), nil)
		e.fails(401, "", "POST", "/api/v2/payouts/"+usd["key"].(string)+"/paid", bearer(tok), map[string]any{"external_reference": "x"})
	})
}

func TestManualRewardsActionsRatesAndRecompute(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.partnership("ann@agency.io", "ann")
		e.customer("c1", "c1@client.com", "ann")
		m := e.must("POST", "/api/v2/rewards", e.prod, map[string]any{"amount": 1500, "description": "Launch bonus",
			"target": map[string]any{"type": "partnership", "key": "ann"}}).data()
		if m["source"] != "manual" || m["reward_status"] != "approved" || m["currency"] != "USD" {
			t.Fatalf("manual: %v", m)
		}
		e.fails(400, "'target.type'", "POST", "/api/v2/rewards", e.prod, map[string]any{"amount": 1, "target": map[string]any{"type": "galaxy", "key": "x"}})
		e.fails(400, "'target.key'", "POST", "/api/v2/rewards", e.prod, map[string]any{"amount": 1, "target": map[string]any{"type": "customer", "key": "nobody"}})

		e.must("POST", "/api/v2/offers", e.prod, map[string]any{"name": "Demo", "trigger": "action", "type": "flat", "amount": 500, "currency": "USD", "action_type": "demo"})
		a := e.must("POST", "/api/v2/actions", e.prod, map[string]any{"type": "demo", "value": 3, "target_type": "customer", "target_key": "c1", "external_key": "evt-1"})
		replay := e.must("POST", "/api/v2/actions", e.prod, map[string]any{"type": "demo", "value": 3, "target_type": "customer", "target_key": "c1", "external_key": "evt-1"})
		if replay.header.Get("Idempotent-Replayed") != "true" || replay.data()["key"] != a.data()["key"] {
			t.Fatalf("replayed action: %v", replay.data())
		}
		e.must("POST", "/api/v2/actions", e.prod, map[string]any{"type": "webinar", "value": 1, "target_type": "partnership", "target_key": "ann"})
		e.fails(400, "'target_type'", "POST", "/api/v2/actions", e.prod, map[string]any{"type": "demo", "value": 1, "target_type": "moon", "target_key": "ann"})
		e.fails(400, "'target_type' is a required property", "POST", "/api/v2/actions", e.prod, map[string]any{"type": "demo", "value": 1, "target_key": "c1"})
		rs := e.must("GET", "/api/v2/rewards?customer_key=c1", e.prod, nil).items()
		if len(rs) != 1 || num(rs[0]["amount"]) != 1500 || rs[0]["action"].(map[string]any)["value"] != float64(3) {
			t.Fatalf("action reward (3 × 5.00): %v", rs)
		}
		e.must("DELETE", "/api/v2/actions/"+a.data()["key"].(string), e.prod, nil)
		if n := e.count("/api/v2/rewards?customer_key=c1", e.prod); n != 0 {
			t.Fatalf("archiving an action kept its reward")
		}
		if n := e.count("/api/v2/actions", e.prod); n != 1 {
			t.Fatalf("actions: %d", n)
		}

		// Exchange rates: amount_usd at the rate of the cause's day.
		e.fails(400, "'rates[0].usd_rate'", "POST", "/api/v2/exchange-rates", e.prod, map[string]any{"rates": []any{map[string]any{"currency": "JPY", "date": "2026-01-01", "usd_rate": "abc"}}})
		e.must("POST", "/api/v2/exchange-rates", e.prod, map[string]any{"rates": []any{
			map[string]any{"currency": "JPY", "date": "2025-12-01", "usd_rate": "0.0065"},
			map[string]any{"currency": "JPY", "date": "2026-01-01", "usd_rate": "0.0067"},
			map[string]any{"currency": "KWD", "date": "2025-01-01", "usd_rate": "3.25"}}})
		e.must("POST", "/api/v2/offers", e.prod, map[string]any{"name": "Rev", "trigger": "transaction", "type": "percent", "rate": "12.5"})
		jpy := e.txn("c1", 1005, "JPY", nil)
		if num(jpy["amount_usd"]) != 673 { // ¥1005 × 0.0067 = $6.7335
			t.Fatalf("JPY amount_usd: %v", jpy["amount_usd"])
		}
		r := e.rewardsOf(jpy["key"].(string))[0]
		if num(r["amount"]) != 126 || r["currency"] != "JPY" || num(r["amount_usd"]) != 84 { // ¥125.625 → ¥126 → $0.8442
			t.Fatalf("JPY reward: %v", r)
		}
		kwd := e.txn("c1", 12345, "KWD", nil)
		if r := e.rewardsOf(kwd["key"].(string))[0]; num(r["amount"]) != 1543 || num(r["amount_usd"]) != 501 {
			t.Fatalf("KWD reward (1543.125 fils → 1543 → $5.01475): %v", r)
		}

		// Recompute: a no-op on unchanged data; then it applies a new offer
		// to earlier unpaid causes.
		before := e.count("/api/v2/rewards?include_archived=true", e.prod)
		res, err := e.app.Ledger.Recompute(ctx, e.company.ID)
		if err != nil || res.Created+res.Updated+res.Archived != 0 {
			t.Fatalf("recompute of unchanged data: %+v %v", res, err)
		}
		if after := e.count("/api/v2/rewards?include_archived=true", e.prod); after != before {
			t.Fatalf("recompute changed the reward count %d → %d", before, after)
		}
		e.must("POST", "/api/v2/offers", e.prod, map[string]any{"name": "Welcome", "trigger": "customer", "type": "flat", "amount": 700, "currency": "EUR"})
		res, err = e.app.Ledger.Recompute(ctx, e.company.ID)
		if err != nil || res.Created != 1 || res.Updated != 0 || res.Archived != 0 {
			t.Fatalf("recompute must create the sign-up reward for c1: %+v %v", res, err)
		}
	})
}

// rawGet returns a non-JSON body (CSV).
func (e *env) rawGet(path string, a auth) string {
	e.t.Helper()
	req, _ := http.NewRequest("GET", e.base+path, nil)
	req.Header.Set("Authorization", a.header)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		e.t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return string(b)
}

// receiver is a webhook endpoint on 127.0.0.1 that fails its first
// `failures` deliveries.
type receiver struct {
	mu       sync.Mutex
	got      []received
	failures int
	url      string
}

type received struct {
	body      []byte
	signature string
	event     string
}

func newReceiver(t *testing.T, failures int) *receiver {
	rc := &receiver{failures: failures}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		defer rc.mu.Unlock()
		if rc.failures > 0 {
			rc.failures--
			w.WriteHeader(500)
			return
		}
		rc.got = append(rc.got, received{body: b, signature: r.Header.Get(webhooks.SignatureHeader), event: r.Header.Get("X-Partnerd-Event")})
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	rc.url = "http://" + ln.Addr().String() + "/hook"
	return rc
}

func (rc *receiver) wait(t *testing.T, n int) []received {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		rc.mu.Lock()
		got := append([]received(nil), rc.got...)
		rc.mu.Unlock()
		if len(got) >= n {
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("webhook receiver got %d deliveries, want %d", len(rc.got), n)
	return nil
}

func TestWebhooksAreSignedQueuedAndRetried(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		rc := newReceiver(t, 0)
		e.fails(400, "unknown event", "POST", "/api/v2/webhooks", e.prod, map[string]any{"target_url": rc.url, "events": []string{"planet.exploded"}})
		e.fails(400, "'target_url'", "POST", "/api/v2/webhooks", e.prod, map[string]any{"target_url": "ftp://x", "events": []string{"customer.created"}})
		e.fails(400, "not both", "POST", "/api/v2/webhooks", e.prod, map[string]any{"target_url": rc.url, "target": rc.url, "event": "customer.created"})
		wh := e.must("POST", "/api/v2/webhooks", e.prod, map[string]any{"target": rc.url, "events": []string{"customer_created", "reward.created"}}).data()
		secret, _ := wh["secret"].(string)
		if secret == "" || wh["target_url"] != rc.url {
			t.Fatalf("webhook: %v", wh)
		}
		if _, ok := e.must("GET", "/api/v2/webhooks/"+wh["key"].(string), e.prod, nil).data()["secret"]; ok {
			t.Fatal("the secret is shown after creation")
		}
		e.must("POST", "/api/v2/offers", e.prod, map[string]any{"name": "Bonus", "trigger": "customer", "type": "flat", "amount": 100, "currency": "USD"})
		e.partnership("ann@agency.io", "ann")
		cu := e.customer("c1", "c1@client.com", "ann")
		got := rc.wait(t, 2)
		byEvent := map[string]received{}
		for _, g := range got {
			byEvent[g.event] = g
		}
		c, ok := byEvent["customer_created"]
		if !ok {
			t.Fatalf("no customer_created delivery (subscribed with the underscore name): %v", got)
		}
		var body map[string]any
		_ = json.Unmarshal(c.body, &body)
		if body["event"] != "customer_created" || body["key"] != cu["key"] || body["email"] != "c1@client.com" {
			t.Fatalf("body must be the customer plus event: %s", c.body)
		}
		var ts, v1 string
		for _, part := range strings.Split(c.signature, ",") {
			k, v, _ := strings.Cut(part, "=")
			if k == "t" {
				ts = v
			} else if k == "v1" {
				v1 = v
			}
		}
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte(ts + "." + string(c.body)))
		if ts == "" || v1 != hex.EncodeToString(mac.Sum(nil)) {
			t.Fatalf("signature %q does not verify", c.signature)
		}
		if _, ok := byEvent["reward.created"]; !ok {
			t.Fatalf("no reward.created: %v", got)
		}
		if len(got) != 2 {
			t.Fatalf("unsubscribed events were sent: %d deliveries", len(got))
		}
		// transaction.created is written in the same statement as the
		// transaction on PostgreSQL, in a second one on SQLite.
		e.must("POST", "/api/v2/transactions", e.prod, map[string]any{"customer_external_key": "c1", "amount": 900, "currency": "USD", "key": "tx-before"})
		e.clock.Advance(time.Second) // the webhook below is created after that transaction
		txHook := newReceiver(t, 0)
		th := e.must("POST", "/api/v2/webhooks", e.prod, map[string]any{"target_url": txHook.url, "events": []string{"transaction.created"}}).data()
		e.must("POST", "/api/v2/transactions", e.prod, map[string]any{"customer_external_key": "c1", "amount": 1200, "currency": "USD", "key": "tx-hook"})
		e.must("POST", "/api/v2/transactions", e.prod, map[string]any{"customer_external_key": "c1", "amount": 1200, "currency": "USD", "key": "tx-hook"}) // a replay: no second event
		txGot := txHook.wait(t, 1)
		var txBody map[string]any
		if len(txGot) == 1 {
			_ = json.Unmarshal(txGot[0].body, &txBody)
		}
		if len(txGot) != 1 || txGot[0].event != "transaction.created" || txBody["key"] != "tx-hook" || num(txBody["amount"]) != 1200 {
			t.Fatalf("transaction.created deliveries: %v", txGot)
		}
		if _, err := e.app.Webhooks.Fanout(ctx); err != nil { // whatever the replay queued is now in the log
			t.Fatal(err)
		}
		if log := e.must("GET", "/api/v2/webhooks/"+th["key"].(string)+"/deliveries", e.prod, nil).body["data"].([]any); len(log) != 1 {
			t.Fatalf("a replayed transaction queued another event: %v", log)
		}

		// A failing endpoint is retried with backoff; the log shows it.
		flaky := newReceiver(t, 2)
		fw := e.must("POST", "/api/v2/webhooks", e.prod, map[string]any{"target_url": flaky.url, "event": "partnership.created"}).data()
		e.partnership("bea@other.io", "bea")
		var log []map[string]any
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			log = nil
			for _, d := range e.must("GET", "/api/v2/webhooks/"+fw["key"].(string)+"/deliveries", e.prod, nil).body["data"].([]any) {
				log = append(log, d.(map[string]any))
			}
			if len(log) == 1 && num(log[0]["attempts"]) >= 1 {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if len(log) != 1 || log[0]["status"] != "pending" || num(log[0]["last_status"]) != 500 || num(log[0]["next_at"]) != num(log[0]["updated_at"])+30_000 {
			t.Fatalf("after a failure the delivery waits 30 s: %v", log)
		}
		for i := 0; i < 2; i++ {
			e.clock.Advance(webhooks.Backoff(i+1) + time.Second)
			if _, err := e.app.Webhooks.Deliver(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if got := flaky.wait(t, 1); len(got) != 1 || got[0].event != "partnership.created" {
			t.Fatalf("retried delivery: %v", got)
		}
		e.must("DELETE", "/api/v2/webhooks/"+wh["key"].(string), e.prod, nil)
		e.customer("c2", "c2@client.com", "ann")
		time.Sleep(1200 * time.Millisecond)
		if n := len(rc.wait(t, 2)); n != 2 {
			t.Fatalf("an archived webhook got %d deliveries", n)
		}
	})
}
