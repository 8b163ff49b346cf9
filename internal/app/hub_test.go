package app_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

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

		// The model: organizations by domain (a gmail address is a person),
		// and a deal per referral that paid, with its stages.
		accounts, err := agency.app.Hub.Accounts(ctx, "Agency")
		if err != nil {
			t.Fatal(err)
		}
		names := map[string]hub.Account{}
		for _, a := range accounts {
			names[a.Name] = a
		}
		if a := names["client.com"]; len(a.Contacts) != 2 || strings.Join(a.Programs, ",") != "Acme,Globex" {
			t.Fatalf("client.com: %+v", a)
		}
		if a, ok := names["c2@gmail.com"]; !ok || a.Domain != "gmail.com" || len(a.Contacts) != 1 || len(accounts) != 4 {
			t.Fatalf("accounts: %+v", accounts)
		}
		deals, err := agency.app.Hub.Deals(ctx, "Agency")
		if err != nil {
			t.Fatal(err)
		}
		if len(deals) != 4 { // c1..c4 paid; g1 never did
			t.Fatalf("deals: %+v", deals)
		}
		for _, d := range deals {
			if d.Origin != "referral" || d.Stage != "paying" || d.FirstPaidAt == nil || len(d.History) != 2 || d.History[1].To != "paying" {
				t.Fatalf("deal: %+v", d)
			}
		}
	})
}

// A vendor syncing its own program with its key pair also reads groups,
// leads and deals.
func TestHubSyncsWithVendorKeys(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.partnership("ann@agency.io", "ann")
		e.customer("c1", "c1@client.com", "ann")
		e.must("POST", "/api/v2/groups", e.prod, map[string]any{"name": "Gold"})
		e.must("POST", "/api/v2/leads", e.prod, map[string]any{"partner_key": "ann", "external_key": "l@x.com"})
		e.must("POST", "/api/v2/deals", e.prod, map[string]any{"partner_key": "ann", "stage": "closed won", "amount": 5000})
		agency := start(t, freshDSN(t, e))
		c, err := agency.app.Hub.Connect(ctx, hub.ConnectInput{Workspace: "Acme itself", Name: "Acme", BaseURL: e.base + "/api/v2",
			PublicKey: e.company.Production.PublicKey, SecretKey: e.company.Production.SecretKey})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := agency.app.Hub.Sync(ctx, c.Key, nil); err != nil {
			t.Fatal(err)
		}
		for stream, path := range map[string]string{"groups": "/api/v2/groups", "leads": "/api/v2/leads", "deals": "/api/v2/deals",
			"partnerships": "/api/v2/partnerships?include_archived=true", "customers": "/api/v2/customers?include_archived=true"} {
			if got, want := agency.hubCount(stream), e.count(path, e.prod); got != want || want == 0 {
				t.Errorf("%s: the hub holds %d, the program has %d", stream, got, want)
			}
		}
		var stage string
		if err := agency.app.DB.QueryRow(ctx, "SELECT status FROM hub_records WHERE stream = 'deals'").Scan(&stage); err != nil || stage != "closed won" {
			t.Fatalf("the deal's stage: %q %v", stage, err)
		}
		leads, err := agency.app.Hub.Leads(ctx, "Acme itself")
		if err != nil || len(leads) != 1 || leads[0].ExternalKey != "l@x.com" || leads[0].PartnerKey != "ann" || leads[0].Status != "open" ||
			leads[0].Approved || len(leads[0].History) != 1 {
			t.Fatalf("leads: %+v %v", leads, err)
		}
		// Where the source has deals, they are the deals (not one per referral).
		deals, err := agency.app.Hub.Deals(ctx, "Acme itself")
		if err != nil || len(deals) != 1 || deals[0].Origin != "source" || deals[0].Stage != "closed won" || deals[0].Amount != 5000 ||
			len(deals[0].History) != 1 || deals[0].History[0].To != "closed won" {
			t.Fatalf("source deals: %+v %v", deals, err)
		}
		if _, err := agency.app.Hub.Connect(ctx, hub.ConnectInput{Workspace: "x", Name: "y", BaseURL: e.base + "/api/v2", Token: "t",
			PublicKey: "pk"}); err == nil || !strings.Contains(err.Error(), "either a partner 'token'") {
			t.Fatalf("a token and a key pair at once: %v", err)
		}
	})
}

// The hub's API: a workspace token sees and manages its own connections.
func TestHubAPI(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.must("POST", "/api/v2/offers", e.prod, map[string]any{"name": "Share", "trigger": "transaction", "type": "percent", "rate": "10"})
		e.partnership("ann@agency.io", "ann")
		e.customer("c1", "c1@client.com", "ann")
		e.txn("c1", 10000, "USD", nil)
		ptok := strings.TrimPrefix(e.partnerAuth("ann").header, "Bearer ")

		agency := start(t, freshDSN(t, e))
		tok, err := agency.app.Hub.CreateToken(ctx, "Northwind")
		if err != nil {
			t.Fatal(err)
		}
		hubAuth, otherAuth := bearer(tok), auth{}
		other, err := agency.app.Hub.CreateToken(ctx, "Rival agency")
		if err != nil {
			t.Fatal(err)
		}
		otherAuth = bearer(other)
		agency.fails(401, "workspace token", "GET", "/api/hub/connections", auth{}, nil)
		agency.fails(401, "workspace token", "GET", "/api/hub/connections", agency.prod, nil)
		agency.fails(401, "not valid", "GET", "/api/hub/connections", bearer("hubk_nope"), nil)
		agency.fails(400, "'name' is a required property", "POST", "/api/hub/connections", hubAuth, map[string]any{"token": ptok})
		agency.fails(400, "either a partner 'token'", "POST", "/api/hub/connections", hubAuth, map[string]any{"name": "Acme"})
		agency.fails(400, "refused the credentials", "POST", "/api/hub/connections", hubAuth,
			map[string]any{"name": "Acme", "token": "ptok_wrong", "base_url": e.base + "/api/v2"})
		c := agency.must("POST", "/api/hub/connections", hubAuth, map[string]any{"name": "Acme", "token": ptok, "base_url": e.base + "/api/v2"}).data()
		if c["status"] != "active" || c["auth"] != "bearer" || strings.Contains(string(agency.do("GET", "/api/hub/connections", hubAuth, nil).raw), ptok) {
			t.Fatalf("connection: %v", c)
		}
		key := c["key"].(string)
		if n := agency.count("/api/hub/connections", hubAuth); n != 1 {
			t.Fatalf("connections: %d", n)
		}
		if n := agency.count("/api/hub/connections", otherAuth); n != 0 {
			t.Fatalf("another workspace sees %d connections", n)
		}
		agency.fails(404, "not found", "GET", "/api/hub/connections/"+key, otherAuth, nil)
		agency.fails(404, "not found", "POST", "/api/hub/connections/"+key+"/sync", otherAuth, nil)

		queued := agency.do("POST", "/api/hub/connections/"+key+"/sync", hubAuth, nil)
		if queued.status != 202 || num(queued.data()["next_sync_at"]) != 0 {
			t.Fatalf("sync soon: %d %s", queued.status, queued.raw)
		}
		agency.runQueued(key)
		streams := map[string]map[string]any{}
		for _, it := range agency.must("GET", "/api/hub/connections/"+key+"/streams", hubAuth, nil).items() {
			streams[it["stream"].(string)] = it
		}
		if num(streams["customers"]["records"]) != 1 || num(streams["rewards"]["records"]) != 1 || streams["rewards"]["in_flight"] != false {
			t.Fatalf("streams: %v", streams)
		}
		rep := agency.must("GET", "/api/hub/report", hubAuth, nil).data()
		progs := rep["programs"].([]any)
		if len(progs) != 1 || progs[0].(map[string]any)["program"] != "Acme" {
			t.Fatalf("report: %v", rep)
		}
		money := progs[0].(map[string]any)["money"].([]any)[0].(map[string]any)
		if num(money["revenue"]) != 10000 || num(money["earned"]) != 1000 {
			t.Fatalf("report money: %v", money)
		}
		if other := agency.must("GET", "/api/hub/report", otherAuth, nil).data(); len(other["programs"].([]any)) != 0 {
			t.Fatalf("another workspace's report: %v", other)
		}
		if accts := agency.must("GET", "/api/hub/accounts", hubAuth, nil).items(); len(accts) != 1 || accts[0]["name"] != "client.com" {
			t.Fatalf("accounts: %v", accts)
		}
		deals := agency.must("GET", "/api/hub/deals", hubAuth, nil).items()
		if len(deals) != 1 || deals[0]["origin"] != "referral" || deals[0]["stage"] != "paying" || num(deals[0]["amount"]) != 10000 {
			t.Fatalf("deals: %v", deals)
		}
		if n := agency.count("/api/hub/deals", otherAuth); n != 0 {
			t.Fatalf("another workspace sees %d deals", n)
		}
		programs := agency.must("GET", "/api/hub/programs", hubAuth, nil).items()
		if len(programs) != 1 || programs[0]["name"] != "Acme" || programs[0]["partner_key"] != "ann" || programs[0]["status"] != "active" ||
			programs[0]["group"].(map[string]any)["name"] != "Default" || len(programs[0]["terms_history"].([]any)) != 1 {
			t.Fatalf("programs: %v", programs)
		}
		refs := agency.must("GET", "/api/hub/referrals", hubAuth, nil).items()
		if len(refs) != 1 || refs[0]["external_key"] != "c1" || refs[0]["paying"] != true || refs[0]["attribution"] != "api" ||
			refs[0]["status"] != "active" || refs[0]["removed_at"] != nil || refs[0]["partnership_key"] != programs[0]["partnership_key"] ||
			num(refs[0]["revenue"].(map[string]any)["USD"]) != 10000 || num(refs[0]["rewards_earned"].(map[string]any)["USD"]) != 1000 {
			t.Fatalf("referrals: %v", refs)
		}

		// The program moves the partner to another tier: the next sync keeps
		// both terms, with when the hub saw each.
		gold := e.must("POST", "/api/v2/groups", e.prod, map[string]any{"name": "Gold"}).data()
		e.tick()
		e.must("PATCH", "/api/v2/partnerships/ann", e.prod, map[string]any{"group_key": gold["key"]})
		if r := agency.do("POST", "/api/hub/connections/"+key+"/sync", hubAuth, nil); r.status != 202 {
			t.Fatalf("sync soon: %d", r.status)
		}
		agency.runQueued(key)
		p := agency.must("GET", "/api/hub/programs", hubAuth, nil).items()[0]
		history := p["terms_history"].([]any)
		last := history[len(history)-1].(map[string]any)["terms"].(map[string]any)
		if p["group"].(map[string]any)["name"] != "Gold" || len(history) != 2 || last["group"].(map[string]any)["name"] != "Gold" {
			t.Fatalf("the program after the move: %v", p)
		}
	})
}

func slogDiscard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// runQueued runs a connection that was queued to sync soon, as the
// schedule would, and waits until it has run: the server's own schedule
// may be running it already, holding its lease (it looks at start-up).
func (e *env) runQueued(key string) {
	e.t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := e.app.Hub.RunDue(ctx, slogDiscard()); err != nil {
			e.t.Fatal(err)
		}
		c, err := e.app.Hub.ConnectionByKey(ctx, key)
		if err != nil {
			e.t.Fatal(err)
		}
		if c.NextSyncAt != 0 && c.LastSyncAt != nil {
			var inFlight int
			if err := e.app.DB.QueryRow(ctx, "SELECT COUNT(*) FROM hub_connections WHERE key = ? AND lease_until > 0", key).Scan(&inFlight); err != nil {
				e.t.Fatal(err)
			}
			if inFlight == 0 {
				return // claimed (next moved on), synced, and its lease given back
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("the queued sync of %s did not run", key)
}
