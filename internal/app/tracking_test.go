package app_test

import (
	"compress/gzip"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"io/fs"
	"log/slog"

	"github.com/partnerd/partnerd/internal/app"
	"github.com/partnerd/partnerd/internal/program"
)

// noFollow is a client that reports redirects instead of following them.
var noFollow = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func (e *env) raw(method, path, host string, header http.Header, body string) *http.Response {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.base+path, strings.NewReader(body))
	if host != "" {
		req.Host = host
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := noFollow.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp
}

func readAll(r *http.Response) string {
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return string(b)
}

func (e *env) configure(in program.CompanySettings) {
	e.t.Helper()
	if _, err := e.app.Program.ConfigureCompany(context.Background(), e.company.Key, in); err != nil {
		e.t.Fatal(err)
	}
	e.app.Tracking.Forget()
}

func ptrS(s string) *string { return &s }

func TestRedirect(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		e.configure(program.CompanySettings{Website: ptrS("https://www.vendor.test/landing?ref=site")})
		p := e.partnership("jane@p.test", "jane")
		links := e.must("GET", "/api/v2/links/partnership/jane", e.prod, nil).items()
		if len(links) != 1 || links[0]["slug"] != "jane" || links[0]["default"] != true || links[0]["dest"] != "https://www.vendor.test/landing?ref=site" ||
			!strings.HasSuffix(links[0]["url"].(string), "/r/jane") || links[0]["partnership_key"] != p["key"] {
			t.Fatalf("default link: %v", links)
		}

		resp := e.raw("GET", "/r/jane?sid=spring&sid3=x%20y&sid5="+strings.Repeat("z", 256)+"&utm_source=partner", "", http.Header{
			"Referer": {"https://blog.example/post"}, "User-Agent": {"TestAgent/1.0"}}, "")
		readAll(resp)
		if resp.StatusCode != 302 {
			t.Fatalf("redirect status %d", resp.StatusCode)
		}
		loc, _ := url.Parse(resp.Header.Get("Location"))
		q := loc.Query()
		if loc.Host != "www.vendor.test" || loc.Path != "/landing" || q.Get("ref") != "site" {
			t.Fatalf("destination not kept: %s", loc)
		}
		want := base64.RawStdEncoding.EncodeToString([]byte("jane"))
		if q.Get("gspk") != want || q.Get("ps_partner_key") != want {
			t.Fatalf("partner key params: %v", q)
		}
		xid := q.Get("gsxid")
		if !regexp.MustCompile(`^[A-Za-z0-9]{14}$`).MatchString(xid) || q.Get("ps_xid") != xid {
			t.Fatalf("click id params: %v", q)
		}
		if q.Get("sid") != "spring" || q.Get("sid3") != "x y" || q.Has("sid5") || q.Has("utm_source") {
			t.Fatalf("sub-ids: %v (oversized dropped, other visitor params not passed)", q)
		}
		if resp.Header.Get("Set-Cookie") != "" {
			t.Fatal("cookies set without a cookie domain")
		}
		// The click is stored with what the redirect knew, and the IP only as a hash.
		if err := e.app.Tracking.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		var subs, ref, ua, iphash string
		var test bool
		if err := e.app.DB.QueryRow(context.Background(), "SELECT sub_ids, referrer, user_agent, ip_hash, test FROM clicks WHERE xid = ?", xid).
			Scan(&subs, &ref, &ua, &iphash, &test); err != nil {
			t.Fatalf("click not stored: %v", err)
		}
		if subs != `{"sid":"spring","sid3":"x y"}` || ref != "https://blog.example/post" || ua != "TestAgent/1.0" || test {
			t.Fatalf("click: %s %s %s %v", subs, ref, ua, test)
		}
		if len(iphash) != 32 || strings.Contains(iphash, "127.0.0.1") || iphash != e.app.Tracking.HashIP("127.0.0.1") {
			t.Fatalf("ip hash %q", iphash)
		}
		// Each redirect is a new click.
		resp2 := e.raw("GET", "/r/jane", "", nil, "")
		readAll(resp2)
		loc2, _ := url.Parse(resp2.Header.Get("Location"))
		if loc2.Query().Get("gsxid") == xid {
			t.Fatal("two clicks share a click id")
		}
		if got := e.must("GET", "/api/v2/links/partnership/"+p["key"].(string), e.prod, nil).items()[0]["clicks"].(float64); got != 2 {
			t.Fatalf("link clicks %v", got)
		}
		// HEAD (link checkers, unfurlers) gets the redirect but is not a click.
		head := e.raw("HEAD", "/r/jane", "", nil, "")
		readAll(head)
		if hl, _ := url.Parse(head.Header.Get("Location")); head.StatusCode != 302 || hl.Host != "www.vendor.test" || hl.Query().Has("gsxid") {
			t.Fatalf("HEAD: %d %s", head.StatusCode, head.Header.Get("Location"))
		}
		if got := e.must("GET", "/api/v2/links/partnership/jane", e.prod, nil).items()[0]["clicks"].(float64); got != 2 {
			t.Fatalf("a HEAD request counted as a click: %v", got)
		}
		// Test partner clicks are test clicks.
		readAll(e.raw("GET", "/r/gstest", "", nil, ""))
		e.app.Tracking.Flush(context.Background())
		var n int
		e.app.DB.QueryRow(context.Background(), "SELECT COUNT(*) FROM clicks WHERE test = 1").Scan(&n)
		if n != 1 {
			t.Fatalf("test clicks: %d", n)
		}
	})
}

func TestRedirectRefusesWhatItShould(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		e.configure(program.CompanySettings{Website: ptrS("https://www.vendor.test/")})
		e.partnership("jane@p.test", "jane")
		nul := e.raw("GET", "/r/%00", "", nil, "")
		if body := readAll(nul); nul.StatusCode != 400 || nul.Header.Get("Location") != "" || !strings.Contains(body, "NUL") {
			t.Fatalf("/r/%%00: %d %s", nul.StatusCode, body)
		}
		for _, path := range []string{"/r/nobody", "/r/https:%2F%2Fevil.test", "/r/..%2F..%2Fetc", "/r/" + strings.Repeat("a", 500)} {
			resp := e.raw("GET", path, "", nil, "")
			body := readAll(resp)
			if resp.StatusCode != 404 || resp.Header.Get("Location") != "" || !strings.Contains(body, "does not exist") {
				t.Fatalf("%s: %d %q %q", path, resp.StatusCode, resp.Header.Get("Location"), body)
			}
		}
		// Query parameters never choose the destination.
		resp := e.raw("GET", "/r/jane?dest=https://evil.test&url=https://evil.test&redirect=https://evil.test", "", nil, "")
		readAll(resp)
		if loc, _ := url.Parse(resp.Header.Get("Location")); loc.Host != "www.vendor.test" {
			t.Fatalf("open redirect: %s", resp.Header.Get("Location"))
		}
		for _, dest := range []string{"javascript:alert(1)", "//evil.test/x", "/relative", "ftp://x.test/", "https://user:pw@evil.test/"} {
			e.fails(400, "'dest'", "POST", "/api/v2/links/partnership/jane", e.prod, map[string]any{"slug": "bad-" + fmt.Sprint(len(dest)), "dest": dest})
		}
		e.fails(400, "'slug'", "POST", "/api/v2/links/partnership/jane", e.prod, map[string]any{"slug": "a/b", "dest": "https://www.vendor.test/x"})
		// A company without a website has links that go nowhere: a clear 404, not a redirect to "".
		other, ob := e.newCompany("NoSite")
		e.must("POST", "/api/v2/partnerships", ob, map[string]any{"email": "x@p.test", "partner_key": "nosite-partner"})
		resp = e.raw("GET", "/r/nosite-partner", "", nil, "")
		if body := readAll(resp); resp.StatusCode != 404 || resp.Header.Get("Location") != "" {
			t.Fatalf("link without destination: %d %s", resp.StatusCode, body)
		}
		_ = other
	})
}

func TestLinksAndLinkDomains(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		e.configure(program.CompanySettings{Website: ptrS("https://www.vendor.test/"), LinkDomain: ptrS("go.vendor.test"),
			CookieDomain: ptrS("vendor.test"), AttributionDays: func() *int { d := 30; return &d }()})
		e.partnership("jane@p.test", "jane")
		l := e.must("POST", "/api/v2/links/partnership/jane", e.prod, map[string]any{"slug": "jane-pricing", "dest": "https://www.vendor.test/pricing?plan=pro"}).data()
		if l["url"] != "https://go.vendor.test/jane-pricing" || l["default"] != false {
			t.Fatalf("created link: %v", l)
		}
		e.fails(409, "already taken", "POST", "/api/v2/links/partnership/jane", e.prod, map[string]any{"slug": "jane-pricing", "dest": "https://www.vendor.test/"})
		e.fails(404, "not found", "POST", "/api/v2/links/partnership/ghost", e.prod, map[string]any{"slug": "ghost-1", "dest": "https://www.vendor.test/"})

		// GET /{slug} on the link domain redirects and sets the cookies on the vendor's domain.
		resp := e.raw("GET", "/jane-pricing?sid=a", "go.vendor.test", nil, "")
		readAll(resp)
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != 302 || loc.Path != "/pricing" || loc.Query().Get("plan") != "pro" || loc.Query().Get("sid") != "a" {
			t.Fatalf("link domain redirect: %d %s", resp.StatusCode, loc)
		}
		xid := loc.Query().Get("ps_xid")
		got := map[string]*http.Cookie{}
		for _, c := range resp.Cookies() {
			got[c.Name] = c
		}
		for name, val := range map[string]string{"growSumoPartnerKey": "jane", "ps_partner_key": "jane", "ps_xid": xid, "gsxid": xid} {
			c := got[name]
			if c == nil || c.Value != val || c.Domain != "vendor.test" || c.MaxAge != 30*86400 || c.Path != "/" || c.SameSite != http.SameSiteLaxMode || c.HttpOnly {
				t.Fatalf("cookie %s: %+v", name, c)
			}
		}
		// The same slug under /r/ on another host works but sets no cookies there.
		resp = e.raw("GET", "/r/jane", "partnerd.example.net", nil, "")
		readAll(resp)
		if resp.StatusCode != 302 || len(resp.Cookies()) != 0 {
			t.Fatalf("/r/ off the vendor's domain: %d cookies %v", resp.StatusCode, resp.Cookies())
		}
		// A path the vendor proxies (www.vendor.test/r/...) is under the cookie domain too.
		resp = e.raw("GET", "/r/jane", "www.vendor.test", nil, "")
		readAll(resp)
		if len(resp.Cookies()) != 4 {
			t.Fatalf("proxied /r/ under the vendor's domain: cookies %v", resp.Cookies())
		}
		// Another company's link domain does not resolve this company's slugs, and
		// an unknown single-segment path on the link domain is a plain 404.
		_, ob := e.newCompany("Other")
		_ = ob
		if _, err := e.app.Program.ConfigureCompany(context.Background(), e.mustCompanyKey("Other"), program.CompanySettings{LinkDomain: ptrS("go.other.test")}); err != nil {
			t.Fatal(err)
		}
		e.app.Tracking.Forget()
		if resp := e.raw("GET", "/jane", "go.other.test", nil, ""); resp.StatusCode != 404 || readAll(resp) == "" {
			t.Fatalf("cross-company link domain: %d", resp.StatusCode)
		}
		if resp := e.raw("GET", "/nothing-here", "go.vendor.test", nil, ""); resp.StatusCode != 404 {
			t.Fatalf("unknown slug on link domain: %d", resp.StatusCode)
		}
		// Links count sign-ups through their clicks.
		tok, _ := e.app.Program.CreateTrackingToken(context.Background(), e.company.Key)
		r := e.raw("POST", "/conversion/xid", "", http.Header{"Authorization": {"Bearer " + tok}}, `{"xid":"`+xid+`","customer_key":"lc-1"}`)
		readAll(r)
		var pricing map[string]any
		for _, it := range e.must("GET", "/api/v2/links/partnership/jane", e.prod, nil).items() {
			if it["slug"] == "jane-pricing" {
				pricing = it
			}
		}
		if pricing["clicks"].(float64) != 1 || pricing["signups"].(float64) != 1 {
			t.Fatalf("link counts: %v", pricing)
		}
	})
}

func (e *env) mustCompanyKey(name string) string {
	e.t.Helper()
	var key string
	if err := e.app.DB.QueryRow(context.Background(), "SELECT key FROM companies WHERE name = ?", name).Scan(&key); err != nil {
		e.t.Fatal(err)
	}
	return key
}

// click follows a partner link and returns the click id.
func (e *env) click(slug string) string {
	e.t.Helper()
	resp := e.raw("GET", "/r/"+slug, "", nil, "")
	readAll(resp)
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != 302 {
		e.t.Fatalf("click %s: %d", slug, resp.StatusCode)
	}
	return loc.Query().Get("ps_xid")
}

func TestServerToServerConversion(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		e.configure(program.CompanySettings{Website: ptrS("https://www.vendor.test/")})
		e.partnership("jane@p.test", "jane")
		e.partnership("bob@p.test", "bob")
		tok, err := e.app.Program.CreateTrackingToken(context.Background(), e.company.Key)
		if err != nil {
			t.Fatal(err)
		}
		auth := http.Header{"Authorization": {"Bearer " + tok}, "Content-Type": {"application/json"}}
		xid := e.click("jane?sid=s2s")
		// Converted at once: the click is still in the buffer and must be found.
		resp := e.raw("POST", "/conversion/xid", "", auth, `{"xid":"`+xid+`","customer_key":"acct-1","email":"a1@shop.test","name":"A One","provider_key":"cus_S1","sub_ids":["camp-9"],"ip_address":"203.0.113.5","user_agent":"x","origin":"shop.test","meta":{"company_name":"A"}}`)
		if body := readAll(resp); resp.StatusCode != 200 || body != "" {
			t.Fatalf("conversion: %d %q (PartnerStack answers 200 with an empty body)", resp.StatusCode, body)
		}
		c := e.must("GET", "/api/v2/customers/acct-1", e.prod, nil).data()
		if c["partner_key"] != "jane" || c["source_type"] != "s2s" || c["provider_key"] != "cus_S1" || c["email"] != "a1@shop.test" {
			t.Fatalf("converted customer: %v", c)
		}
		var storedXID, subs string
		e.app.DB.QueryRow(context.Background(), "SELECT click_xid, sub_ids FROM customers WHERE customer_key = 'acct-1'").Scan(&storedXID, &subs)
		if storedXID != xid || !strings.Contains(subs, `"sid":"s2s"`) || !strings.Contains(subs, "camp-9") {
			t.Fatalf("customer click %q subs %s", storedXID, subs)
		}
		// Replays, and a later conversion of the same customer_key from another
		// partner's click, change nothing: the first conversion wins.
		readAll(e.raw("POST", "/conversion/xid", "", auth, `{"xid":"`+xid+`","customer_key":"acct-1"}`))
		bobXID := e.click("bob")
		if resp := e.raw("POST", "/conversion/xid", "", auth, `{"xid":"`+bobXID+`","customer_key":"acct-1","email":"other@shop.test"}`); resp.StatusCode != 200 {
			t.Fatalf("second conversion: %d %s", resp.StatusCode, readAll(resp))
		}
		if c := e.must("GET", "/api/v2/customers/acct-1", e.prod, nil).data(); c["partner_key"] != "jane" || c["email"] != "a1@shop.test" {
			t.Fatalf("first conversion did not win: %v", c)
		}
		if n := e.count("/api/v2/customers", e.prod); n != 1 {
			t.Fatalf("replayed conversions made customers: %d", n)
		}
		// Email is optional, as on PartnerStack.
		readAll(e.raw("POST", "/conversion/xid", "", auth, `{"xid":"`+bobXID+`","customer_key":"acct-2"}`))
		if c := e.must("GET", "/api/v2/customers/acct-2", e.prod, nil).data(); c["partner_key"] != "bob" || c["email"] != "" {
			t.Fatalf("conversion without email: %v", c)
		}
		// Errors.
		for _, tc := range []struct {
			header http.Header
			body   string
			status int
			want   string
		}{
			{auth, `{"xid":"nosuchclick0000","customer_key":"x"}`, 400, "'xid' does not match"},
			{auth, `{"xid":"` + xid + `"}`, 400, "'customer_key' is a required property"},
			{auth, `{"customer_key":"x"}`, 400, "'xid' is a required property"},
			{auth, `{"xid":1,"customer_key":"x"}`, 400, "'xid' is not of type 'string'"},
			{auth, `not json`, 400, "JSON object"},
			{http.Header{"Authorization": {"Bearer trk_wrong"}}, `{"xid":"` + xid + `","customer_key":"x"}`, 401, "tracking token"},
			{http.Header{"Authorization": {e.prod.header}}, `{"xid":"` + xid + `","customer_key":"x"}`, 401, "Bearer"},
		} {
			resp := e.raw("POST", "/conversion/xid", "", tc.header, tc.body)
			if body := readAll(resp); resp.StatusCode != tc.status || !strings.Contains(body, tc.want) {
				t.Errorf("%s: %d %s, want %d %q", tc.body, resp.StatusCode, body, tc.status, tc.want)
			}
		}
		// Another company's token cannot convert this company's clicks.
		other, _ := e.newCompany("Other")
		otherTok, _ := e.app.Program.CreateTrackingToken(context.Background(), other.Key)
		resp = e.raw("POST", "/conversion/xid", "", http.Header{"Authorization": {"Bearer " + otherTok}}, `{"xid":"`+xid+`","customer_key":"steal"}`)
		if readAll(resp); resp.StatusCode != 400 {
			t.Fatalf("cross-company conversion: %d", resp.StatusCode)
		}
		// A click older than the attribution window no longer converts.
		old := e.click("bob")
		e.clock.Advance(91 * 24 * time.Hour)
		resp = e.raw("POST", "/conversion/xid", "", auth, `{"xid":"`+old+`","customer_key":"late"}`)
		if body := readAll(resp); resp.StatusCode != 400 || !strings.Contains(body, "attribution window") {
			t.Fatalf("expired click: %d %s", resp.StatusCode, body)
		}
	})
}

func TestJSSignupEndpoint(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		e.configure(program.CompanySettings{Website: ptrS("https://www.vendor.test/"), AllowedOrigins: &[]string{"https://app.vendor.test"}})
		e.partnership("jane@p.test", "jane")
		e.partnership("bob@p.test", "bob")
		pk := e.company.Production.PublicKey
		post := func(origin, body string) (*http.Response, string) {
			h := http.Header{"Content-Type": {"text/plain"}}
			if origin != "" {
				h.Set("Origin", origin)
			}
			resp := e.raw("POST", "/js/signup", "", h, body)
			return resp, readAll(resp)
		}
		// Last click wins: the xid (bob's click) beats a stale partner key.
		bobXID := e.click("bob")
		resp, body := post("https://www.vendor.test", `{"public_key":"`+pk+`","email":"s1@shop.test","name":"S1","partner_key":"jane","xid":"`+bobXID+`"}`)
		if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "https://www.vendor.test" || !strings.Contains(body, `"attributed":true`) {
			t.Fatalf("signup: %d %s %v", resp.StatusCode, body, resp.Header)
		}
		if c := e.must("GET", "/api/v2/customers/s1@shop.test", e.prod, nil).data(); c["partner_key"] != "bob" || c["source_type"] != "js" {
			t.Fatalf("js customer (customer_key defaults to the email): %v", c)
		}
		// A partner key alone (a ?gspk= landing) attributes; allowed origins work.
		resp, body = post("https://app.vendor.test", `{"public_key":"`+pk+`","email":"s2@shop.test","customer_key":"u2","partner_key":"jane"}`)
		if resp.StatusCode != 200 || !strings.Contains(body, `"partner_key":"jane"`) {
			t.Fatalf("partner-key signup: %d %s", resp.StatusCode, body)
		}
		// No partner: counted for the funnel, no customer.
		before := e.count("/api/v2/customers", e.prod)
		_, body = post("https://www.vendor.test", `{"public_key":"`+pk+`","email":"s3@shop.test"}`)
		if !strings.Contains(body, `"attributed":false`) || e.count("/api/v2/customers", e.prod) != before {
			t.Fatalf("unattributed signup: %s", body)
		}
		// An unknown partner in a cookie is not the visitor's fault: counted, not attributed.
		_, body = post("https://www.vendor.test", `{"public_key":"`+pk+`","email":"s4@shop.test","partner_key":"ghost"}`)
		if !strings.Contains(body, `"attributed":false`) {
			t.Fatalf("ghost partner signup: %s", body)
		}
		var signups, unattributed int
		e.app.DB.QueryRow(context.Background(), "SELECT COUNT(*), SUM(CASE WHEN customer_id IS NULL THEN 1 ELSE 0 END) FROM signups").Scan(&signups, &unattributed)
		if signups != 4 || unattributed != 2 {
			t.Fatalf("funnel: %d signups, %d unattributed", signups, unattributed)
		}
		// The same customer signing up again is not another sign-up.
		post("https://app.vendor.test", `{"public_key":"`+pk+`","email":"s2@shop.test","customer_key":"u2","partner_key":"jane"}`)
		e.app.DB.QueryRow(context.Background(), "SELECT COUNT(*) FROM signups").Scan(&signups)
		if signups != 4 {
			t.Fatalf("a repeated sign-up was counted again: %d", signups)
		}
		// Refusals.
		resp, body = post("https://evil.test", `{"public_key":"`+pk+`","email":"x@shop.test","partner_key":"jane"}`)
		if resp.StatusCode != 403 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("foreign origin: %d %s", resp.StatusCode, body)
		}
		if resp, body = post("https://www.vendor.test", `{"public_key":"pk_unknown","email":"x@shop.test"}`); resp.StatusCode != 400 || !strings.Contains(body, "'public_key'") {
			t.Fatalf("unknown public key: %d %s", resp.StatusCode, body)
		}
		if resp, body = post("https://www.vendor.test", `{"public_key":"`+pk+`","email":"not-an-email"}`); resp.StatusCode != 400 || !strings.Contains(body, "'email'") {
			t.Fatalf("bad email: %d %s", resp.StatusCode, body)
		}
		if resp, _ = post("https://www.vendor.test", `{"public_key":`); resp.StatusCode != 400 {
			t.Fatalf("malformed: %d", resp.StatusCode)
		}
		// Test keys: test partner only.
		tpk := e.company.Test.PublicKey
		if _, body = post("", `{"public_key":"`+tpk+`","email":"t@shop.test","partner_key":"gstest"}`); !strings.Contains(body, `"attributed":true`) {
			t.Fatalf("test signup: %s", body)
		}
		if c := e.must("GET", "/api/v2/customers/t@shop.test", e.prod, nil).data(); c["test"] != true {
			t.Fatalf("test signup customer: %v", c)
		}
		// The attribution window comes from the config endpoint, with CORS.
		resp = e.raw("GET", "/js/config?public_key="+pk, "", http.Header{"Origin": {"https://www.vendor.test"}}, "")
		if body := readAll(resp); resp.StatusCode != 200 || !strings.Contains(body, `"attribution_days":90`) || resp.Header.Get("Access-Control-Allow-Origin") == "" {
			t.Fatalf("config: %d %s", resp.StatusCode, body)
		}
	})
}

func TestSnippetIsServedSmallAndSelfContained(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		for _, path := range []string{"/v1/", "/partnerstack.js"} {
			resp := e.raw("GET", path, "partnerd.example.net:8443", http.Header{"Accept-Encoding": {"gzip"}}, "")
			if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "gzip" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/javascript") {
				t.Fatalf("%s: %d %v", path, resp.StatusCode, resp.Header)
			}
			gz, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if len(gz) > 2048 {
				t.Fatalf("%s is %d bytes gzipped; the limit is 2048", path, len(gz))
			}
			zr, err := gzip.NewReader(strings.NewReader(string(gz)))
			if err != nil {
				t.Fatal(err)
			}
			js, _ := io.ReadAll(zr)
			if !strings.Contains(string(js), `"http://partnerd.example.net:8443"`) {
				t.Fatalf("%s: base URL not baked in", path)
			}
			// No third-party requests: the only URL in the script is partnerd's own.
			for _, u := range regexp.MustCompile(`https?://[^"' ]+`).FindAllString(string(js), -1) {
				if u != "http://partnerd.example.net:8443" {
					t.Fatalf("%s refers to %s", path, u)
				}
			}
			for _, api := range []string{"_initialize", "createSignup", "growsumoInit", "growSumoPartnerKey", "ps_partner_key", "ps_xid", "gsxid", "gspk", "w.growsumo = w.partnerstack"} {
				if !strings.Contains(string(js), api) {
					t.Fatalf("%s lacks %s", path, api)
				}
			}
		}
		resp := e.raw("GET", "/v1/", "evil\"host", nil, "")
		if readAll(resp); resp.StatusCode != 400 {
			t.Fatalf("bad Host header: %d", resp.StatusCode)
		}
	})
}

// TestShutdownStoresEveryClick: after a graceful shutdown, the stored clicks
// equal the redirects served.
func TestShutdownStoresEveryClick(t *testing.T) {
	for _, dsn := range []string{filepath.Join(t.TempDir(), "clicks.db")} {
		ctx, cancel := context.WithCancel(context.Background())
		a, err := app.Open(ctx, app.Config{DB: dsn, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Program.CreateCompany(ctx, "S", "https://www.vendor.test/"); err != nil {
			t.Fatal(err)
		}
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		done := make(chan error, 1)
		go func() { done <- a.ServeListener(ctx, ln, nil) }()
		served := 0
		for i := 0; i < 300; i++ {
			resp, err := noFollow.Get("http://" + ln.Addr().String() + "/r/gstest")
			if err != nil {
				t.Fatal(err)
			}
			readAll(resp)
			if resp.StatusCode == 302 {
				served++
			}
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		var stored int
		a.DB.QueryRow(context.Background(), "SELECT COUNT(*) FROM clicks").Scan(&stored)
		a.Close()
		if served != 300 || stored != served {
			t.Fatalf("served %d redirects, stored %d clicks", served, stored)
		}
	}
	_ = fs.ErrNotExist
}
