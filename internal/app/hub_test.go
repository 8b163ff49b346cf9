package app_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/partnerd/partnerd/internal/hub"
)

// hubCount counts a connection's live records of a stream.
func (e *env) hubCount(stream string) int {
	e.t.Helper()
	return e.countRows("hub_records WHERE stream = '" + stream + "' AND deleted_at IS NULL")
}

func byStream(res []hub.StreamResult) map[string]hub.StreamResult {
	out := map[string]hub.StreamResult{}
	for _, r := range res {
		out[r.Stream] = r
	}
	return out
}

// An agency connects a partnerd program with its partner token and syncs
// it into its own partnerd (another database): what it reads is what the
// program shows that partner; a second sync changes nothing; a reward's
// status change at the source arrives with its history.
func TestHubSyncsAPartnerdProgram(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.must("POST", "/api/v2/offers", e.prod, map[string]any{"name": "Share", "trigger": "transaction", "type": "percent", "rate": "20"})
		e.partnership("ann@agency.io", "ann")
		e.partnership("bob@other.io", "bob")
		for i, k := range []string{"c1", "c2", "c3"} {
			e.customer(k, k+"@client.com", "ann")
			e.txn(k, int64(1000*(i+1)), "USD", nil)
		}
		e.customer("b1", "b1@client.com", "bob")
		e.txn("b1", 999, "USD", nil)
		e.must("POST", "/api/v2/actions", e.prod, map[string]any{"type": "demo", "value": 1, "target_type": "partnership", "target_key": "ann"})
		if _, err := e.app.Ledger.RunPayouts(ctx, e.company.ID, "2026-01"); err != nil {
			t.Fatal(err)
		}
		ann := e.partnerAuth("ann")
		tok := strings.TrimPrefix(ann.header, "Bearer ")

		agency := start(t, freshDSN(t, e))
		_, err := agency.app.Hub.Connect(ctx, hub.ConnectInput{Workspace: "Agency", Name: "Acme", BaseURL: e.base + "/api/v2", Token: "ptok_wrong"})
		if err == nil || !strings.Contains(err.Error(), "refused the credentials") {
			t.Fatalf("a wrong token: %v", err)
		}
		if n := agency.countRows("hub_connections"); n != 0 {
			t.Fatalf("a refused connection was stored: %d", n)
		}
		c, err := agency.app.Hub.Connect(ctx, hub.ConnectInput{Workspace: "Agency", Name: "Acme", BaseURL: e.base + "/api/v2", Token: tok})
		if err != nil {
			t.Fatal(err)
		}
		var sealed string
		if err := agency.app.DB.QueryRow(ctx, "SELECT secret FROM hub_connections WHERE key = ?", c.Key).Scan(&sealed); err != nil || strings.Contains(sealed, tok) {
			t.Fatalf("the token is stored in the clear: %q %v", sealed, err)
		}

		res, err := agency.app.Hub.Sync(ctx, c.Key, nil)
		if err != nil {
			t.Fatal(err)
		}
		for stream, path := range map[string]string{"partnerships": "/api/v2/partnerships", "customers": "/api/v2/customers?include_archived=true",
			"transactions": "/api/v2/transactions?include_archived=true", "rewards": "/api/v2/rewards?include_archived=true",
			"payouts": "/api/v2/payouts", "actions": "/api/v2/actions"} {
			want := e.count(path, ann)
			if got := agency.hubCount(stream); got != want || want == 0 {
				t.Errorf("%s: the hub holds %d, the program shows the partner %d", stream, got, want)
			}
		}
		if n := agency.hubCount("groups"); n != 0 {
			t.Fatalf("a partner token synced vendor-only streams: %d groups", n)
		}
		if _, ok := byStream(res)["leads"]; ok {
			t.Fatal("a partner token synced leads")
		}

		// Unchanged: one request a stream, nothing written.
		again, err := agency.app.Hub.Sync(ctx, c.Key, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range again {
			if r.Created != 0 || r.Changed != 0 || r.Requests != 1 {
				t.Fatalf("an unchanged re-sync of %s: %+v", r.Stream, r)
			}
		}

		// A reward declined at the source: the next sync brings the change.
		rw := e.must("GET", "/api/v2/rewards?partner_key=ann&limit=1", e.prod, nil).items()[0]
		e.must("POST", "/api/v2/rewards/"+rw["key"].(string)+"/decline", e.prod, map[string]any{"reason": "duplicate"})
		third, err := agency.app.Hub.Sync(ctx, c.Key, nil)
		if err != nil {
			t.Fatal(err)
		}
		if r := byStream(third)["rewards"]; r.Changed != 1 || r.Created != 0 {
			t.Fatalf("after a decline: %+v", r)
		}
		var from, to string
		if err := agency.app.DB.QueryRow(ctx, `SELECT COALESCE(ch.from_value, ''), ch.to_value FROM hub_record_changes ch
			JOIN hub_records r ON r.id = ch.record_id WHERE r.key = ? ORDER BY ch.id DESC LIMIT 1`, rw["key"]).Scan(&from, &to); err != nil {
			t.Fatal(err)
		}
		if from != rw["reward_status"] || to != "declined" {
			t.Fatalf("status history: %s -> %s", from, to)
		}
	})
}

// The report of an agency with two programs: months, missed rewards with
// their reasons, payouts reconciled, an organization in both programs.
func TestHubReport(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		offer := e.must("POST", "/api/v2/offers", e.prod, map[string]any{"name": "Share", "trigger": "transaction", "type": "percent", "rate": "20"}).data()
		e.partnership("ann@agency.io", "ann")
		for i, k := range []string{"c1@client.com", "c2@gmail.com", "c3@other.com"} {
			e.customer(fmt.Sprint("c", i+1), k, "ann")
			e.txn(fmt.Sprint("c", i+1), int64(1000*(i+1)), "USD", nil)
		}
		declined := e.must("GET", "/api/v2/rewards?customer_key=c2", e.prod, nil).items()[0]
		e.must("POST", "/api/v2/rewards/"+declined["key"].(string)+"/decline", e.prod, map[string]any{"reason": "duplicate account"})
		e.must("DELETE", "/api/v2/offers/"+offer["key"].(string), e.prod, nil)
		e.customer("c4", "c4@nooffer.com", "ann")
		unrewarded := e.txn("c4", 500, "USD", nil)
		if _, err := e.app.Ledger.RunPayouts(ctx, e.company.ID, "2026-01"); err != nil {
			t.Fatal(err)
		}
		po := e.must("GET", "/api/v2/payouts", e.prod, nil).items()
		if len(po) != 1 {
			t.Fatalf("payouts: %v", po)
		}
		e.must("POST", "/api/v2/payouts/"+po[0]["key"].(string)+"/paid", e.prod, map[string]any{"external_reference": "wire-1"})

		// A second program in the same engine, with a customer of the same organization.
		other, otherAuth := e.newCompany("Globex")
		e.must("POST", "/api/v2/partnerships", otherAuth, map[string]any{"email": "ann@agency.io", "partner_key": "ann-g"})
		e.must("POST", "/api/v2/customers", otherAuth, map[string]any{"customer_key": "g1", "email": "cfo@client.com", "partner_key": "ann-g"})
		tokA, err := e.app.Program.CreatePartnerToken(ctx, e.company.Key, "ann")
		if err != nil {
			t.Fatal(err)
		}
		tokG, err := e.app.Program.CreatePartnerToken(ctx, other.Key, "ann-g")
		if err != nil {
			t.Fatal(err)
		}

		agency := start(t, freshDSN(t, e))
		for name, tok := range map[string]string{"Acme": tokA, "Globex": tokG} {
			c, err := agency.app.Hub.Connect(ctx, hub.ConnectInput{Workspace: "Agency", Name: name, BaseURL: e.base + "/api/v2", Token: tok})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := agency.app.Hub.Sync(ctx, c.Key, nil); err != nil {
				t.Fatal(err)
			}
		}
		rep, err := agency.app.Hub.Report(ctx, "Agency")
		if err != nil {
			t.Fatal(err)
		}
		var acme *hub.ProgramMonth
		for i, p := range rep.Programs {
			if p.Program == "Acme" && p.Month == "2026-01" {
				acme = &rep.Programs[i]
			}
		}
		if acme == nil || acme.Referrals != 4 || len(acme.Money) != 1 {
			t.Fatalf("programs: %+v", rep.Programs)
		}
		m := acme.Money[0]
		paid := num(po[0]["amount"])
		if m.Currency != "USD" || m.Revenue != 6500 || m.Earned != 1200 || m.Declined != 400 || m.Paid != paid || m.Paid+m.Declined != m.Earned {
			t.Fatalf("Acme's January: %+v (payout %d)", m, paid)
		}
		kinds := map[string]hub.Missed{}
		for _, x := range rep.Missed {
			kinds[x.Kind+" "+x.Key] = x
		}
		if x, ok := kinds["declined "+declined["key"].(string)]; !ok || x.Reason != "duplicate account" || x.Amount != 400 || x.Program != "Acme" {
			t.Fatalf("missed: %+v", rep.Missed)
		}
		if _, ok := kinds["transaction_without_reward "+unrewarded["key"].(string)]; !ok {
			t.Fatalf("the payment that earned nothing is not reported: %+v", rep.Missed)
		}
		c4 := e.must("GET", "/api/v2/customers/c4", e.prod, nil).data()["key"].(string)
		if _, ok := kinds["referral_without_reward "+c4]; !ok || len(rep.Missed) != 3 {
			t.Fatalf("missed: %+v", rep.Missed)
		}
		if len(rep.Reconciliation) != 1 || rep.Reconciliation[0].RewardsPaid != paid || rep.Reconciliation[0].Difference != 0 {
			t.Fatalf("reconciliation: %+v", rep.Reconciliation)
		}
		if len(rep.SharedAccounts) != 1 || rep.SharedAccounts[0].Domain != "client.com" ||
			strings.Join(rep.SharedAccounts[0].Programs, ",") != "Acme,Globex" {
			t.Fatalf("shared accounts: %+v", rep.SharedAccounts)
		}
	})
}
