package hub

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// No method but GET ever leaves the client, whoever holds it.
func TestClientSendsGETOnly(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.Method != http.MethodGet {
			t.Errorf("the source received %s %s", r.Method, r.URL.Path)
		}
		w.Write([]byte(`{"data":{"items":[],"has_more":false,"total":0},"message":"","status":200}`))
	}))
	defer srv.Close()
	c := NewClient(srv.URL, "Bearer t", DefaultLimits, nil, nil)
	for _, m := range []string{"POST", "PUT", "PATCH", "DELETE", "HEAD"} {
		req, _ := http.NewRequest(m, srv.URL+"/rewards", strings.NewReader("{}"))
		if _, err := c.http.Do(req); !errors.Is(err, errReadOnly) {
			t.Fatalf("%s: %v, want the read-only refusal", m, err)
		}
	}
	if hits.Load() != 0 {
		t.Fatalf("%d requests reached the source", hits.Load())
	}
	if _, err := c.List(context.Background(), "/rewards", url.Values{"limit": {"1"}}); err != nil || hits.Load() != 1 {
		t.Fatalf("GET: %v (%d hits)", err, hits.Load())
	}
}

func TestRetriesHonourRetryAfterAndStopOnCredentials(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch n := calls.Add(1); {
		case r.URL.Path == "/denied":
			w.WriteHeader(401)
			w.Write([]byte(`{"message":"Unauthorized","status":401}`))
		case n == 1:
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(429)
		case n == 2:
			w.WriteHeader(502)
		default:
			w.Write([]byte(`{"data":{"items":[{"key":"a"}],"has_more":false},"status":200}`))
		}
	}))
	defer srv.Close()
	limits := DefaultLimits
	limits.BackoffBase = time.Millisecond
	c := NewClient(srv.URL, "Bearer t", limits, nil, nil)
	start := time.Now()
	p, err := c.List(context.Background(), "/rewards", nil)
	if err != nil || len(p.Items) != 1 || calls.Load() != 3 {
		t.Fatalf("after a 429 and a 502: %v %v (%d calls)", p, err, calls.Load())
	}
	if waited := time.Since(start); waited < time.Second {
		t.Fatalf("Retry-After: 1 was not honoured (waited %v)", waited)
	}
	before := calls.Load()
	if _, err := c.List(context.Background(), "/denied", nil); !errors.Is(err, ErrInvalidCredentials) || calls.Load() != before+1 {
		t.Fatalf("401: %v after %d calls; want one call and ErrInvalidCredentials", err, calls.Load()-before)
	}
	if d, ok := parseRetryAfter(time.Now().Add(90*time.Second).UTC().Format(http.TimeFormat), time.Now()); !ok || d < 80*time.Second {
		t.Fatalf("Retry-After as an HTTP date: %v %v", d, ok)
	}
}
