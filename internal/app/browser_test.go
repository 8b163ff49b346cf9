package app_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/partnerd/partnerd/internal/program"
)

// Browser tests drive Debian's Chromium (PARTNERD_TEST_CHROMIUM) through the
// whole attribution path. Host names are mapped to 127.0.0.1 inside the
// browser, so cookies behave as on real domains: partnerd is reached as
// partnerd.test and go.vendor.test, the merchant's site as www.vendor.test.

func chromiumPath(t *testing.T) string {
	p := os.Getenv("PARTNERD_TEST_CHROMIUM")
	if p == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("CI is set but PARTNERD_TEST_CHROMIUM is not: .ci/run must install chromium")
		}
		t.Skip("PARTNERD_TEST_CHROMIUM is not set: browser tests are skipped (.ci/run sets it)")
	}
	return p
}

// browser starts a fresh Chromium (its own profile, so its own cookies).
func browser(t *testing.T) context.Context {
	// Not t.TempDir: Chromium may still be writing its profile for a moment
	// after it is told to stop, which would fail the test's cleanup.
	profile, err := os.MkdirTemp("", "partnerd-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(profile),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("host-resolver-rules", "MAP *.vendor.test 127.0.0.1, MAP partnerd.test 127.0.0.1"),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() {
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
		for i := 0; i < 20 && os.RemoveAll(profile) != nil; i++ {
			time.Sleep(100 * time.Millisecond)
		}
	})
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// PartnerStack's own install snippet, as vendors paste it, with only the
// script URL changed.
const installSnippet = `<script>
(function() {var gs = document.createElement('script');gs.src = '{{.Script}}';gs.type = 'text/javascript';gs.async = 'true';gs.onload = gs.onreadystatechange = function() {var rs = this.readyState;if (rs && rs != 'complete' && rs != 'loaded') return;try {growsumo._initialize('{{.PK}}'); if (typeof(growsumoInit) === 'function') {growsumoInit();}} catch (e) {}};var s = document.getElementsByTagName('script')[0];s.parentNode.insertBefore(gs, s);})();
</script>`

var merchantPages = template.Must(template.New("landing").Parse(`<!doctype html><html><head><title>Vendor</title>` + installSnippet + `
<script>function growsumoInit() { window.initCount = (window.initCount || 0) + 1; }</script></head>
<body><h1>Sign up</h1><input id="email"><button id="signup">Sign up</button>
<script>
document.getElementById('signup').onclick = function () {
  growsumo.data.name = 'Ada Lovelace';
  growsumo.data.email = document.getElementById('email').value;
  growsumo.data.customer_key = document.getElementById('email').value.split('@')[0];
  growsumo.createSignup(function (res, status) {
    var d = document.createElement('div'); d.id = 'done'; d.textContent = status + ' ' + JSON.stringify(res); document.body.appendChild(d);
  });
};
</script></body></html>`))

var plainPage = `<!doctype html><html><head><title>Vendor, no script</title></head><body>
<form method="post" action="/backend-signup"><input name="email" id="email"><button id="signup">Sign up</button></form></body></html>`

// merchant is the vendor's own site, on another origin than partnerd. Its
// back end follows PartnerStack's older docs: read the growSumoPartnerKey
// cookie and call POST /v1/customers.
func (e *env) merchant(t *testing.T, partnerdBase string) (base string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	mux := http.NewServeMux()
	mux.HandleFunc("GET /landing", func(w http.ResponseWriter, r *http.Request) {
		merchantPages.Execute(w, map[string]string{"Script": partnerdBase + "/v1/", "PK": e.company.Production.PublicKey})
	})
	mux.HandleFunc("GET /plain", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, plainPage) })
	mux.HandleFunc("POST /backend-signup", func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie("growSumoPartnerKey")
		if err != nil {
			io.WriteString(w, "<p id=result>no partner cookie</p>")
			return
		}
		email := r.FormValue("email")
		body := fmt.Sprintf(`{"email":%q,"key":%q,"partner_key":%q,"ip_address":"198.51.100.7"}`, email, strings.Split(email, "@")[0], c.Value)
		req, _ := http.NewRequest("POST", e.base+"/v1/customers", strings.NewReader(body))
		req.Header.Set("Authorization", e.prod.header)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Fprintf(w, "<p id=result>%d %s</p>", resp.StatusCode, template.HTMLEscapeString(string(b)))
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return fmt.Sprintf("http://www.vendor.test:%d", port)
}

func partnerdPort(e *env) string {
	u, _ := url.Parse(e.base)
	return u.Port()
}

func cookiesFor(ctx context.Context, u string) (map[string]*network.Cookie, error) {
	out := map[string]*network.Cookie{}
	err := chromedp.Run(ctx, chromedp.ActionFunc(func(ctx context.Context) error {
		cs, err := network.GetCookies().WithURLs([]string{u}).Do(ctx)
		for _, c := range cs {
			out[c.Name] = c
		}
		return err
	}))
	return out, err
}

// TestBrowserAttribution walks a partner link through a real browser to an
// attributed customer, then lands directly with ?gspk= and no redirect.
func TestBrowserAttribution(t *testing.T) {
	chromiumPath(t)
	engines(t, func(t *testing.T, e *env) {
		partnerd := "http://partnerd.test:" + partnerdPort(e)
		site := e.merchant(t, partnerd)
		e.configure(program.CompanySettings{Website: ptrS(site + "/landing?utm_medium=partner")})
		e.partnership("jane@p.test", "jane")
		e.partnership("bob@p.test", "bob2x") // base64 "Ym9iMng=" has padding

		ctx := browser(t)
		var search, cookie, partnerKey string
		var inits int
		err := chromedp.Run(ctx,
			chromedp.Navigate(partnerd+"/r/jane?sid=promo"),
			chromedp.Poll(`document.cookie.indexOf('ps_xid=') >= 0`, nil, chromedp.WithPollingTimeout(20*time.Second)),
			chromedp.Evaluate(`location.search`, &search),
			chromedp.Evaluate(`document.cookie`, &cookie),
			chromedp.Evaluate(`window.initCount`, &inits),
			chromedp.Evaluate(`growsumo.data.partner_key`, &partnerKey),
		)
		if err != nil {
			t.Fatalf("walk to the landing page: %v", err)
		}
		q, _ := url.ParseQuery(strings.TrimPrefix(search, "?"))
		xid := q.Get("ps_xid")
		if xid == "" || q.Get("utm_medium") != "partner" || q.Get("sid") != "promo" {
			t.Fatalf("landing URL: %s", search)
		}
		for _, want := range []string{"growSumoPartnerKey=jane", "ps_partner_key=jane", "ps_xid=" + xid, "gsxid=" + xid} {
			if !strings.Contains(cookie, want) {
				t.Fatalf("cookie %q missing from %q", want, cookie)
			}
		}
		if inits != 1 || partnerKey != "jane" || partnerKey == "" {
			t.Fatalf("growsumoInit ran %d times (want 1); growsumo.data.partner_key %q", inits, partnerKey)
		}
		jar, err := cookiesFor(ctx, site+"/")
		if err != nil {
			t.Fatal(err)
		}
		c := jar["growSumoPartnerKey"]
		days := (c.Expires - float64(time.Now().Unix())) / 86400
		if c.Domain != ".vendor.test" || days < 89 || days > 91 {
			t.Fatalf("cookie scope: domain %q, %.1f days", c.Domain, days)
		}

		var done string
		err = chromedp.Run(ctx,
			chromedp.SendKeys("#email", "ada@shop.test", chromedp.ByID),
			chromedp.Click("#signup", chromedp.ByID),
			chromedp.WaitVisible("#done", chromedp.ByID),
			chromedp.Text("#done", &done, chromedp.ByID),
		)
		if err != nil {
			t.Fatalf("sign up: %v", err)
		}
		if !strings.HasPrefix(done, "200 ") || !strings.Contains(done, `"attributed":true`) {
			t.Fatalf("createSignup callback: %s", done)
		}
		cu := e.must("GET", "/api/v2/customers/ada", e.prod, nil).data()
		if cu["partner_key"] != "jane" || cu["email"] != "ada@shop.test" || cu["name"] != "Ada Lovelace" || cu["source_type"] != "js" {
			t.Fatalf("customer: %v", cu)
		}
		var storedXID, subs string
		e.app.DB.QueryRow(context.Background(), "SELECT click_xid, sub_ids FROM customers WHERE customer_key = 'ada'").Scan(&storedXID, &subs)
		if storedXID != xid || subs != `{"sid":"promo"}` {
			t.Fatalf("customer's click %q (want %q), sub-ids %s", storedXID, xid, subs)
		}

		// Last click wins: a later click on another partner's link replaces the cookies.
		err = chromedp.Run(ctx,
			chromedp.Navigate(partnerd+"/r/bob2x"),
			chromedp.Poll(`document.cookie.indexOf('growSumoPartnerKey=bob2x') >= 0`, nil, chromedp.WithPollingTimeout(20*time.Second)),
			chromedp.Evaluate(`document.cookie`, &cookie),
		)
		if err != nil || strings.Contains(cookie, xid) {
			t.Fatalf("second click: %v; cookies %q still hold the first click", err, cookie)
		}

		// A direct landing with ?gspk= (padded base64) and no redirect, in a fresh browser.
		ctx2 := browser(t)
		gspk := base64.StdEncoding.EncodeToString([]byte("bob2x"))
		err = chromedp.Run(ctx2,
			chromedp.Navigate(site+"/landing?gspk="+url.QueryEscape(gspk)),
			chromedp.Poll(`document.cookie.indexOf('growSumoPartnerKey=bob2x') >= 0`, nil, chromedp.WithPollingTimeout(20*time.Second)),
			chromedp.Evaluate(`document.cookie`, &cookie),
			chromedp.SendKeys("#email", "grace@shop.test", chromedp.ByID),
			chromedp.Click("#signup", chromedp.ByID),
			chromedp.WaitVisible("#done", chromedp.ByID),
			chromedp.Text("#done", &done, chromedp.ByID),
		)
		if err != nil {
			t.Fatalf("direct landing: %v", err)
		}
		if strings.Contains(cookie, "ps_xid=") || !strings.Contains(done, `"partner_key":"bob2x"`) {
			t.Fatalf("direct landing: cookies %q, signup %s", cookie, done)
		}
		if cu := e.must("GET", "/api/v2/customers/grace", e.prod, nil).data(); cu["partner_key"] != "bob2x" {
			t.Fatalf("direct landing customer: %v", cu)
		}

		// Malformed base64 in the landing URL is ignored: no cookie, and a
		// sign-up is counted but not attributed.
		ctx3 := browser(t)
		err = chromedp.Run(ctx3,
			chromedp.Navigate(site+"/landing?gspk=%25%25%25notbase64&gsxid=%3Cscript%3E"),
			chromedp.WaitVisible("#signup", chromedp.ByID),
			chromedp.Sleep(300*time.Millisecond),
			chromedp.Evaluate(`document.cookie`, &cookie),
			chromedp.SendKeys("#email", "nobody@shop.test", chromedp.ByID),
			chromedp.Click("#signup", chromedp.ByID),
			chromedp.WaitVisible("#done", chromedp.ByID),
			chromedp.Text("#done", &done, chromedp.ByID),
		)
		if err != nil || cookie != "" || !strings.Contains(done, `"attributed":false`) {
			t.Fatalf("malformed landing: %v; cookies %q; signup %s", err, cookie, done)
		}
	})
}

// TestBrowserServerSetCookies: on the vendor's link domain the redirect
// itself sets the cookies, so a page with no script at all is attributed,
// here through PartnerStack's back-end path (cookie → POST /v1/customers).
func TestBrowserServerSetCookies(t *testing.T) {
	chromiumPath(t)
	engines(t, func(t *testing.T, e *env) {
		site := e.merchant(t, "http://partnerd.test:"+partnerdPort(e))
		e.configure(program.CompanySettings{Website: ptrS(site + "/plain"), LinkDomain: ptrS("go.vendor.test"), CookieDomain: ptrS("vendor.test")})
		e.partnership("jane@p.test", "jane")
		ctx := browser(t)
		var cookie, result string
		err := chromedp.Run(ctx,
			chromedp.Navigate("http://go.vendor.test:"+partnerdPort(e)+"/jane"),
			chromedp.WaitVisible("#email", chromedp.ByID),
			chromedp.Evaluate(`document.cookie`, &cookie),
			chromedp.SendKeys("#email", "lin@shop.test", chromedp.ByID),
			chromedp.Click("#signup", chromedp.ByID),
			chromedp.WaitVisible("#result", chromedp.ByID),
			chromedp.Text("#result", &result, chromedp.ByID),
		)
		if err != nil {
			t.Fatalf("walk: %v", err)
		}
		if !strings.Contains(cookie, "growSumoPartnerKey=jane") || !strings.Contains(cookie, "ps_xid=") {
			t.Fatalf("server-set cookies not visible on the vendor's site: %q", cookie)
		}
		if !strings.HasPrefix(result, "200 ") {
			t.Fatalf("back-end signup: %s", result)
		}
		if cu := e.must("GET", "/api/v2/customers/lin", e.prod, nil).data(); cu["partner_key"] != "jane" || cu["source_type"] != "api_v1" {
			t.Fatalf("back-end customer: %v", cu)
		}
		jar, _ := cookiesFor(ctx, site+"/")
		if c := jar["ps_xid"]; c == nil || c.Domain != ".vendor.test" || c.HTTPOnly {
			t.Fatalf("server-set cookie: %+v", c)
		}
	})
}
