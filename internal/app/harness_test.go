package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	apispec "github.com/partnerd/partnerd/api"
	"github.com/partnerd/partnerd/internal/app"
	"github.com/partnerd/partnerd/internal/clock"
	"github.com/partnerd/partnerd/internal/program"
	"github.com/partnerd/partnerd/internal/store/storetest"
)

// contract is api/openapi.yaml, loaded once; every response the tests get
// from a documented route is validated against it.
var contract struct {
	once   sync.Once
	router routers.Router
	err    error
}

func contractRouter(t testing.TB) routers.Router {
	contract.once.Do(func() {
		doc, err := openapi3.NewLoader().LoadFromData(apispec.OpenAPI)
		if err != nil {
			contract.err = err
			return
		}
		if err := doc.Validate(context.Background()); err != nil {
			contract.err = err
			return
		}
		contract.router, contract.err = gorillamux.NewRouter(doc)
	})
	if contract.err != nil {
		t.Fatalf("api/openapi.yaml: %v", contract.err)
	}
	return contract.router
}

// env is a real partnerd on 127.0.0.1 with a fresh database and one company.
type env struct {
	t       *testing.T
	base    string
	app     *app.App
	clock   *clock.Manual
	company program.NewCompany
	prod    auth
	test    auth
	logs    *syncBuffer
}

type auth struct{ header string }

func basic(pub, sec string) auth {
	r, _ := http.NewRequest("GET", "/", nil)
	r.SetBasicAuth(pub, sec)
	return auth{r.Header.Get("Authorization")}
}

func bearer(tok string) auth { return auth{"Bearer " + tok} }

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// engines runs fn once per available database engine.
func engines(t *testing.T, fn func(t *testing.T, e *env)) {
	for _, eng := range storetest.Engines(t) {
		eng := eng
		t.Run(eng.Name, func(t *testing.T) {
			t.Parallel()
			fn(t, start(t, eng.DSN(t)))
		})
	}
}

func start(t *testing.T, dsn string) *env {
	t.Helper()
	logs := &syncBuffer{}
	clk := clock.NewManual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	ctx, cancel := context.WithCancel(context.Background())
	cfg := app.Config{DB: dsn, Addr: "127.0.0.1:0", Clock: clk,
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if strings.HasPrefix(dsn, "postgres") {
		// PostgreSQL has no key file beside it; SQLite tests use the default one.
		cfg.SecretKey = bytes.Repeat([]byte{7}, 32)
	}
	a, err := app.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open app: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.ServeListener(ctx, ln, nil) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		a.Close()
	})
	c, err := a.Program.CreateCompany(context.Background(), "Acme", "https://acme.test")
	if err != nil {
		t.Fatalf("create company: %v", err)
	}
	return &env{t: t, base: "http://" + ln.Addr().String(), app: a, clock: clk, company: c, logs: logs,
		prod: basic(c.Production.PublicKey, c.Production.SecretKey), test: basic(c.Test.PublicKey, c.Test.SecretKey)}
}

// newCompany creates another company in the same database.
func (e *env) newCompany(name string) (program.NewCompany, auth) {
	c, err := e.app.Program.CreateCompany(context.Background(), name, "")
	if err != nil {
		e.t.Fatalf("create company: %v", err)
	}
	return c, basic(c.Production.PublicKey, c.Production.SecretKey)
}

// resp is a decoded response.
type resp struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

// data returns the envelope's data object.
func (r resp) data() map[string]any {
	d, _ := r.body["data"].(map[string]any)
	return d
}

// items returns a list response's items.
func (r resp) items() []map[string]any {
	var out []map[string]any
	for _, it := range r.data()["items"].([]any) {
		out = append(out, it.(map[string]any))
	}
	return out
}

func (r resp) keys() []string {
	var out []string
	for _, it := range r.items() {
		out = append(out, it["key"].(string))
	}
	return out
}

func (r resp) message() string { s, _ := r.body["message"].(string); return s }

// do sends a request, checks the envelope, and validates the response
// against the OpenAPI contract.
func (e *env) do(method, path string, a auth, body any) resp {
	e.t.Helper()
	var rd io.Reader
	var rawBody []byte
	switch b := body.(type) {
	case nil:
	case string:
		rawBody = []byte(b)
	case []byte:
		rawBody = b
	default:
		rawBody, _ = json.Marshal(b)
	}
	if rawBody != nil {
		rd = bytes.NewReader(rawBody)
	}
	req, err := http.NewRequest(method, e.base+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if a.header != "" {
		req.Header.Set("Authorization", a.header)
	}
	if rawBody != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hr, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer hr.Body.Close()
	out := resp{status: hr.StatusCode, header: hr.Header}
	out.raw, _ = io.ReadAll(hr.Body)
	if hr.StatusCode >= 500 {
		e.t.Fatalf("%s %s: server error %d: %s", method, path, hr.StatusCode, out.raw)
	}
	if err := json.Unmarshal(out.raw, &out.body); err != nil {
		e.t.Fatalf("%s %s: response is not a JSON object: %q", method, path, out.raw)
	}
	if st, ok := out.body["status"].(float64); !ok || int(st) != hr.StatusCode {
		e.t.Fatalf("%s %s: envelope status %v does not match HTTP %d", method, path, out.body["status"], hr.StatusCode)
	}
	e.validate(req, rawBody, out)
	return out
}

func (e *env) validate(req *http.Request, reqBody []byte, r resp) {
	e.t.Helper()
	router := contractRouter(e.t)
	vreq := req.Clone(context.Background())
	vreq.Body = io.NopCloser(bytes.NewReader(reqBody))
	route, params, err := router.FindRoute(vreq)
	if err != nil {
		if r.status == 404 || r.status == 405 {
			return // an undocumented path, answered as such
		}
		e.t.Fatalf("%s %s is not in api/openapi.yaml: %v", req.Method, req.URL.Path, err)
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route},
		Status:                 r.status,
		Header:                 r.header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true},
	}
	in.SetBodyBytes(r.raw)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		e.t.Fatalf("%s %s: response %d breaks api/openapi.yaml: %v\nbody: %s", req.Method, req.URL.Path, r.status, err, r.raw)
	}
}

// must sends a request and requires 200.
func (e *env) must(method, path string, a auth, body any) resp {
	e.t.Helper()
	r := e.do(method, path, a, body)
	if r.status != 200 {
		e.t.Fatalf("%s %s: want 200, got %d: %s", method, path, r.status, r.raw)
	}
	return r
}

// fails sends a request and requires status, with a message containing want.
func (e *env) fails(status int, want, method, path string, a auth, body any) resp {
	e.t.Helper()
	r := e.do(method, path, a, body)
	if r.status != status || !strings.Contains(r.message(), want) {
		e.t.Fatalf("%s %s: want %d with message containing %q, got %d: %s", method, path, status, want, r.status, r.raw)
	}
	return r
}

// count returns a list's total.
func (e *env) count(path string, a auth) int {
	e.t.Helper()
	r := e.must("GET", path, a, nil)
	return int(r.data()["total"].(float64))
}

// tick moves the clock so the next object gets a later created_at.
func (e *env) tick() { e.clock.Advance(time.Millisecond) }

func (e *env) partnership(email, partnerKey string) map[string]any {
	e.t.Helper()
	e.tick()
	return e.must("POST", "/api/v2/partnerships", e.prod, map[string]any{"email": email, "partner_key": partnerKey}).data()
}

func (e *env) customer(customerKey, email, partnerKey string) map[string]any {
	e.t.Helper()
	e.tick()
	return e.must("POST", "/api/v2/customers", e.prod, map[string]any{"customer_key": customerKey, "email": email, "partner_key": partnerKey}).data()
}
