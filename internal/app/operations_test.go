package app_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apispec "github.com/partnerd/partnerd/api"
	"github.com/partnerd/partnerd/internal/app"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestOperationsEndpoints(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		for _, path := range []string{"/healthz", "/readyz"} {
			if code, body := get(t, e.base+path); code != 200 || strings.TrimSpace(body) != `{"status":"ok"}` {
				t.Fatalf("%s: %d %s", path, code, body)
			}
		}
		e.must("GET", "/api/v2/partnerships", e.prod, nil)
		code, body := get(t, e.base+"/metrics")
		if code != 200 || !strings.Contains(body, `partnerd_http_requests_total{code="200",method="GET",route="GET /api/v2/partnerships"}`) ||
			!strings.Contains(body, "partnerd_http_request_duration_seconds_bucket") {
			t.Fatalf("/metrics: %d\n%.2000s", code, body)
		}
		code, body = get(t, e.base+"/api/openapi.yaml")
		if code != 200 || body != string(apispec.OpenAPI) {
			t.Fatalf("/api/openapi.yaml: %d", code)
		}
		// Draining: readiness fails so a load balancer moves away.
		e.app.API.Drain()
		if code, body := get(t, e.base+"/readyz"); code != 503 || !strings.Contains(body, "draining") {
			t.Fatalf("draining /readyz: %d %s", code, body)
		}
		if code, _ := get(t, e.base+"/healthz"); code != 200 {
			t.Fatalf("draining /healthz: %d (liveness must not fail while draining)", code)
		}
	})
}

// TestLogsCarryNoSecrets drives requests carrying every kind of secret and
// checks the structured log has the requests but none of the secrets.
func TestLogsCarryNoSecrets(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		tok, err := e.app.Program.CreatePartnerToken(context.Background(), e.company.Key, "gstest")
		if err != nil {
			t.Fatal(err)
		}
		e.must("GET", "/api/v2/customers", e.prod, nil)
		e.must("GET", "/api/v2/customers", e.test, nil)
		e.must("GET", "/api/v2/customers", bearer(tok), nil)
		e.do("GET", "/api/v2/customers", basic(e.company.Production.PublicKey, "sk_guess_that_is_wrong"), nil)
		e.do("POST", "/api/v2/customers", e.prod, map[string]any{"customer_key": "s", "email": "secret-person@x.test", "partner_key": "gstest"})
		logs := e.logs.String()
		if !strings.Contains(logs, `"route":"GET /api/v2/customers"`) || !strings.Contains(logs, `"status":401`) {
			t.Fatalf("requests are not logged:\n%s", logs)
		}
		for _, s := range []string{e.company.Production.SecretKey, e.company.Test.SecretKey, tok, "sk_guess_that_is_wrong",
			e.prod.header, strings.TrimPrefix(e.prod.header, "Basic "), "secret-person@x.test"} {
			if strings.Contains(logs, s) {
				t.Fatalf("log contains a secret or personal data %q", s)
			}
		}
	})
}

// TestGracefulShutdownFinishesInFlightRequests starts a request, begins the
// shutdown while its body is still arriving, then finishes the body: the
// request must complete with 200 and its transaction must be stored.
func TestGracefulShutdownFinishesInFlightRequests(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dsn := filepath.Join(t.TempDir(), "g.db")
	a, err := app.Open(ctx, app.Config{DB: dsn, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	c, _ := a.Program.CreateCompany(ctx, "G", "")
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	done := make(chan error, 1)
	go func() { done <- a.ServeListener(ctx, ln, nil) }()
	e := &env{t: t, base: "http://" + ln.Addr().String(), app: a, prod: basic(c.Production.PublicKey, c.Production.SecretKey)}
	e.must("POST", "/api/v2/customers", e.prod, map[string]any{"customer_key": "g1", "email": "g1@x.test", "partner_key": "gstest"})

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"customer_key":"g1","amount":777,"currency":"USD","key":"in-flight-1"}`
	fmt.Fprintf(conn, "POST /api/v2/transactions HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		e.prod.header, len(body), body[:20])
	time.Sleep(100 * time.Millisecond) // the server has the headers and part of the body
	cancel()                           // begin graceful shutdown
	time.Sleep(100 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("server stopped with a request in flight: %v", err)
	default:
	}
	if _, err := io.WriteString(conn, body[20:]); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("in-flight request got no response: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"key":"in-flight-1"`) {
		t.Fatalf("in-flight request: %d %s", resp.StatusCode, b)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("server did not stop after the in-flight request finished")
	}
	var n int
	if err := a.DB.QueryRow(context.Background(), "SELECT COUNT(*) FROM transactions WHERE key = 'in-flight-1'").Scan(&n); err != nil || n != 1 {
		t.Fatalf("in-flight transaction stored %d times (%v)", n, err)
	}
	// New connections are refused once it has stopped.
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Fatal("server still accepts connections after shutdown")
	}
}
