package app_test

import (
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/partnerd/partnerd/internal/accounts"
)

// The vendor's settings pages, through their forms: each change is made,
// and each refused change leaves nothing behind.
func TestWebSettingsPages(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		e.seedReviewable()
		e.webUser(accounts.Vendor, "owner@acme.test", accounts.Owner, 0)
		e.webUser(accounts.Vendor, "viewer@acme.test", accounts.Viewer, 0)
		w := e.web()
		if p := w.login("/login", "owner@acme.test", "correct horse battery"); p.status != 303 {
			t.Fatalf("log-in: %d", p.status)
		}
		for _, path := range []string{"/app/offers", "/app/imports", "/app/billing", "/app/billing?status=failed", "/app/webhooks", "/app/developers"} {
			if p := w.get(path); p.status != 200 {
				t.Fatalf("%s: %d %.300s", path, p.status, p.body)
			}
		}
		post := func(path string, form url.Values) page {
			t.Helper()
			form.Set("csrf", w.get("/app/offers").csrf(t))
			return w.do("POST", path, form, nil)
		}
		offers := func() int { return len(e.must("GET", "/api/v2/offers", e.prod, nil).items()) }

		// Offers: a bad one is refused with the API's reason; a good one is made.
		before := offers()
		if p := post("/app/offers", url.Values{"name": {"Bad"}, "trigger": {"transaction"}, "type": {"percent"}, "rate": {"150"}}); p.status != 400 || offers() != before {
			t.Fatalf("an offer at 150%%: %d, %d offers", p.status, offers())
		}
		if p := post("/app/offers", url.Values{"name": {"Flat"}, "trigger": {"customer"}, "type": {"flat"}, "amount": {"25.00"}, "currency": {"usd"}, "hold_days": {"7"}}); p.status != 303 {
			t.Fatalf("a flat offer: %d %.300s", p.status, p.body)
		}
		made := e.must("GET", "/api/v2/offers", e.prod, nil).items()
		if len(made) != before+1 {
			t.Fatalf("offers after creating one: %d", len(made))
		}
		if page := w.get("/app/offers"); !strings.Contains(page.body, "25.00 USD") {
			t.Fatal("the offers page does not show the new flat offer")
		}
		if p := post("/app/groups", url.Values{"name": {"Gold"}}); p.status != 303 || !strings.Contains(w.get("/app/offers").body, "Gold") {
			t.Fatalf("a group: %d", p.status)
		}

		// API keys: a new pair works at once; revoking it stops it; the
		// last production pair cannot be revoked.
		p := post("/app/developers/keys", url.Values{"mode": {"production"}})
		pk := regexp.MustCompile(`Public key <code>(pk_\w+)</code>`).FindStringSubmatch(p.body)
		sk := regexp.MustCompile(`id="new-secret">(sk_\w+)<`).FindStringSubmatch(p.body)
		if p.status != 200 || pk == nil || sk == nil {
			t.Fatalf("a new key pair: %d %.500s", p.status, p.body)
		}
		if r := e.do("GET", "/api/v2/partnerships", basic(pk[1], sk[1]), nil); r.status != 200 {
			t.Fatalf("the new pair reads %d", r.status)
		}
		if p := post("/app/developers/keys/"+pk[1]+"/revoke", url.Values{}); p.status != 303 {
			t.Fatalf("revoke: %d", p.status)
		}
		if r := e.do("GET", "/api/v2/partnerships", basic(pk[1], sk[1]), nil); r.status != 401 {
			t.Fatalf("a revoked pair reads %d", r.status)
		}
		if p := post("/app/developers/keys/"+e.company.Production.PublicKey+"/revoke", url.Values{}); p.status != 409 {
			t.Fatalf("revoking the only production pair: %d", p.status)
		}
		if page := w.get("/app/developers"); !strings.Contains(page.body, "growsumo._initialize('"+e.company.Production.PublicKey) {
			t.Fatalf("the snippet does not carry the production key: %.2000s", page.body)
		}

		// Billing: a secret is saved and never shown; a bad provider is 404.
		if p := post("/app/billing/stripe", url.Values{"mode": {"live"}, "secret": {"whsec_shh"}, "payments_from": {"charge"}}); p.status != 303 {
			t.Fatalf("save stripe's secret: %d %.300s", p.status, p.body)
		}
		if page := w.get("/app/billing"); !strings.Contains(page.body, "saved") || strings.Contains(page.body, "whsec_shh") {
			t.Fatal("the billing page after saving a secret")
		}
		if p := post("/app/billing/paypal", url.Values{"secret": {"x"}}); p.status != 400 {
			t.Fatalf("an unknown provider: %d", p.status)
		}

		// Webhooks: made, then archived.
		if p := post("/app/webhooks", url.Values{"target_url": {"https://hooks.example/partnerd"}, "events": {"reward.updated, customer.created"}}); p.status != 303 {
			t.Fatalf("a webhook: %d %.300s", p.status, p.body)
		}
		hooks := e.must("GET", "/api/v2/webhooks", e.prod, nil).items()
		if len(hooks) != 1 {
			t.Fatalf("webhooks: %v", hooks)
		}
		if p := post("/app/webhooks", url.Values{"target_url": {"ftp://nope"}, "events": {"reward.updated"}}); p.status != 400 || len(e.must("GET", "/api/v2/webhooks", e.prod, nil).items()) != 1 {
			t.Fatalf("a webhook to ftp: %d", p.status)
		}

		// Payouts: the run and the payment file.
		if p := post("/app/payouts/run", url.Values{"period": {"2025-13"}}); p.status != 400 {
			t.Fatalf("a payout run for month 13: %d", p.status)
		}
		if p := post("/app/payouts/run", url.Values{"period": {"2025-12"}}); p.status != 303 || !strings.Contains(p.location, "payouts+made") {
			t.Fatalf("a payout run: %d %s", p.status, p.location)
		}
		if p := w.get("/app/payouts/export?period=2025-12"); p.status != 200 || !strings.HasPrefix(p.header.Get("Content-Type"), "text/csv") {
			t.Fatalf("the payment file: %d", p.status)
		}

		// A viewer sees the pages without their forms, and cannot post them.
		v := e.web()
		v.login("/login", "viewer@acme.test", "correct horse battery")
		page := v.get("/app/developers")
		if page.status != 200 || strings.Contains(page.body, `action="/app/developers/keys"`) {
			t.Fatalf("a viewer's developers page: %d", page.status)
		}
		form := url.Values{"csrf": {page.csrf(t)}, "mode": {"production"}}
		if p := v.do("POST", "/app/developers/keys", form, nil); p.status != 403 {
			t.Fatalf("a viewer made a key pair: %d", p.status)
		}
	})
}
