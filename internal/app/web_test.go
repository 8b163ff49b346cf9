package app_test

import (
	"context"
	"encoding/csv"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/partnerd/partnerd/internal/accounts"
	"github.com/partnerd/partnerd/internal/program"
)

// webClient is a browser-like HTTP client: a cookie jar, no redirects
// followed (the tests look at them).
type webClient struct {
	t    *testing.T
	base string
	c    *http.Client
}

func (e *env) web() *webClient {
	jar, _ := cookiejar.New(nil)
	return &webClient{t: e.t, base: e.base, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

type page struct {
	status   int
	location string
	body     string
	header   http.Header
}

func (w *webClient) do(method, path string, form url.Values, hdr map[string]string) page {
	w.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, w.base+path, body)
	if err != nil {
		w.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := w.c.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return page{status: res.StatusCode, location: res.Header.Get("Location"), body: string(b), header: res.Header}
}

func (w *webClient) get(path string) page { w.t.Helper(); return w.do("GET", path, nil, nil) }

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf is the token of the first form on a page.
func (p page) csrf(t *testing.T) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no csrf field on the page (%d): %.300s", p.status, p.body)
	}
	return m[1]
}

// login logs in through the form of a portal.
func (w *webClient) login(path, email, password string) page {
	w.t.Helper()
	form := w.get(path)
	return w.do("POST", path, url.Values{"csrf": {form.csrf(w.t)}, "email": {email}, "password": {password}}, nil)
}

func (e *env) webUser(kind, email, role string, partnershipID int64) {
	e.t.Helper()
	in := accounts.UserInput{Kind: kind, Email: email, Password: "correct horse battery", Role: role, CompanyID: e.company.ID, PartnershipID: partnershipID}
	if _, err := e.app.Accounts.CreateUser(context.Background(), in); err != nil {
		e.t.Fatal(err)
	}
}

// seedReviewable makes a partner, a customer, a payment and the pending
// reward an offer with a hold makes of it. It returns the reward's key.
func (e *env) seedReviewable() (partnershipID int64, reward string) {
	e.t.Helper()
	e.must("POST", "/api/v2/offers", e.prod, map[string]any{"name": "Rev share", "trigger": "transaction", "type": "percent", "rate": "10", "hold_days": 30})
	e.partnership("ann@partner.test", "ann")
	e.tick()
	e.must("POST", "/api/v2/customers", e.prod, map[string]any{"customer_key": "c1", "email": "buyer@client.test", "partner_key": "ann",
		"name": `=HYPERLINK("https://evil.test")`})
	e.tick()
	e.must("POST", "/api/v2/transactions", e.prod, map[string]any{"key": "txn1", "customer_key": "c1", "amount": 10000, "currency": "USD"})
	rws := e.must("GET", "/api/v2/rewards", e.prod, nil).items()
	if len(rws) != 1 || rws[0]["reward_status"] != "pending" {
		e.t.Fatalf("seeded rewards: %v", rws)
	}
	ps, err := e.app.Program.GetPartnership(context.Background(), program.Principal{CompanyID: e.company.ID}, "ann")
	if err != nil {
		e.t.Fatal(err)
	}
	return ps.ID, rws[0]["key"].(string)
}

func (e *env) rewardStatus(key string) string {
	e.t.Helper()
	return e.must("GET", "/api/v2/rewards/"+key, e.prod, nil).data()["reward_status"].(string)
}

func TestWebSessionsAndForms(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		annID, reward := e.seedReviewable()
		e.webUser(accounts.Vendor, "Owner@Acme.test", accounts.Owner, 0)
		e.webUser(accounts.Vendor, "viewer@acme.test", accounts.Viewer, 0)
		e.webUser(accounts.Partner, "ann@partner.test", accounts.Viewer, annID)

		// Anonymous: sent to the right log-in page, keeping where it was going.
		w := e.web()
		if p := w.get("/app/rewards?status=pending"); p.status != 303 || p.location != "/login?next="+url.QueryEscape("/app/rewards?status=pending") {
			t.Fatalf("anonymous /app/rewards: %d %s", p.status, p.location)
		}
		if p := w.get("/"); p.status != 303 || p.location != "/login" {
			t.Fatalf("anonymous /: %d %s", p.status, p.location)
		}

		// A log-in form without its CSRF token is refused and opens nothing.
		if p := w.do("POST", "/login", url.Values{"email": {"owner@acme.test"}, "password": {"correct horse battery"}}, nil); p.status != 403 ||
			p.header.Get("Set-Cookie") != "" {
			t.Fatalf("log-in without csrf: %d, cookies %q", p.status, p.header.Values("Set-Cookie"))
		}
		// A wrong password says nothing of which part was wrong.
		if p := w.login("/login", "owner@acme.test", "wrong password!"); p.status != 401 || !strings.Contains(p.body, "email or password is not right") {
			t.Fatalf("wrong password: %d", p.status)
		}
		if p := w.login("/login", "nobody@acme.test", "wrong password!"); p.status != 401 || !strings.Contains(p.body, "email or password is not right") {
			t.Fatalf("unknown email: %d", p.status)
		}
		// Partners log in to their portal, not here.
		if p := w.login("/login", "ann@partner.test", "correct horse battery"); p.status != 401 {
			t.Fatalf("a partner at the vendors' log-in: %d", p.status)
		}

		// The right password, with the email in another case: a session.
		p := w.login("/login", "OWNER@acme.test", "correct horse battery")
		if p.status != 303 || p.location != "/app" {
			t.Fatalf("log-in: %d %s %.200s", p.status, p.location, p.body)
		}
		sc := ""
		for _, c := range p.header.Values("Set-Cookie") {
			if strings.HasPrefix(c, "partnerd_session=") {
				sc = c
			}
		}
		if !strings.Contains(sc, "partnerd_session=pds_") || !strings.Contains(sc, "HttpOnly") || !strings.Contains(sc, "SameSite=Lax") || strings.Contains(sc, "Secure") {
			t.Fatalf("session cookie over plain HTTP: %q", p.header.Values("Set-Cookie"))
		}
		for _, path := range []string{"/app", "/app/partners", "/app/partners/ann", "/app/customers", "/app/transactions", "/app/transactions?explain=txn1", "/app/rewards", "/app/payouts"} {
			pg := w.get(path)
			if pg.status != 200 || !strings.Contains(pg.header.Get("Content-Security-Policy"), "default-src 'self'") {
				t.Fatalf("%s: %d %.300s", path, pg.status, pg.body)
			}
		}
		if pg := w.get("/app/transactions?explain=txn1"); !strings.Contains(pg.body, "Rev share") || !strings.Contains(pg.body, "10.00 USD") {
			t.Fatalf("the transaction's explanation: %.2000s", pg.body)
		}
		if pg := w.get("/app/partners/nobody"); pg.status != 404 {
			t.Fatalf("an unknown partner: %d", pg.status)
		}

		// Forms: a wrong CSRF token, or another site's Origin, changes nothing.
		rewards := w.get("/app/rewards?status=pending")
		token := rewards.csrf(t)
		approve := url.Values{"csrf": {token}, "reward": {reward}, "action": {"approve"}}
		if p := w.do("POST", "/app/rewards", url.Values{"csrf": {"forged"}, "reward": {reward}, "action": {"approve"}}, nil); p.status != 403 {
			t.Fatalf("approve with a forged token: %d", p.status)
		}
		if p := w.do("POST", "/app/rewards", approve, map[string]string{"Origin": "https://evil.test"}); p.status != 403 {
			t.Fatalf("approve from another origin: %d", p.status)
		}
		if s := e.rewardStatus(reward); s != "pending" {
			t.Fatalf("refused forms changed the reward: %s", s)
		}
		// Declining needs a reason.
		if p := w.do("POST", "/app/rewards", url.Values{"csrf": {token}, "reward": {reward}, "action": {"decline"}}, nil); p.status != 400 || e.rewardStatus(reward) != "pending" {
			t.Fatalf("decline without a reason: %d", p.status)
		}

		// A viewer reads but cannot act.
		v := e.web()
		if p := v.login("/login", "viewer@acme.test", "correct horse battery"); p.status != 303 {
			t.Fatalf("viewer log-in: %d", p.status)
		}
		vr := v.get("/app/rewards")
		if vr.status != 200 || strings.Contains(vr.body, `name="action"`) {
			t.Fatalf("a viewer's rewards page offers actions: %d", vr.status)
		}
		if p := v.do("POST", "/app/rewards", url.Values{"csrf": {vr.csrf(t)}, "reward": {reward}, "action": {"approve"}}, nil); p.status != 403 || e.rewardStatus(reward) != "pending" {
			t.Fatalf("a viewer approved: %d", p.status)
		}

		// The owner approves.
		if p := w.do("POST", "/app/rewards", approve, map[string]string{"Origin": e.base}); p.status != 303 || !strings.Contains(p.location, "done=") {
			t.Fatalf("approve: %d %s", p.status, p.location)
		}
		if s := e.rewardStatus(reward); s != "approved" {
			t.Fatalf("after approving: %s", s)
		}

		// CSV export: every row, with a formula-looking cell defused.
		exp := w.get("/app/customers?format=csv")
		rows, err := csv.NewReader(strings.NewReader(exp.body)).ReadAll()
		if err != nil || exp.status != 200 || !strings.HasPrefix(exp.header.Get("Content-Type"), "text/csv") {
			t.Fatalf("customers CSV: %d %v", exp.status, err)
		}
		if len(rows) != 2 || rows[0][3] != "name" || rows[1][2] != "buyer@client.test" || rows[1][3] != `'=HYPERLINK("https://evil.test")` {
			t.Fatalf("customers CSV rows: %q", rows)
		}

		// A partner's session does not open vendor pages.
		pw := e.web()
		if p := pw.login("/portal/login", "ann@partner.test", "correct horse battery"); p.status != 303 || p.location != "/portal" {
			t.Fatalf("partner log-in: %d %s", p.status, p.location)
		}
		if p := pw.get("/app/rewards"); p.status != 403 {
			t.Fatalf("a partner on a vendor page: %d", p.status)
		}

		// Log-out ends the session on the server: the old cookie is dead.
		old := w.c.Jar.Cookies(mustURL(t, e.base))
		if p := w.do("POST", "/logout", url.Values{"csrf": {token}}, nil); p.status != 303 {
			t.Fatalf("log-out: %d", p.status)
		}
		replay := e.web()
		replay.c.Jar.SetCookies(mustURL(t, e.base), old)
		if p := replay.get("/app"); p.status != 303 || !strings.HasPrefix(p.location, "/login") {
			t.Fatalf("a logged-out session still works: %d", p.status)
		}

		// Five failures lock the email for a while, even for its right password.
		l := e.web()
		for range accounts.MaxEmailFailures {
			l.login("/login", "viewer@acme.test", "not the password")
		}
		if p := l.login("/login", "viewer@acme.test", "correct horse battery"); p.status != 429 || !strings.Contains(p.body, "too many failed log-ins") {
			t.Fatalf("after %d failures: %d", accounts.MaxEmailFailures, p.status)
		}
	})
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
