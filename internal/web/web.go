// Package web is partnerd's browser app: the vendor dashboard, the partner
// portal and the agency's hub pages, rendered on the server with
// html/template from files embedded in the binary. Pages work without
// JavaScript; static/app.js only adds conveniences (copy buttons, select
// all). It translates forms into calls on the domain packages and holds no
// business rules of its own.
package web

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/partnerd/partnerd/internal/accounts"
	"github.com/partnerd/partnerd/internal/billing"
	"github.com/partnerd/partnerd/internal/clock"
	"github.com/partnerd/partnerd/internal/errs"
	"github.com/partnerd/partnerd/internal/hub"
	"github.com/partnerd/partnerd/internal/importer"
	"github.com/partnerd/partnerd/internal/ledger"
	"github.com/partnerd/partnerd/internal/program"
	"github.com/partnerd/partnerd/internal/stats"
	"github.com/partnerd/partnerd/internal/store"
	"github.com/partnerd/partnerd/internal/webhooks"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// Deps are the services the pages call.
type Deps struct {
	DB       *store.DB
	Clock    clock.Clock
	Log      *slog.Logger
	Accounts *accounts.Service
	Program  *program.Service
	Ledger   *ledger.Service
	Hub      *hub.Service
	Stats    *stats.Service
	Importer *importer.Service
	Billing  *billing.Service
	Webhooks *webhooks.Service
}

// Server serves the web app.
type Server struct {
	Deps
	pages map[string]*template.Template
}

// New parses the templates (a broken template fails here, at start-up, not
// on a page view).
func New(d Deps) (*Server, error) {
	s := &Server{Deps: d, pages: map[string]*template.Template{}}
	names, err := fs.Glob(templateFiles, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("list templates: %w", err)
	}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("parse template %s: %w", n, err)
		}
		s.pages[base] = t
	}
	return s, nil
}

// Handler is what the routes need of a mux.
type Handler interface {
	Handle(pattern string, h http.Handler)
}

// Routes adds the app's routes to mux.
func (s *Server) Routes(mux Handler) {
	static, _ := fs.Sub(staticFiles, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", cacheForever(http.FileServerFS(static))))
	mux.Handle("GET /{$}", s.page(s.home, anyone))
	mux.Handle("GET /login", s.page(s.loginForm(accounts.PortalApp), anyone))
	mux.Handle("POST /login", s.page(s.login(accounts.PortalApp), anyone))
	mux.Handle("GET /portal/login", s.page(s.loginForm(accounts.PortalPartner), anyone))
	mux.Handle("POST /portal/login", s.page(s.login(accounts.PortalPartner), anyone))
	mux.Handle("POST /logout", s.page(s.logout, loggedIn))

	vendor := func(h pageFunc) http.Handler { return s.page(h, kind(accounts.Vendor)) }
	mux.Handle("GET /app", vendor(s.overview))
	mux.Handle("GET /app/partners", vendor(s.partners))
	mux.Handle("GET /app/partners/{key}", vendor(s.partner))
	mux.Handle("GET /app/customers", vendor(s.customers))
	mux.Handle("GET /app/transactions", vendor(s.transactions))
	mux.Handle("GET /app/rewards", vendor(s.rewards))
	mux.Handle("POST /app/rewards", vendor(s.reviewRewards))
	mux.Handle("GET /app/payouts", vendor(s.payouts))
	mux.Handle("POST /app/payouts/{key}/paid", vendor(s.markPaid))
	mux.Handle("GET /app/imports", vendor(s.imports))
	mux.Handle("POST /app/imports", vendor(s.upload))
	mux.Handle("GET /app/imports/{key}", vendor(s.importPage))
	mux.Handle("POST /app/payouts/run", vendor(s.runPayouts))
	mux.Handle("GET /app/payouts/export", vendor(s.exportPayouts))
	mux.Handle("GET /app/offers", vendor(s.offers))
	mux.Handle("POST /app/offers", vendor(s.createOffer))
	mux.Handle("POST /app/offers/{key}/archive", vendor(s.archiveOffer))
	mux.Handle("POST /app/groups", vendor(s.createGroup))
	mux.Handle("GET /app/developers", vendor(s.developers))
	mux.Handle("POST /app/developers/keys", vendor(s.createKeys))
	mux.Handle("POST /app/developers/keys/{public}/revoke", vendor(s.revokeKeys))
	mux.Handle("POST /app/developers/tracking-token", vendor(s.createTrackingToken))
	mux.Handle("GET /app/billing", vendor(s.billingPage))
	mux.Handle("POST /app/billing/{provider}", vendor(s.configureBilling))
	mux.Handle("POST /app/billing/events/{id}/replay", vendor(s.replayBilling))
	mux.Handle("GET /app/webhooks", vendor(s.webhooksPage))
	mux.Handle("POST /app/webhooks", vendor(s.createWebhook))
	mux.Handle("POST /app/webhooks/{key}/archive", vendor(s.archiveWebhook))

	partner := func(h pageFunc) http.Handler { return s.page(h, kind(accounts.Partner)) }
	mux.Handle("GET /portal", partner(s.portal))
	mux.Handle("GET /portal/customers", partner(s.portalCustomers))
	mux.Handle("GET /portal/rewards", partner(s.portalRewards))
	mux.Handle("GET /portal/payouts", partner(s.portalPayouts))
	mux.Handle("GET /portal/tokens", partner(s.portalTokens))
	mux.Handle("POST /portal/tokens", partner(s.createToken))
	mux.Handle("POST /portal/tokens/{id}/revoke", partner(s.revokeToken))

	agency := func(h pageFunc) http.Handler { return s.page(h, kind(accounts.Agency)) }
	mux.Handle("GET /hub", agency(s.hubConnections))
	mux.Handle("POST /hub/connections", agency(s.hubConnect))
	mux.Handle("POST /hub/connections/{key}/sync", agency(s.hubSyncNow))
	mux.Handle("GET /hub/report", agency(s.hubReport))
	mux.Handle("GET /hub/missed", agency(s.hubMissed))
	mux.Handle("GET /hub/referrals", agency(s.hubReferrals))
	mux.Handle("GET /hub/accounts", agency(s.hubAccounts))
	mux.Handle("GET /hub/programs", agency(s.hubPrograms))
	mux.Handle("GET /hub/contacts", agency(s.hubContacts))
	mux.Handle("GET /hub/deals", agency(s.hubDeals))
	mux.Handle("GET /hub/leads", agency(s.hubLeads))
}

// cacheForever marks embedded assets cacheable; their URLs carry the
// build's asset version (see assetVersion) so a new binary busts them.
func cacheForever(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		h.ServeHTTP(w, r)
	})
}

// view is what every page template gets.
type view struct {
	Title   string
	Nav     string // the active section
	Session *accounts.Session
	Company *program.Company
	Flash   string
	Error   string
	Data    any
}

// render writes a page. It renders into a buffer first so that a template
// error becomes a clean 500, not half a page.
func (s *Server) render(w http.ResponseWriter, status int, name string, v view) error {
	t := s.pages[name]
	if t == nil {
		return fmt.Errorf("no template %q", name)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout.html", v); err != nil {
		return fmt.Errorf("render %s: %w", name, err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, err := buf.WriteTo(w)
	return err
}

// pageFunc handles a page for a request whose session (if any) is known.
type pageFunc func(w http.ResponseWriter, r *http.Request, sess *accounts.Session) error

// access decides whether a session may see a page.
type access func(sess *accounts.Session) bool

func anyone(*accounts.Session) bool     { return true }
func loggedIn(s *accounts.Session) bool { return s != nil }
func kind(k string) access {
	return func(s *accounts.Session) bool { return s != nil && s.User.Kind == k }
}
func clientOf(r *http.Request) string {
	h, _, err := net.SplitHostPort(r.RemoteAddr)
	return orElse(h, r.RemoteAddr, err)
}
func orElse(v, alt string, err error) string {
	if err != nil || v == "" {
		return alt
	}
	return v
}

// page wraps a handler with the app's common work: security headers, the
// session from its cookie, the access rule (anonymous visitors go to the
// right log-in page), the CSRF check on every form, and errors rendered
// as pages.
func (s *Server) page(h pageFunc, allowed access) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w = &timed{ResponseWriter: w, start: time.Now()}
		hdr := w.Header()
		hdr.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hdr.Set("X-Content-Type-Options", "nosniff")
		hdr.Set("Referrer-Policy", "same-origin")
		hdr.Set("Cache-Control", "no-store")
		sess := s.sessionOf(r)
		if !allowed(sess) {
			if sess != nil {
				s.fail(w, r, sess, errs.E(errs.Forbidden, "this page is not part of your account"))
				return
			}
			target := "/login"
			if strings.HasPrefix(r.URL.Path, "/portal") {
				target = "/portal/login"
			}
			http.Redirect(w, r, target+"?next="+urlQueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost {
			if err := s.checkForm(r, sess); err != nil {
				s.fail(w, r, sess, err)
				return
			}
		}
		if err := h(w, r, sess); err != nil {
			s.fail(w, r, sess, err)
		}
	})
}

// timed adds the server's time for the page as a Server-Timing header
// (what bench/web reads) when the response's head is written.
type timed struct {
	http.ResponseWriter
	start time.Time
	wrote bool
}

func (t *timed) WriteHeader(code int) {
	if !t.wrote {
		t.wrote = true
		t.Header().Set("Server-Timing", fmt.Sprintf("app;dur=%.2f", float64(time.Since(t.start).Microseconds())/1000))
	}
	t.ResponseWriter.WriteHeader(code)
}

func (t *timed) Write(b []byte) (int, error) {
	if !t.wrote {
		t.WriteHeader(http.StatusOK)
	}
	return t.ResponseWriter.Write(b)
}

// fail renders an error page with the status of the error's code.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, sess *accounts.Session, err error) {
	status := http.StatusInternalServerError
	switch errs.CodeOf(err) {
	case errs.Invalid:
		status = http.StatusBadRequest
	case errs.NotFound:
		status = http.StatusNotFound
	case errs.Conflict:
		status = http.StatusConflict
	case errs.Unauthorized:
		status = http.StatusUnauthorized
	case errs.Forbidden:
		status = http.StatusForbidden
	case errs.RateLimited:
		status = http.StatusTooManyRequests
	}
	if status == http.StatusInternalServerError && !errors.Is(err, context.Canceled) {
		s.Log.Error("web page failed", "path", r.URL.Path, "err", err)
	}
	if rerr := s.render(w, status, "error", view{Title: http.StatusText(status), Session: sess, Error: errs.MessageOf(err)}); rerr != nil {
		http.Error(w, http.StatusText(status), status)
	}
}

// home sends each visitor where they belong.
func (s *Server) home(w http.ResponseWriter, r *http.Request, sess *accounts.Session) error {
	http.Redirect(w, r, homeOf(sess), http.StatusSeeOther)
	return nil
}

func homeOf(sess *accounts.Session) string {
	if sess == nil {
		return "/login"
	}
	switch sess.User.Kind {
	case accounts.Vendor:
		return "/app"
	case accounts.Agency:
		return "/hub"
	default:
		return "/portal"
	}
}

// principal is the vendor's view of its own company: production data.
func (s *Server) principal(ctx context.Context, sess *accounts.Session) (program.Principal, *program.Company, error) {
	c, err := s.Program.CompanyByID(ctx, sess.User.CompanyID)
	if err != nil {
		return program.Principal{}, nil, fmt.Errorf("read company: %w", err)
	}
	return program.Principal{CompanyID: c.ID, CompanyKey: c.Key, CompanyName: c.Name}, &c, nil
}
