package app_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/partnerd/partnerd/internal/accounts"
	"github.com/partnerd/partnerd/internal/hub"
)

// TestHubPagesShowTheNewestMissedAndReferrals: the report shows the
// newest missed rewards and says how many there are; the missed rewards
// page lists them all, newest first, by kind, and exports them; the
// referrals come newest first.
func TestHubPagesShowTheNewestMissedAndReferrals(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		// No offer: each payment and each referral is missed.
		e.partnership("ann@agency.io", "ann")
		for i := range 8 {
			e.customer(fmt.Sprint("c", i), fmt.Sprintf("c%d@client%d.com", i, i), "ann")
			e.tick()
			e.txn(fmt.Sprint("c", i), 1000, "USD", nil)
		}
		tok, err := e.app.Program.CreatePartnerToken(ctx, e.company.Key, "ann")
		if err != nil {
			t.Fatal(err)
		}
		ws, err := e.app.Hub.EnsureWorkspace(ctx, "Agency")
		if err != nil {
			t.Fatal(err)
		}
		c, err := e.app.Hub.Connect(ctx, hub.ConnectInput{Workspace: "Agency", Name: "Acme", BaseURL: e.base + "/api/v2", Token: tok})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.app.Hub.Sync(ctx, c.Key, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := e.app.Accounts.CreateUser(ctx, accounts.UserInput{Kind: accounts.Agency, Email: "agency@agency.test",
			Password: "correct horse battery", Role: accounts.Owner, WorkspaceID: ws.ID}); err != nil {
			t.Fatal(err)
		}
		rep, err := e.app.Hub.Report(ctx, "Agency")
		if err != nil {
			t.Fatal(err)
		}
		missed := rep.Missed // oldest first
		if len(missed) != 16 {
			t.Fatalf("missed: %d, want a payment and a referral of each of 8 customers: %+v", len(missed), missed)
		}
		w := e.web()
		if p := w.login("/login", "agency@agency.test", "correct horse battery"); p.status != 303 {
			t.Fatalf("log-in: %d", p.status)
		}

		report := w.get("/hub/report")
		if report.status != 200 || !strings.Contains(report.body, "16 in all; the newest 10 below") || !strings.Contains(report.body, `href="/hub/missed"`) {
			t.Fatalf("the report's missed rewards: %d %s", report.status, report.body)
		}
		for i, m := range missed { // each key is one record's
			if shown := strings.Contains(report.body, "<code>"+m.Key+"</code>"); shown != (i >= 6) {
				t.Fatalf("the report shows missed %d of 16 (%s %s): %v; want the newest ten", i, m.Kind, m.Key, shown)
			}
		}

		all := w.get("/hub/missed")
		if all.status != 200 {
			t.Fatalf("/hub/missed: %d", all.status)
		}
		last := -1
		for i := len(missed) - 1; i >= 0; i-- { // newest first
			at := strings.Index(all.body, "<code>"+missed[i].Key+"</code>")
			if at <= last {
				t.Fatalf("/hub/missed leaves out %s %s, or does not list it after the newer ones", missed[i].Kind, missed[i].Key)
			}
			last = at
		}
		payments := w.get("/hub/missed?kind=transaction_without_reward")
		if n := strings.Count(payments.body, ">transaction_without_reward</span>"); payments.status != 200 || n != 8 || strings.Contains(payments.body, ">referral_without_reward</span>") {
			t.Fatalf("/hub/missed by kind: %d, %d payments", payments.status, n)
		}
		export := w.get("/hub/missed?format=csv")
		lines := strings.Split(strings.TrimSpace(export.body), "\n")
		if export.status != 200 || len(lines) != 17 || !strings.HasPrefix(lines[0], "program,kind,key") || !strings.Contains(lines[1], missed[15].Key) {
			t.Fatalf("the export: %d %q", export.status, lines)
		}

		refs, err := e.app.Hub.Referrals(ctx, "Agency")
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i < len(refs); i++ {
			if refs[i].CreatedAt > refs[i-1].CreatedAt {
				t.Fatalf("referrals are not newest first: %d then %d", refs[i-1].CreatedAt, refs[i].CreatedAt)
			}
		}
		page := w.get("/hub/referrals")
		if len(refs) != 8 || page.status != 200 || strings.Index(page.body, "c7@client7.com") > strings.Index(page.body, "c0@client0.com") {
			t.Fatalf("the referrals page is not newest first (%d referrals)", len(refs))
		}
	})
}
