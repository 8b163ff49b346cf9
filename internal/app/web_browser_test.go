package app_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/partnerd/partnerd/internal/accounts"
)

// pageWatch collects what a page reports as wrong: uncaught exceptions,
// console errors and browser log errors (a CSP violation is one).
type pageWatch struct {
	mu       sync.Mutex
	problems []string
}

func watch(ctx context.Context) *pageWatch {
	w := &pageWatch{}
	chromedp.ListenTarget(ctx, func(ev any) {
		w.mu.Lock()
		defer w.mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			w.problems = append(w.problems, "exception: "+e.ExceptionDetails.Text)
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.APITypeError || e.Type == runtime.APITypeAssert {
				var args []string
				for _, a := range e.Args {
					args = append(args, string(a.Value))
				}
				w.problems = append(w.problems, "console error: "+strings.Join(args, " "))
			}
		case *cdplog.EventEntryAdded:
			if e.Entry.Level == cdplog.LevelError {
				w.problems = append(w.problems, "log error: "+e.Entry.Text+" "+e.Entry.URL)
			}
		}
	})
	return w
}

func (w *pageWatch) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := w.problems
	w.problems = nil
	return p
}

// run runs browser actions; on failure it saves a screenshot of the page
// and fails the test with its path.
func run(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action) {
	t.Helper()
	if err := chromedp.Run(ctx, actions...); err != nil {
		var shot []byte
		path := ""
		if chromedp.Run(ctx, chromedp.FullScreenshot(&shot, 80)) == nil {
			dir := os.Getenv("PARTNERD_TEST_SCREENSHOTS")
			if dir == "" {
				dir = os.TempDir()
			}
			path = filepath.Join(dir, fmt.Sprintf("%s-%s.jpg", strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()), strings.ReplaceAll(what, " ", "_")))
			if os.WriteFile(path, shot, 0o644) != nil {
				path = ""
			}
		}
		t.Fatalf("%s: %v (screenshot: %s)", what, err, path)
	}
}

// visit loads a page and checks it rendered its heading with no problem
// reported by the page.
func visit(t *testing.T, ctx context.Context, w *pageWatch, base, path, heading string) {
	t.Helper()
	var h1 string
	run(t, ctx, "visit "+path, chromedp.Navigate(base+path), chromedp.WaitVisible("main h1", chromedp.ByQuery), chromedp.Text("main h1", &h1, chromedp.ByQuery))
	if !strings.Contains(h1, heading) {
		t.Fatalf("%s: heading %q, want %q", path, h1, heading)
	}
	if p := w.take(); len(p) > 0 {
		t.Fatalf("%s reported problems: %v", path, p)
	}
}

func browserLogin(t *testing.T, ctx context.Context, base, path, email, password string) {
	t.Helper()
	run(t, ctx, "log in at "+path, chromedp.Navigate(base+path), chromedp.WaitVisible(`input[name=email]`, chromedp.ByQuery),
		chromedp.SendKeys(`input[name=email]`, email, chromedp.ByQuery), chromedp.SendKeys(`input[name=password]`, password, chromedp.ByQuery),
		chromedp.Submit(`input[name=password]`, chromedp.ByQuery), chromedp.WaitVisible("main h1", chromedp.ByQuery))
}

func TestWebInABrowser(t *testing.T) {
	chromiumPath(t)
	engines(t, func(t *testing.T, e *env) {
		annID, reward := e.seedReviewable()
		e.webUser(accounts.Vendor, "owner@acme.test", accounts.Owner, 0)
		e.webUser(accounts.Partner, "ann@partner.test", accounts.Viewer, annID)
		ws, err := e.app.Hub.EnsureWorkspace(context.Background(), "Agency")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.app.Accounts.CreateUser(context.Background(), accounts.UserInput{Kind: accounts.Agency, Email: "agency@agency.test",
			Password: "correct horse battery", Role: accounts.Owner, WorkspaceID: ws.ID}); err != nil {
			t.Fatal(err)
		}

		// The vendor: every page, then approving the pending reward by
		// ticking it and pressing Approve.
		ctx := browser(t)
		w := watch(ctx)
		run(t, ctx, "enable the log", cdplog.Enable())
		browserLogin(t, ctx, e.base, "/login", "owner@acme.test", "correct horse battery")
		for path, h := range map[string]string{"/app": "Overview", "/app/partners": "Partners", "/app/partners/ann": "ann",
			"/app/customers": "Customers", "/app/transactions": "Transactions", "/app/transactions?explain=txn1": "Transactions",
			"/app/rewards": "Rewards", "/app/payouts": "Payouts", "/app/offers": "Offers", "/app/imports": "Imports",
			"/app/billing": "Billing", "/app/webhooks": "Webhooks", "/app/developers": "API keys"} {
			visit(t, ctx, w, e.base, path, h)
		}
		var svg int
		run(t, ctx, "charts", chromedp.Navigate(e.base+"/app"), chromedp.WaitVisible("svg.chart", chromedp.ByQuery),
			chromedp.Evaluate(`document.querySelectorAll("svg.chart rect.bar").length`, &svg))
		if svg != 48 {
			t.Fatalf("the overview draws %d bars, want 4 charts of 12 months", svg)
		}
		visit(t, ctx, w, e.base, "/app/rewards?status=pending", "Rewards")
		var flash string
		run(t, ctx, "approve a reward",
			chromedp.Click(`input.select-all`, chromedp.ByQuery), // the script ticks every reward
			chromedp.Click(`button[name=action][value=approve]`, chromedp.ByQuery),
			chromedp.WaitVisible(".flash", chromedp.ByQuery), chromedp.Text(".flash", &flash, chromedp.ByQuery))
		if !strings.Contains(flash, "1 of 1 rewards approved") || e.rewardStatus(reward) != "approved" {
			t.Fatalf("after approving in the browser: %q, reward %s", flash, e.rewardStatus(reward))
		}
		if p := w.take(); len(p) > 0 {
			t.Fatalf("approving reported problems: %v", p)
		}

		// An import: upload a CSV with a bad row; the page follows the
		// import until it is done and shows its row report.
		csvPath := filepath.Join(t.TempDir(), "customers.csv")
		if err := os.WriteFile(csvPath, []byte("customer_key,email,partner_key\nnew-1,new1@client.test,ann\nnew-2,new2@client.test,nobody\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		visit(t, ctx, w, e.base, "/app/imports", "Imports")
		run(t, ctx, "upload an import",
			chromedp.SetValue(`select[name=type]`, "customers", chromedp.ByQuery),
			chromedp.SetUploadFiles(`input[name=file]`, []string{csvPath}, chromedp.ByQuery),
			chromedp.Click(`form[action="/app/imports"] button`, chromedp.ByQuery))
		var report string
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			_ = chromedp.Run(ctx, chromedp.Evaluate(`document.querySelector("main") ? document.querySelector("main").innerText : ""`, &report))
			if strings.Contains(report, "Took") {
				break
			}
		}
		if !strings.Contains(report, "Created · updated · unchanged\n1 · 0 · 0") || !strings.Contains(report, "Rejected\n1") ||
			!strings.Contains(report, "nobody") || !strings.Contains(report, "partner_key") {
			t.Fatalf("the import's page: %q", report)
		}
		if p := w.take(); len(p) > 0 {
			t.Fatalf("the import reported problems: %v", p)
		}

		// The partner: its portal, its link copied by the button, a token.
		pctx := browser(t)
		pw := watch(pctx)
		run(t, pctx, "enable the log", cdplog.Enable())
		browserLogin(t, pctx, e.base, "/portal/login", "ann@partner.test", "correct horse battery")
		for path, h := range map[string]string{"/portal": "Welcome", "/portal/customers": "My customers", "/portal/rewards": "My rewards",
			"/portal/payouts": "My payouts", "/portal/tokens": "API tokens"} {
			visit(t, pctx, pw, e.base, path, h)
		}
		var token string
		// The token is on the POST's own response (it is never stored to
		// show after a redirect). A wait begun before the click does not
		// follow that navigation, so the new page is asked until it shows.
		run(t, pctx, "create a token", chromedp.Navigate(e.base+"/portal/tokens"), chromedp.Click(`form[action="/portal/tokens"] button`, chromedp.ByQuery))
		for deadline := time.Now().Add(15 * time.Second); token == "" && time.Now().Before(deadline); {
			_ = chromedp.Run(pctx, chromedp.Evaluate(`(document.getElementById("new-token") || {}).textContent || ""`, &token))
			if token == "" {
				time.Sleep(50 * time.Millisecond)
			}
		}
		if !strings.HasPrefix(token, "ptok_") {
			t.Fatalf("the new token: %q", token)
		}
		if r := e.do("GET", "/api/v2/customers", bearer(token), nil); r.status != 200 || len(r.items()) != 2 { // seeded, and imported above
			t.Fatalf("the token from the portal reads %d: %d items", r.status, len(r.items()))
		}
		if p := pw.take(); len(p) > 0 {
			t.Fatalf("the portal reported problems: %v", p)
		}

		// The agency: adds a connection with that token, syncs it, reads it.
		actx := browser(t)
		aw := watch(actx)
		run(t, actx, "enable the log", cdplog.Enable())
		browserLogin(t, actx, e.base, "/login", "agency@agency.test", "correct horse battery")
		visit(t, actx, aw, e.base, "/hub", "Connections")
		run(t, actx, "add a connection", chromedp.Navigate(e.base+"/hub"),
			chromedp.SendKeys(`input[name=name]`, "Acme", chromedp.ByQuery),
			chromedp.SetValue(`input[name=base_url]`, e.base+"/api/v2", chromedp.ByQuery),
			chromedp.SendKeys(`input[name=token]`, token, chromedp.ByQuery),
			chromedp.Submit(`input[name=token]`, chromedp.ByQuery),
			chromedp.WaitVisible(".flash", chromedp.ByQuery))
		conns, err := e.app.Hub.Connections(context.Background(), ws.Key)
		if err != nil || len(conns) != 1 {
			t.Fatalf("connections after adding one: %v %v", conns, err)
		}
		e.runQueued(conns[0].Key)
		var table string
		run(t, actx, "see it synced", chromedp.Navigate(e.base+"/hub"), chromedp.WaitVisible("main table", chromedp.ByQuery),
			chromedp.Text("main table tbody", &table, chromedp.ByQuery))
		if !strings.Contains(table, "Acme") || !strings.Contains(table, "active") || strings.Contains(table, "not yet") || !strings.Contains(table, "customers 2") {
			t.Fatalf("the connection after its sync: %q", table)
		}
		for path, h := range map[string]string{"/hub/report": "Report", "/hub/referrals": "Referrals", "/hub/accounts": "Accounts",
			"/hub/programs": "Programs", "/hub/contacts": "Contacts", "/hub/leads": "Leads", "/hub/deals": "Deals", "/hub/missed": "Missed rewards"} {
			visit(t, actx, aw, e.base, path, h)
		}
		var referral string
		run(t, actx, "read referrals", chromedp.Navigate(e.base+"/hub/referrals"), chromedp.Text("main table tbody", &referral, chromedp.ByQuery))
		if !strings.Contains(referral, "buyer@client.test") || !strings.Contains(referral, "10.00 USD") {
			t.Fatalf("referrals in the hub: %q", referral)
		}
	})
}
