// Package api is partnerd's PartnerStack-compatible HTTP API: the envelope,
// pagination, authentication and routes. It translates requests into calls on
// the domain packages and holds no business rules of its own.
package api

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	apispec "github.com/partnerd/partnerd/api"
	"github.com/partnerd/partnerd/internal/billing"
	"github.com/partnerd/partnerd/internal/errs"
	"github.com/partnerd/partnerd/internal/hub"
	"github.com/partnerd/partnerd/internal/importer"
	"github.com/partnerd/partnerd/internal/ledger"
	"github.com/partnerd/partnerd/internal/pipeline"
	"github.com/partnerd/partnerd/internal/program"
	"github.com/partnerd/partnerd/internal/tracking"
	"github.com/partnerd/partnerd/internal/webhooks"
)

// Server serves the API.
type Server struct {
	program  *program.Service
	ledger   *ledger.Service
	tracking *tracking.Service
	webhooks *webhooks.Service
	billing  *billing.Service
	importer *importer.Service
	pipeline *pipeline.Service
	hub      *hub.Service
	js       tracking.Snippet
	ready    func(context.Context) error
	log      *slog.Logger
	metrics  *Metrics
	draining atomic.Bool
	mux      *http.ServeMux
}

// Metrics are the API's Prometheus collectors.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMetrics registers the API's collectors with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "partnerd_http_requests_total", Help: "HTTP requests by route, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "partnerd_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

// New returns a Server. ready reports whether the database answers.
func New(prog *program.Service, led *ledger.Service, trk *tracking.Service, ready func(context.Context) error, log *slog.Logger, m *Metrics) *Server {
	s := &Server{program: prog, ledger: led, tracking: trk, ready: ready, log: log, metrics: m, mux: http.NewServeMux()}
	s.routes()
	return s
}

// UseWebhooks sets the webhook service (it needs the server to render
// event bodies, so it is made after the server).
func (s *Server) UseWebhooks(w *webhooks.Service) { s.webhooks = w }

// Drain makes /readyz fail, so a load balancer stops sending traffic while
// in-flight requests finish.
func (s *Server) Drain() { s.draining.Store(true) }

// Handle adds a route served beside the API (the app adds /metrics).
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

func (s *Server) routes() {
	vendor, any := s.vendorOnly, s.vendorOrPartner
	m := s.mux
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, map[string]string{"status": "ok"}) })
	m.HandleFunc("GET /readyz", s.readyz)
	m.HandleFunc("GET /api/openapi.yaml", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		_, _ = w.Write(apispec.OpenAPI)
	})

	m.Handle("GET /api/v2/partnerships", any(s.listPartnerships))
	m.Handle("POST /api/v2/partnerships", vendor(s.createPartnership))
	m.Handle("GET /api/v2/partnerships/{id}", vendor(s.getPartnership))
	m.Handle("PATCH /api/v2/partnerships/{id}", vendor(s.updatePartnership))
	m.Handle("DELETE /api/v2/partnerships/{id}", vendor(s.archivePartnership))

	m.Handle("GET /api/v2/groups", vendor(s.listGroups))
	m.Handle("POST /api/v2/groups", vendor(s.createGroup))

	m.Handle("GET /api/v2/customers", any(s.listCustomers))
	m.Handle("POST /api/v2/customers", vendor(s.createCustomer))
	m.Handle("GET /api/v2/customers/{id}", vendor(s.getCustomer))
	m.Handle("PATCH /api/v2/customers/{id}", vendor(s.updateCustomer))
	m.Handle("DELETE /api/v2/customers/{id}", vendor(s.archiveCustomer))

	m.Handle("GET /api/v2/transactions", any(s.listTransactions))
	m.Handle("POST /api/v2/transactions", vendor(s.createTransaction))
	m.Handle("GET /api/v2/transactions/{key}", vendor(s.getTransaction))
	m.Handle("DELETE /api/v2/transactions/{key}", vendor(s.deleteTransaction))

	m.Handle("GET /api/v2/transactions/{key}/explain", vendor(s.explainTransaction))

	m.Handle("GET /api/v2/offers", vendor(s.listOffers))
	m.Handle("POST /api/v2/offers", vendor(s.createOffer))
	m.Handle("GET /api/v2/offers/{key}", vendor(s.getOffer))
	m.Handle("PATCH /api/v2/offers/{key}", vendor(s.updateOffer))
	m.Handle("DELETE /api/v2/offers/{key}", vendor(s.archiveOffer))

	m.Handle("GET /api/v2/rewards", any(s.listRewards))
	m.Handle("POST /api/v2/rewards", vendor(s.createReward))
	m.Handle("GET /api/v2/rewards/{key}", any(s.getReward))
	m.Handle("GET /api/v2/rewards/{key}/explain", any(s.explainReward))
	m.Handle("POST /api/v2/rewards/{key}/approve", vendor(s.approveReward))
	m.Handle("POST /api/v2/rewards/{key}/decline", vendor(s.declineReward))

	m.Handle("GET /api/v2/payouts", any(s.listPayouts))
	m.Handle("GET /api/v2/payouts/export", vendor(s.exportPayouts))
	m.Handle("GET /api/v2/payouts/{key}", any(s.getPayout))
	m.Handle("POST /api/v2/payouts/{key}/paid", vendor(s.payoutPaid))

	m.Handle("GET /api/v2/actions", any(s.listActions))
	m.Handle("POST /api/v2/actions", vendor(s.createAction))
	m.Handle("DELETE /api/v2/actions/{key}", vendor(s.archiveAction))

	m.Handle("POST /api/v2/exchange-rates", vendor(s.loadRates))

	// Leads and deals: a partner token may submit and read its own.
	m.Handle("GET /api/v2/leads", any(s.listLeads))
	m.Handle("POST /api/v2/leads", any(s.createLead))
	m.Handle("GET /api/v2/leads/{key}", any(s.getLead))
	m.Handle("PATCH /api/v2/leads/{key}", vendor(s.updateLead))
	m.Handle("DELETE /api/v2/leads/{key}", vendor(s.archiveLead))
	m.Handle("POST /api/v2/leads/{key}/convert", vendor(s.convertLead))
	m.Handle("GET /api/v2/deals", any(s.listDeals))
	m.Handle("POST /api/v2/deals", any(s.createDeal))
	m.Handle("GET /api/v2/deals/{key}", any(s.getDeal))
	m.Handle("PATCH /api/v2/deals/{key}", vendor(s.updateDeal))
	m.Handle("DELETE /api/v2/deals/{key}", vendor(s.archiveDeal))
	m.Handle("POST /api/v2/deals/{key}/convert", vendor(s.convertDeal))
	m.Handle("GET /api/v2/sales-cycles/deals/stages", any(s.getDealStages))
	m.Handle("PUT /api/v2/sales-cycles/deals/stages", vendor(s.setDealStages))

	m.Handle("GET /api/v2/webhooks", vendor(s.listWebhooks))
	m.Handle("POST /api/v2/webhooks", vendor(s.createWebhook))
	m.Handle("GET /api/v2/webhooks/{key}", vendor(s.getWebhook))
	m.Handle("PATCH /api/v2/webhooks/{key}", vendor(s.updateWebhook))
	m.Handle("DELETE /api/v2/webhooks/{key}", vendor(s.archiveWebhook))
	m.Handle("GET /api/v2/webhooks/{key}/deliveries", vendor(s.listDeliveries))

	m.Handle("POST /v1/customers", vendor(s.v1CreateCustomer))
	m.Handle("GET /v1/customers/{key}", vendor(s.v1GetCustomer))
	m.Handle("PATCH /v1/customers/{key}", vendor(s.v1UpdateCustomer))
	m.Handle("POST /v1/customers/{key}/transactions", vendor(s.v1CreateTransaction))

	m.Handle("GET /api/v2/links/partnership/{id}", vendor(s.listLinks))
	m.Handle("POST /api/v2/links/partnership/{id}", vendor(s.createLink))

	m.HandleFunc("GET /r/{slug}", s.redirect)
	m.HandleFunc("GET /v1/{$}", s.snippet)
	m.HandleFunc("GET /partnerstack.js", s.snippet)
	m.Handle("GET /js/config", s.selfAuthenticated(s.jsConfig))
	m.Handle("POST /js/signup", s.selfAuthenticated(s.jsSignup))
	m.HandleFunc("OPTIONS /js/signup", s.jsPreflight)
	m.HandleFunc("OPTIONS /js/config", s.jsPreflight)
	m.Handle("POST /conversion/xid", s.selfAuthenticated(s.conversion))

	// Billing providers' webhooks: verified by the provider's signature.
	m.Handle("POST /webhooks/{provider}/{company}", s.selfAuthenticated(s.receiveBilling(false)))
	m.Handle("POST /webhooks/{provider}/{company}/test", s.selfAuthenticated(s.receiveBilling(true)))
	m.Handle("PUT /api/v2/billing/{provider}", vendor(s.configureBilling))
	m.Handle("GET /api/v2/billing/events", vendor(s.listBillingEvents))
	m.Handle("GET /api/v2/billing/subscriptions", vendor(s.listSubscriptions))

	m.Handle("POST /api/v2/imports", vendor(s.createImport))
	m.Handle("GET /api/v2/imports", vendor(s.listImports))
	m.Handle("GET /api/v2/imports/{key}", vendor(s.getImport))
	m.Handle("GET /api/v2/imports/{key}/report", vendor(s.importReport))
	m.Handle("GET /api/v2/exports/{type}", vendor(s.exportType))

	// The partner hub: a workspace's token.
	m.Handle("GET /api/hub/connections", s.hubOnly(s.listHubConnections))
	m.Handle("POST /api/hub/connections", s.hubOnly(s.createHubConnection))
	m.Handle("GET /api/hub/connections/{key}", s.hubOnly(s.getHubConnection))
	m.Handle("POST /api/hub/connections/{key}/sync", s.hubOnly(s.syncHubConnection))
	m.Handle("GET /api/hub/connections/{key}/streams", s.hubOnly(s.hubConnectionStreams))
	m.Handle("GET /api/hub/report", s.hubOnly(s.hubReport))
	m.Handle("GET /api/hub/accounts", s.hubOnly(s.hubAccounts))
	m.Handle("GET /api/hub/deals", s.hubOnly(s.hubDeals))
	m.Handle("GET /api/hub/programs", s.hubOnly(s.hubPrograms))
	m.Handle("GET /api/hub/referrals", s.hubOnly(s.hubReferrals))
	m.Handle("GET /api/hub/leads", s.hubOnly(s.hubLeads))

	m.HandleFunc("/", s.fallback)
}

// ServeHTTP logs and measures every request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w, status: 200}
	if msg := badURL(r); msg != "" {
		// PostgreSQL refuses NUL bytes and invalid UTF-8 in text: stop them
		// here with a 400 instead of failing deep in a query.
		writeJSON(rec, http.StatusBadRequest, errorBody{Message: msg, Status: http.StatusBadRequest})
	} else {
		s.mux.ServeHTTP(rec, r)
	}
	route := r.Pattern
	if route == "" || route == "/" {
		route = "unmatched"
	}
	d := time.Since(start)
	s.metrics.requests.WithLabelValues(route, r.Method, strconv.Itoa(rec.status)).Inc()
	s.metrics.duration.WithLabelValues(route).Observe(d.Seconds())
	// Paths and statuses only: no headers, bodies or query strings, which
	// carry credentials and personal data.
	lvl := slog.LevelDebug
	if rec.status >= 500 {
		lvl = slog.LevelError
	}
	s.log.Log(r.Context(), lvl, "request", slog.String("method", r.Method), slog.String("route", route),
		slog.Int("status", rec.status), slog.Float64("ms", float64(d.Microseconds())/1000))
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "draining"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.ready(ctx); err != nil {
		s.log.WarnContext(ctx, "not ready", slog.Any("err", err))
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "database unavailable"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// fallback answers paths no route matches: 405 when the path exists under
// another method, 404 otherwise, both in the error envelope.
func (s *Server) fallback(w http.ResponseWriter, r *http.Request) {
	// GET /{slug} on a company's link domain is a referral link.
	if slug := strings.TrimPrefix(r.URL.Path, "/"); (r.Method == http.MethodGet || r.Method == http.MethodHead) && slug != "" && !strings.Contains(slug, "/") &&
		program.ValidSlug(slug) && s.click(w, r, slug, true) {
		return
	}
	var allowed []string
	for _, m := range []string{"GET", "POST", "PATCH", "DELETE"} {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "/" && pattern != "" {
			allowed = append(allowed, m)
		}
	}
	if len(allowed) > 0 {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{Message: "method " + r.Method + " is not allowed here; use " + strings.Join(allowed, ", "), Status: http.StatusMethodNotAllowed})
		return
	}
	writeJSON(w, http.StatusNotFound, errorBody{Message: "Not Found: no such endpoint " + r.URL.Path, Status: http.StatusNotFound})
}

type principalKey struct{}

func principalOf(r *http.Request) program.Principal {
	p, _ := r.Context().Value(principalKey{}).(program.Principal)
	return p
}

type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// vendorOnly authenticates HTTP Basic (public key, secret key). A partner's
// Bearer token is refused with 401, as PartnerStack does.
func (s *Server) vendorOnly(h handlerFunc) http.Handler {
	return s.authenticate(h, false)
}

// vendorOrPartner accepts HTTP Basic or a partner's Bearer token.
func (s *Server) vendorOrPartner(h handlerFunc) http.Handler {
	return s.authenticate(h, true)
}

// selfAuthenticated serves a handler that checks its own credentials (a
// public key, a tracking token); like every handler, its errors answer in
// the error envelope.
func (s *Server) selfAuthenticated(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

func (s *Server) authenticate(h handlerFunc, partnerOK bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.principal(r, partnerOK)
		if err == nil {
			r = r.WithContext(context.WithValue(r.Context(), principalKey{}, p))
			err = h(w, r)
		}
		if err != nil {
			s.writeError(w, r, err)
		}
	})
}

func (s *Server) principal(r *http.Request, partnerOK bool) (program.Principal, error) {
	auth := r.Header.Get("Authorization")
	scheme, cred, _ := strings.Cut(auth, " ")
	switch {
	case strings.EqualFold(scheme, "Basic"):
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
		if err != nil {
			return program.Principal{}, errs.E(errs.Unauthorized, "Unauthorized: malformed Basic credentials")
		}
		pub, sec, ok := strings.Cut(string(raw), ":")
		if !ok {
			return program.Principal{}, errs.E(errs.Unauthorized, "Unauthorized: Basic credentials must be public_key:secret_key")
		}
		return s.program.AuthenticateKeys(r.Context(), pub, sec)
	case strings.EqualFold(scheme, "Bearer"):
		if !partnerOK {
			return program.Principal{}, errs.E(errs.Unauthorized, "Unauthorized: this endpoint needs HTTP Basic authentication with your public key and secret key")
		}
		return s.program.AuthenticatePartnerToken(r.Context(), strings.TrimSpace(cred))
	case auth == "":
		return program.Principal{}, errs.E(errs.Unauthorized, "Unauthorized: no credentials; use HTTP Basic with your public key and secret key")
	}
	return program.Principal{}, errs.E(errs.Unauthorized, "Unauthorized: unsupported authorization scheme")
}

// badURL explains what is wrong with a request's path or query, or returns "".
func badURL(r *http.Request) string {
	if strings.ContainsRune(r.URL.Path, 0) || !utf8.ValidString(r.URL.Path) {
		return "the request path contains NUL or invalid UTF-8"
	}
	if q := r.URL.RawQuery; q != "" {
		vals, err := url.ParseQuery(q)
		if err != nil {
			return "the query string is malformed"
		}
		for k, vs := range vals {
			for _, v := range append(vs, k) {
				if strings.ContainsRune(v, 0) || !utf8.ValidString(v) {
					return fmt.Sprintf("query parameter '%s' contains NUL or invalid UTF-8", strings.ToValidUTF8(strings.ReplaceAll(k, "\x00", ""), "?"))
				}
			}
		}
	}
	return ""
}
