package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// partnerAuth makes a partner token for partnerKey.
func (e *env) partnerAuth(partnerKey string) auth {
	e.t.Helper()
	tok, err := e.app.Program.CreatePartnerToken(context.Background(), e.company.Key, partnerKey)
	if err != nil {
		e.t.Fatal(err)
	}
	return bearer(tok)
}

// history returns an object's history as "field:from>to/actor" strings.
func history(obj map[string]any) []string {
	var out []string
	for _, h := range obj["history"].([]any) {
		c := h.(map[string]any)
		from, _ := c["from"].(string)
		if c["from"] == nil {
			from = "∅"
		}
		to, _ := c["to"].(string)
		out = append(out, c["field"].(string)+":"+from+">"+to+"/"+c["actor"].(string))
	}
	return out
}

func wantHistory(t *testing.T, obj map[string]any, want ...string) {
	t.Helper()
	if got := history(obj); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("history:\n got  %v\n want %v", got, want)
	}
}

// rewardsFor lists the rewards of a lead or deal (archived included).
func (e *env) rewardsFor(kind, key string) []map[string]any {
	e.t.Helper()
	return e.must("GET", "/api/v2/rewards?include_archived=true&limit=250&"+kind+"_key="+key, e.prod, nil).items()
}

// liveSum counts the live (not archived) rewards of rs and adds up their amounts.
func liveSum(rs []map[string]any) (n int, sum int64) {
	for _, r := range rs {
		if r["archived"] != true {
			n++
			sum += num(r["amount"])
		}
	}
	return n, sum
}

func TestLeadsEndToEnd(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		e.partnership("ann@agency.io", "ann")
		e.partnership("bob@other.io", "bob")
		for _, c := range []struct {
			body map[string]any
			want string
		}{
			{map[string]any{"external_key": "x@y.com"}, "'partner_key' is a required property"},
			{map[string]any{"partner_key": "nobody"}, "'partner_key' does not match"},
			{map[string]any{"partner_key": "ann", "status": "won"}, "'status' must be one of"},
			{map[string]any{"partner_key": "ann", "amount": -1}, "'amount'"},
			{map[string]any{"partner_key": "ann", "amount": 1.5}, "'amount' is not of type 'integer'"},
			{map[string]any{"partner_key": "ann", "currency": "ZZZ"}, "'currency'"},
			{map[string]any{"partner_key": "ann", "group_key": "grup_nope"}, "'group_key' must be the partnership's group"},
			{map[string]any{"partner_key": "ann", "approved": "yes"}, "'approved' is not of type 'boolean'"},
			{map[string]any{"partner_key": "ann", "fields": []any{1}}, "'fields' must be an array of objects"},
			{map[string]any{"partner_key": "ann", "external_key": " "}, "'external_key' must not be empty"},
			{map[string]any{"partner_key": "ann", "colour": "red"}, "Additional properties"},
		} {
			e.fails(400, c.want, "POST", "/api/v2/leads", e.prod, c.body)
		}
		if n := e.count("/api/v2/leads?include_archived=true", e.prod); n != 0 {
			t.Fatalf("refused leads were stored: %d", n)
		}

		e.tick()
		l := e.must("POST", "/api/v2/leads", e.prod, map[string]any{"partner_key": "ann", "external_key": "cto@prospect.com",
			"amount": 500000, "meta": map[string]any{"first_name": "Cy", "last_name": "Teo"}, "mold_key": "mold_x"}).data()
		key := l["key"].(string)
		if !strings.HasPrefix(key, "lead_") || l["partner_key"] != "ann" || l["status"] != "open" || l["approved"] != false ||
			num(l["amount"]) != 500000 || l["currency"] != "USD" || l["source"] != "api" || l["customer"] != nil ||
			l["field_data"].(map[string]any)["first_name"] != "Cy" || len(l["meta"].(map[string]any)) != 0 {
			t.Fatalf("lead: %v", l)
		}
		wantHistory(t, l, "status:∅>open/vendor", "approved:∅>false/vendor")

		// The same external_key for the same partner is a replay; for another, a conflict.
		again := e.do("POST", "/api/v2/leads", e.prod, map[string]any{"partner_key": "ann", "external_key": "cto@prospect.com", "amount": 1})
		if again.status != 200 || again.header.Get("Idempotent-Replayed") != "true" || again.data()["key"] != key || num(again.data()["amount"]) != 500000 {
			t.Fatalf("replay: %d %v %s", again.status, again.header, again.raw)
		}
		e.fails(409, "another partnership", "POST", "/api/v2/leads", e.prod, map[string]any{"partner_key": "bob", "external_key": "cto@prospect.com"})
		if got := e.must("GET", "/api/v2/leads/cto@prospect.com", e.prod, nil).data(); got["key"] != key {
			t.Fatalf("get by external_key: %v", got)
		}

		// Approving earns the lead_approved offer, with an explanation.
		e.must("POST", "/api/v2/offers", e.prod, map[string]any{"name": "Qualified lead", "trigger": "lead_approved", "type": "flat", "amount": 2500, "currency": "USD"})
		e.tick()
		up := e.must("PATCH", "/api/v2/leads/"+key, e.prod, map[string]any{"status": "closed", "approved": true}).data()
		if up["approved"] != true || up["status"] != "closed" || num(up["approved_at"]) != e.clock.Now().UnixMilli() {
			t.Fatalf("approved lead: %v", up)
		}
		wantHistory(t, up, "status:∅>open/vendor", "approved:∅>false/vendor", "status:open>closed/vendor", "approved:false>true/vendor")
		rs := e.rewardsFor("lead", key)
		if len(rs) != 1 || num(rs[0]["amount"]) != 2500 || rs[0]["lead"].(map[string]any)["key"] != key || rs[0]["reward_status"] != "approved" {
			t.Fatalf("lead reward: %v", rs)
		}
		ex := e.must("GET", "/api/v2/rewards/"+rs[0]["key"].(string)+"/explain", e.prod, nil).data()["explanation"].(map[string]any)
		if ex["rule"] != "a flat 25.00 USD per approved lead" || ex["offer"].(map[string]any)["name"] != "Qualified lead" {
			t.Fatalf("explanation: %v", ex)
		}
		// A PATCH that changes nothing changes nothing; partner and group stay.
		if same := e.must("PATCH", "/api/v2/leads/"+key, e.prod, map[string]any{"approved": true}).data(); num(same["updated_at"]) != num(up["updated_at"]) {
			t.Fatalf("a no-op patch wrote: %v", same)
		}
		e.fails(400, "'partner_key' cannot change", "PATCH", "/api/v2/leads/"+key, e.prod, map[string]any{"partner_key": "bob"})

		// Un-approving reverses; approving again earns again (a new cause).
		e.tick()
		e.must("PATCH", "/api/v2/leads/"+key, e.prod, map[string]any{"approved": false})
		if n, _ := liveSum(e.rewardsFor("lead", key)); n != 0 {
			t.Fatalf("un-approved lead keeps rewards: %v", e.rewardsFor("lead", key))
		}
		e.tick()
		e.must("PATCH", "/api/v2/leads/"+key, e.prod, map[string]any{"approved": true})
		rs = e.rewardsFor("lead", key)
		if n, sum := liveSum(rs); n != 1 || sum != 2500 || len(rs) != 2 {
			t.Fatalf("re-approved lead: %v", rs)
		}

		// Partner tokens submit for themselves, cannot approve, see their own.
		annTok, bobTok := e.partnerAuth("ann"), e.partnerAuth("bob")
		e.tick()
		mine := e.must("POST", "/api/v2/leads", annTok, map[string]any{"external_key": "ops@lead2.com"}).data()
		if mine["partner_key"] != "ann" || mine["source"] != "partner" {
			t.Fatalf("partner lead: %v", mine)
		}
		wantHistory(t, mine, "status:∅>open/partner", "approved:∅>false/partner")
		e.fails(403, "your own", "POST", "/api/v2/leads", annTok, map[string]any{"partner_key": "bob"})
		e.fails(403, "cannot approve", "POST", "/api/v2/leads", annTok, map[string]any{"approved": true})
		e.fails(401, "HTTP Basic", "PATCH", "/api/v2/leads/"+mine["key"].(string), annTok, map[string]any{"status": "dead"})
		e.tick()
		e.must("POST", "/api/v2/leads", bobTok, map[string]any{"external_key": "bob@lead3.com"})
		if keys := e.must("GET", "/api/v2/leads", annTok, nil).keys(); len(keys) != 2 || keys[0] != mine["key"] || keys[1] != key {
			t.Fatalf("ann's leads: %v", keys)
		}
		e.fails(404, "not found", "GET", "/api/v2/leads/bob@lead3.com", annTok, nil)
		if n := e.count("/api/v2/leads", e.prod); n != 3 {
			t.Fatalf("vendor sees %d leads", n)
		}
		if keys := e.must("GET", "/api/v2/leads?approved=true", e.prod, nil).keys(); len(keys) != 1 || keys[0] != key {
			t.Fatalf("approved filter: %v", keys)
		}
		if n := e.count("/api/v2/leads?partner_key=bob", e.prod); n != 1 {
			t.Fatalf("partner filter: %d", n)
		}
		e.fails(400, "'status'", "GET", "/api/v2/leads?status=maybe", e.prod, nil)
		if n := e.count("/api/v2/leads?status=closed", e.prod); n != 1 {
			t.Fatalf("status filter: %d", n)
		}
		// Partners see their lead rewards too, nobody else's.
		if n := e.count("/api/v2/rewards?lead_key="+key, bobTok); n != 0 {
			t.Fatalf("bob sees ann's lead rewards")
		}
		if n := e.count("/api/v2/rewards?lead_key="+key, annTok); n != 1 {
			t.Fatalf("ann sees %d lead rewards", n)
		}

		// Conversion creates a customer attributed to the lead's partnership.
		e.fails(400, "'email' is a required property", "POST", "/api/v2/leads/"+key+"/convert", e.prod, map[string]any{})
		e.fails(401, "HTTP Basic", "POST", "/api/v2/leads/"+key+"/convert", annTok, map[string]any{"email": "cto@prospect.com"})
		e.tick()
		cu := e.must("POST", "/api/v2/leads/"+key+"/convert", e.prod, map[string]any{"email": "CTO@prospect.com", "customer_key": "acct-77"}).data()
		if cu["partner_key"] != "ann" || cu["customer_key"] != "acct-77" || cu["email"] != "cto@prospect.com" || cu["source_type"] != "lead" {
			t.Fatalf("converted customer: %v", cu)
		}
		conv := e.must("GET", "/api/v2/leads/"+key, e.prod, nil).data()
		if c := conv["customer"].(map[string]any); c["key"] != cu["key"] || c["customer_key"] != "acct-77" {
			t.Fatalf("lead after conversion: %v", conv)
		}
		if h := history(conv); h[len(h)-1] != "converted:∅>"+cu["key"].(string)+"/vendor" {
			t.Fatalf("conversion history: %v", h)
		}
		re := e.do("POST", "/api/v2/leads/"+key+"/convert", e.prod, map[string]any{"email": "cto@prospect.com"})
		if re.status != 200 || re.header.Get("Idempotent-Replayed") != "true" || re.data()["key"] != cu["key"] {
			t.Fatalf("second conversion: %d %s", re.status, re.raw)
		}
		e.fails(409, "already converted", "POST", "/api/v2/leads/"+key+"/convert", e.prod, map[string]any{"email": "cto@prospect.com", "customer_key": "acct-78"})
		if n := e.count("/api/v2/customers?partner_key=ann", e.prod); n != 1 {
			t.Fatalf("customers after conversions: %d", n)
		}
		if keys := e.must("GET", "/api/v2/leads?customer_key=acct-77", e.prod, nil).keys(); len(keys) != 1 || keys[0] != key {
			t.Fatalf("customer filter: %v", keys)
		}

		// Archiving reverses its rewards and freezes it.
		e.tick()
		arch := e.must("DELETE", "/api/v2/leads/"+key, e.prod, nil).data()
		if arch["archived"] != true {
			t.Fatalf("archive: %v", arch)
		}
		if n, _ := liveSum(e.rewardsFor("lead", key)); n != 0 {
			t.Fatal("archived lead keeps rewards")
		}
		e.fails(409, "archived", "PATCH", "/api/v2/leads/"+key, e.prod, map[string]any{"status": "dead"})
		if n := e.count("/api/v2/leads", e.prod); n != 2 {
			t.Fatalf("archived lead still listed: %d", n)
		}

		// Test keys: test partners only, and test leads never earn.
		e.fails(400, "test partner", "POST", "/api/v2/leads", e.test, map[string]any{"partner_key": "ann"})
		tl := e.must("POST", "/api/v2/leads", e.test, map[string]any{"partner_key": "gstest", "approved": true}).data()
		if tl["test"] != true || len(e.rewardsFor("lead", tl["key"].(string))) != 0 {
			t.Fatalf("test lead: %v", tl)
		}

		// Another company sees none of it.
		_, other := e.newCompany("Other")
		e.fails(404, "not found", "GET", "/api/v2/leads/"+key, other, nil)
		if n := e.count("/api/v2/leads", other); n != 0 {
			t.Fatalf("another company sees %d leads", n)
		}
	})
}

func TestDealsEndToEnd(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		ann := e.partnership("ann@agency.io", "ann")
		group := ann["group"].(map[string]any)["key"].(string)
		e.partnership("bob@other.io", "bob")
		for _, c := range []struct {
			body map[string]any
			want string
		}{
			{map[string]any{"account_name": "Globex"}, "'partner_key' is required when 'source' is partner"},
			{map[string]any{"source": "vendor", "account_name": "Globex"}, "'group_key' is required when 'source' is vendor"},
			{map[string]any{"source": "reseller", "partner_key": "ann"}, "'source' must be one of partner, vendor"},
			{map[string]any{"partner_key": "ann", "stage": "haggling"}, "'stage' must be one of the group's deal stages"},
			{map[string]any{"partner_key": "ann", "close_date": "2026-13-01"}, "'close_date' must be a date as YYYY-MM-DD"},
			{map[string]any{"partner_key": "ann", "close_date": "12/01/2026"}, "'close_date' must be a date as YYYY-MM-DD"},
			{map[string]any{"partner_key": "ann", "amount": -5}, "'amount'"},
			{map[string]any{"partner_key": "nobody"}, "'partner_key' does not match"},
			{map[string]any{"source": "vendor", "group_key": "grup_nope"}, "'group_key' does not match"},
			{map[string]any{"partner_key": "ann", "team": "x"}, "Additional properties"},
		} {
			e.fails(400, c.want, "POST", "/api/v2/deals", e.prod, c.body)
		}
		if n := e.count("/api/v2/deals?include_archived=true", e.prod); n != 0 {
			t.Fatalf("refused deals were stored: %d", n)
		}

		// Stages: the defaults, then the group's own.
		st := e.must("GET", "/api/v2/sales-cycles/deals/stages", e.prod, nil).data()
		if st["custom"] != false || st["group_key"] != group || len(st["stages"].([]any)) != 6 {
			t.Fatalf("default stages: %v", st)
		}
		stages := []map[string]any{{"name": "Discovery", "outcome": "open"}, {"name": "Demo", "outcome": "open"},
			{"name": "Signed", "outcome": "won"}, {"name": "Lost", "outcome": "lost"}}
		e.fails(400, "at least one open stage", "PUT", "/api/v2/sales-cycles/deals/stages", e.prod, map[string]any{"stages": stages[2:]})
		e.fails(400, "repeats", "PUT", "/api/v2/sales-cycles/deals/stages", e.prod, map[string]any{"stages": []map[string]any{stages[0], {"name": "discovery", "outcome": "lost"}}})
		e.fails(400, "'stages[0].outcome'", "PUT", "/api/v2/sales-cycles/deals/stages", e.prod, map[string]any{"stages": []map[string]any{{"name": "A", "outcome": "maybe"}}})
		e.fails(400, "'stages' must be an array", "PUT", "/api/v2/sales-cycles/deals/stages", e.prod, map[string]any{"stages": []map[string]any{{"name": "A", "outcome": "open", "odds": 5}}})
		e.fails(403, "production keys", "PUT", "/api/v2/sales-cycles/deals/stages", e.test, map[string]any{"stages": stages})
		set := e.must("PUT", "/api/v2/sales-cycles/deals/stages", e.prod, map[string]any{"group_key": group, "stages": stages}).data()
		if set["custom"] != true || len(set["stages"].([]any)) != 4 {
			t.Fatalf("set stages: %v", set)
		}

		// A partner deal starts at the group's first open stage.
		e.tick()
		d := e.must("POST", "/api/v2/deals", e.prod, map[string]any{"partner_key": "ann", "account_name": "Globex", "amount": 1200000,
			"contact_first_name": "Hank", "contact_last_name": "Scorpio", "external_key": "crm-1", "close_date": "2026-03-31"}).data()
		key := d["key"].(string)
		if !strings.HasPrefix(key, "deal_") || d["stage"] != "Discovery" || d["outcome"] != "open" || d["source"] != "partner" ||
			d["group_key"] != group || d["close_date"] != "2026-03-31" || d["won_at"] != nil || d["origin"] != "api" {
			t.Fatalf("deal: %v", d)
		}
		wantHistory(t, d, "stage:∅>Discovery/vendor")
		e.fails(400, "'stage' must be one of the group's deal stages (Discovery, Demo, Signed, Lost)", "PATCH", "/api/v2/deals/"+key, e.prod, map[string]any{"stage": "closed won"})
		e.fails(409, "another partnership", "POST", "/api/v2/deals", e.prod, map[string]any{"partner_key": "bob", "external_key": "crm-1"})
		again := e.do("POST", "/api/v2/deals", e.prod, map[string]any{"partner_key": "ann", "external_key": "crm-1"})
		if again.header.Get("Idempotent-Replayed") != "true" || again.data()["key"] != key {
			t.Fatalf("replay: %s", again.raw)
		}

		// Winning earns deal_won offers; the amount is the deal's.
		e.must("POST", "/api/v2/offers", e.prod, map[string]any{"name": "Co-sell", "trigger": "deal_won", "type": "percent", "rate": "10"})
		e.must("POST", "/api/v2/offers", e.prod, map[string]any{"name": "Win bonus", "trigger": "deal_won", "type": "flat", "amount": 10000, "currency": "USD", "hold_days": 30})
		e.tick()
		e.must("PATCH", "/api/v2/deals/"+key, e.prod, map[string]any{"stage": "demo"})
		e.tick()
		won := e.must("PATCH", "/api/v2/deals/"+key, e.prod, map[string]any{"stage": "Signed", "close_date": nil}).data()
		today := e.clock.Now().UTC().Format("2006-01-02")
		if won["outcome"] != "won" || num(won["won_at"]) != e.clock.Now().UnixMilli() || won["close_date"] != today {
			t.Fatalf("won deal: %v", won)
		}
		wantHistory(t, won, "stage:∅>Discovery/vendor", "stage:Discovery>Demo/vendor", "stage:Demo>Signed/vendor")
		rs := e.rewardsFor("deal", key)
		byOffer := map[string]map[string]any{}
		for _, r := range rs {
			byOffer[r["offer"].(map[string]any)["description"].(string)] = r
		}
		cosell, bonus := byOffer["Co-sell"], byOffer["Win bonus"]
		if len(rs) != 2 || num(cosell["amount"]) != 120000 || cosell["reward_status"] != "approved" || num(bonus["amount"]) != 10000 ||
			bonus["reward_status"] != "pending" || num(bonus["ready_at"]) != e.clock.Now().UnixMilli()+30*86_400_000 ||
			cosell["deal"].(map[string]any)["account_name"] != "Globex" {
			t.Fatalf("deal rewards: %v", rs)
		}
		ex := e.must("GET", "/api/v2/rewards/"+cosell["key"].(string)+"/explain", e.prod, nil).data()["explanation"].(map[string]any)
		if ex["rule"] != "10% of the amount of each won deal" || ex["inputs"].(map[string]any)["deal_amount"] != "12000.00 USD" ||
			ex["formula"] != "1200000 × 10 / 100 (minor units of USD)" {
			t.Fatalf("explanation: %v", ex)
		}

		// While unpaid, the reward follows the deal's amount.
		e.tick()
		e.must("PATCH", "/api/v2/deals/"+key, e.prod, map[string]any{"amount": 1500000})
		if _, sum := liveSum(e.rewardsFor("deal", key)); sum != 150000+10000 {
			t.Fatalf("after the amount changed: %v", e.rewardsFor("deal", key))
		}

		// Lost after being won: reversed. Won again: a new win earns again.
		e.tick()
		lost := e.must("PATCH", "/api/v2/deals/"+key, e.prod, map[string]any{"stage": "Lost", "lost_reason": "budget cut"}).data()
		if lost["outcome"] != "lost" || lost["lost_reason"] != "budget cut" {
			t.Fatalf("lost deal: %v", lost)
		}
		if n, _ := liveSum(e.rewardsFor("deal", key)); n != 0 {
			t.Fatalf("lost deal keeps rewards: %v", e.rewardsFor("deal", key))
		}
		e.tick()
		e.must("PATCH", "/api/v2/deals/"+key, e.prod, map[string]any{"stage": "Signed"})
		if n, sum := liveSum(e.rewardsFor("deal", key)); n != 2 || sum != 160000 {
			t.Fatalf("re-won deal: %v", e.rewardsFor("deal", key))
		}
		// Paid, then lost again: the paid reward is clawed back.
		e.clock.Advance(31 * 24 * time.Hour)
		if _, err := e.app.Ledger.ApprovePendingNow(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := e.app.Ledger.RunPayouts(ctx, e.company.ID, "2026-01"); err != nil {
			t.Fatal(err)
		}
		po := e.must("GET", "/api/v2/payouts", e.prod, nil).items()
		if len(po) != 1 || num(po[0]["amount"]) != 160000 {
			t.Fatalf("payouts: %v", po)
		}
		e.must("POST", "/api/v2/payouts/"+po[0]["key"].(string)+"/paid", e.prod, map[string]any{"external_reference": "wire-9"})
		e.must("PATCH", "/api/v2/deals/"+key, e.prod, map[string]any{"stage": "Demo"})
		var claws int64
		for _, r := range e.must("GET", "/api/v2/rewards?limit=100&partner_key=ann", e.prod, nil).items() {
			if r["source"] == "clawback" {
				claws += num(r["amount"])
			}
		}
		if claws != -160000 {
			t.Fatalf("clawbacks add up to %d", claws)
		}

		// A vendor deal has no partner until it is given one.
		e.tick()
		vd := e.must("POST", "/api/v2/deals", e.prod, map[string]any{"source": "vendor", "group_key": group, "account_name": "Initech"}).data()
		vkey := vd["key"].(string)
		if vd["partner_key"] != nil || vd["source"] != "vendor" {
			t.Fatalf("vendor deal: %v", vd)
		}
		e.fails(400, "has no partner", "POST", "/api/v2/deals/"+vkey+"/convert", e.prod, map[string]any{"email": "it@initech.com"})
		annTok := e.partnerAuth("ann")
		e.fails(404, "not found", "GET", "/api/v2/deals/"+vkey, annTok, nil)
		e.tick()
		assigned := e.must("PATCH", "/api/v2/deals/"+vkey, e.prod, map[string]any{"partner_key": "ann"}).data()
		if assigned["partner_key"] != "ann" {
			t.Fatalf("assigned: %v", assigned)
		}
		wantHistory(t, assigned, "stage:∅>Discovery/vendor", "partner_key:∅>ann/vendor")
		e.fails(400, "'partner_key' cannot change", "PATCH", "/api/v2/deals/"+vkey, e.prod, map[string]any{"partner_key": "bob"})
		cu := e.must("POST", "/api/v2/deals/"+vkey+"/convert", e.prod, map[string]any{"email": "it@initech.com", "name": "Initech"}).data()
		if cu["partner_key"] != "ann" || cu["source_type"] != "deal" || cu["name"] != "Initech" {
			t.Fatalf("converted: %v", cu)
		}
		if c := e.must("GET", "/api/v2/deals/"+vkey, e.prod, nil).data()["customer"].(map[string]any); c["key"] != cu["key"] {
			t.Fatalf("deal customer: %v", c)
		}

		// Partner tokens: their group's stages, their own deals, at open
		// stages, as partner deals.
		if ps := e.must("GET", "/api/v2/sales-cycles/deals/stages", annTok, nil).data(); ps["group_key"] != group || ps["custom"] != true {
			t.Fatalf("ann's stages: %v", ps)
		}
		e.fails(403, "own group", "GET", "/api/v2/sales-cycles/deals/stages?group_key=grup_other", annTok, nil)
		e.tick()
		pd := e.must("POST", "/api/v2/deals", annTok, map[string]any{"account_name": "Umbrella", "stage": "demo"}).data()
		if pd["partner_key"] != "ann" || pd["origin"] != "partner" || pd["stage"] != "Demo" {
			t.Fatalf("partner deal: %v", pd)
		}
		e.fails(403, "open stage", "POST", "/api/v2/deals", annTok, map[string]any{"stage": "Signed"})
		e.fails(403, "partner deals only", "POST", "/api/v2/deals", annTok, map[string]any{"source": "vendor", "group_key": group})
		e.fails(401, "HTTP Basic", "PATCH", "/api/v2/deals/"+pd["key"].(string), annTok, map[string]any{"stage": "Signed"})
		bobTok := e.partnerAuth("bob")
		e.fails(404, "not found", "GET", "/api/v2/deals/"+key, bobTok, nil)
		if n := e.count("/api/v2/deals", bobTok); n != 0 {
			t.Fatalf("bob sees %d deals", n)
		}
		if n := e.count("/api/v2/deals", annTok); n != 3 {
			t.Fatalf("ann sees %d deals", n)
		}
		if keys := e.must("GET", "/api/v2/deals?outcome=open&source=partner", e.prod, nil).keys(); len(keys) != 2 {
			t.Fatalf("open partner deals: %v", keys)
		}
		if keys := e.must("GET", "/api/v2/deals?stage=demo", e.prod, nil).keys(); len(keys) != 2 {
			t.Fatalf("deals at Demo: %v", keys)
		}

		// Archive.
		e.must("DELETE", "/api/v2/deals/"+pd["key"].(string), e.prod, nil)
		e.fails(409, "archived", "PATCH", "/api/v2/deals/"+pd["key"].(string), e.prod, map[string]any{"stage": "Signed"})
		if n := e.count("/api/v2/deals", e.prod); n != 2 {
			t.Fatalf("deals after archive: %d", n)
		}
	})
}

// Offers created after leads were approved and deals won apply at the next
// recompute; a recompute of unchanged data changes nothing.
func TestPipelineRecompute(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.partnership("ann@agency.io", "ann")
		var dealKeys []string
		for i := 0; i < 3; i++ {
			e.tick()
			d := e.must("POST", "/api/v2/deals", e.prod, map[string]any{"partner_key": "ann", "amount": 10000 * (i + 1), "stage": "closed won"}).data()
			dealKeys = append(dealKeys, d["key"].(string))
		}
		e.tick()
		e.must("POST", "/api/v2/deals", e.prod, map[string]any{"source": "vendor", "group_key": e.must("GET", "/api/v2/sales-cycles/deals/stages", e.prod, nil).data()["group_key"], "stage": "closed won", "amount": 999})
		e.tick()
		lead := e.must("POST", "/api/v2/leads", e.prod, map[string]any{"partner_key": "ann", "approved": true}).data()
		e.must("POST", "/api/v2/leads", e.prod, map[string]any{"partner_key": "ann"})
		if n := e.count("/api/v2/rewards", e.prod); n != 0 {
			t.Fatalf("rewards before any offer: %d", n)
		}
		e.must("POST", "/api/v2/offers", e.prod, map[string]any{"name": "Co-sell", "trigger": "deal_won", "type": "percent", "rate": "5"})
		e.must("POST", "/api/v2/offers", e.prod, map[string]any{"name": "Lead", "trigger": "lead_approved", "type": "flat", "amount": 700, "currency": "EUR"})
		res, err := e.app.Ledger.Recompute(ctx, e.company.ID)
		if err != nil {
			t.Fatal(err)
		}
		if res.Created != 4 || res.Updated != 0 || res.Archived != 0 {
			t.Fatalf("recompute: %+v", res)
		}
		for i, k := range dealKeys {
			if _, sum := liveSum(e.rewardsFor("deal", k)); sum != int64(500*(i+1)) {
				t.Fatalf("deal %d rewards: %v", i, e.rewardsFor("deal", k))
			}
		}
		if rs := e.rewardsFor("lead", lead["key"].(string)); len(rs) != 1 || rs[0]["currency"] != "EUR" {
			t.Fatalf("lead rewards: %v", rs)
		}
		res, err = e.app.Ledger.Recompute(ctx, e.company.ID)
		if err != nil {
			t.Fatal(err)
		}
		// Three partner deals and two leads; the partnerless deal is nobody's cause.
		if res.Created != 0 || res.Updated != 0 || res.Archived != 0 || res.Causes != 5 {
			t.Fatalf("second recompute: %+v", res)
		}
	})
}

func TestPipelineWebhooks(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		rc := newReceiver(t, 0)
		e.must("POST", "/api/v2/webhooks", e.prod, map[string]any{"target_url": rc.url,
			"events": []string{"lead.created", "lead_updated", "deal.created", "deal.updated"}})
		e.partnership("ann@agency.io", "ann")
		// A body is the object as it is when the event is delivered, so each
		// change waits for the delivery before it.
		l := e.must("POST", "/api/v2/leads", e.prod, map[string]any{"partner_key": "ann"}).data()
		rc.wait(t, 1)
		e.tick()
		e.must("PATCH", "/api/v2/leads/"+l["key"].(string), e.prod, map[string]any{"status": "dead"})
		rc.wait(t, 2)
		d := e.must("POST", "/api/v2/deals", e.prod, map[string]any{"partner_key": "ann"}).data()
		rc.wait(t, 3)
		e.tick()
		e.must("PATCH", "/api/v2/deals/"+d["key"].(string), e.prod, map[string]any{"stage": "closed won"})
		got := rc.wait(t, 4)
		seen := map[string]map[string]any{}
		for _, g := range got {
			var body map[string]any
			if err := json.Unmarshal(g.body, &body); err != nil {
				t.Fatal(err)
			}
			seen[g.event] = body
		}
		if len(got) != 4 || len(seen) != 4 {
			t.Fatalf("deliveries: %d, events %v", len(got), seen)
		}
		if b := seen["lead.created"]; b["key"] != l["key"] || b["event"] != "lead.created" || b["status"] != "open" {
			t.Fatalf("lead.created: %v", b)
		}
		if b := seen["lead_updated"]; b["key"] != l["key"] || b["event"] != "lead_updated" || b["status"] != "dead" {
			t.Fatalf("lead_updated: %v", b)
		}
		if b := seen["deal.created"]; b["key"] != d["key"] || b["stage"] != "open" {
			t.Fatalf("deal.created: %v", b)
		}
		if b := seen["deal.updated"]; b["key"] != d["key"] || b["outcome"] != "won" || len(b["history"].([]any)) != 2 {
			t.Fatalf("deal.updated: %v", b)
		}
	})
}

// A change to a won deal settles what today's offers pay and leaves alone
// what an archived offer paid, as archiving an offer promises.
func TestArchivedOfferKeepsDealRewards(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		e.partnership("ann@agency.io", "ann")
		old := e.must("POST", "/api/v2/offers", e.prod, map[string]any{"name": "Old bonus", "trigger": "deal_won", "type": "flat", "amount": 1000, "currency": "USD"}).data()
		e.tick()
		d := e.must("POST", "/api/v2/deals", e.prod, map[string]any{"partner_key": "ann", "stage": "closed won", "amount": 20000}).data()
		key := d["key"].(string)
		e.must("DELETE", "/api/v2/offers/"+old["key"].(string), e.prod, nil)
		e.must("POST", "/api/v2/offers", e.prod, map[string]any{"name": "New share", "trigger": "deal_won", "type": "percent", "rate": "10"})
		e.tick()
		e.must("PATCH", "/api/v2/deals/"+key, e.prod, map[string]any{"amount": 30000})
		rs := e.rewardsFor("deal", key)
		if n, sum := liveSum(rs); n != 2 || sum != 1000+3000 {
			t.Fatalf("after the archived offer and a change: %v", rs)
		}
	})
}

// Requests racing with one new external_key store one lead (and one deal)
// and all get it back.
func TestConcurrentPipelineCreatesStoreOnce(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		e.partnership("ann@agency.io", "ann")
		for _, path := range []string{"/api/v2/leads", "/api/v2/deals"} {
			const n = 8
			keys := make(chan string, n)
			var wg sync.WaitGroup
			for i := 0; i < n; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					req, _ := http.NewRequest("POST", e.base+path, strings.NewReader(`{"partner_key":"ann","external_key":"race-1","amount":100}`))
					req.Header.Set("Authorization", e.prod.header)
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						keys <- "error: " + err.Error()
						return
					}
					defer resp.Body.Close()
					var body struct {
						Data struct{ Key string } `json:"data"`
					}
					_ = json.NewDecoder(resp.Body).Decode(&body)
					keys <- fmt.Sprintf("%d %s", resp.StatusCode, body.Data.Key)
				}()
			}
			wg.Wait()
			close(keys)
			seen := map[string]int{}
			for k := range keys {
				seen[k]++
			}
			if len(seen) != 1 {
				t.Fatalf("%s: answers %v", path, seen)
			}
			for k := range seen {
				if !strings.HasPrefix(k, "200 ") {
					t.Fatalf("%s: answers %v", path, seen)
				}
			}
		}
		if e.countRows("leads") != 1 || e.countRows("deals") != 1 {
			t.Fatalf("stored %d leads and %d deals", e.countRows("leads"), e.countRows("deals"))
		}
	})
}
