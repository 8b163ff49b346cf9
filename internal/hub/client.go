package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// ErrInvalidCredentials is matched (errors.Is) when the source refused the
// connection's credentials (401 or 403): retrying cannot help.
var ErrInvalidCredentials = errors.New("hub: the source refused the credentials")

// ErrRefused is matched (errors.Is) when the source refused a request as
// malformed (400, 404, 422): trying the same request again cannot help,
// though another (without a cursor that vanished, say) may.
var ErrRefused = errors.New("hub: the source refused the request")

// errReadOnly is what the transport answers a request that is not a GET.
var errReadOnly = errors.New("hub: the client is read-only and sends GET requests only")

// readOnly is the client's transport: it refuses every method but GET
// before anything leaves the process, so no code path of the hub can
// write to a source.
type readOnly struct{ next http.RoundTripper }

func (t readOnly) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodGet {
		return nil, fmt.Errorf("%w (refused %s %s)", errReadOnly, r.Method, r.URL.Path)
	}
	return t.next.RoundTrip(r)
}

// Limits bound how hard the hub presses a source.
type Limits struct {
	PerConnection rate.Limit // requests per second to one connection
	Burst         int
	MaxAttempts   int           // tries of one request (429, 5xx, network errors)
	BackoffBase   time.Duration // first backoff ceiling; doubles per try (full jitter)
	BackoffMax    time.Duration // largest backoff ceiling
	MaxRetryAfter time.Duration // the longest Retry-After honoured as given
	Timeout       time.Duration // one request
}

// DefaultLimits stay well under PartnerStack's reported 4,000 requests per
// minute per IP: 10 per second per connection (600 a minute), 30 across
// all of a node's connections (the global limiter).
var DefaultLimits = Limits{PerConnection: 10, Burst: 5, MaxAttempts: 6, BackoffBase: 500 * time.Millisecond,
	BackoffMax: 30 * time.Second, MaxRetryAfter: 5 * time.Minute, Timeout: 30 * time.Second}

// Client reads one connection's source: a PartnerStack-compatible v2 API.
type Client struct {
	base   string // e.g. https://api.partnerstack.com/api/v2
	auth   string // the Authorization header
	http   *http.Client
	limit  *rate.Limiter
	global *rate.Limiter
	limits Limits
	sent   atomic.Int64 // requests sent, retries included
}

// NewClient returns a client for base with the given Authorization header.
// global, shared by every client of a node, may be nil.
func NewClient(base, auth string, limits Limits, global *rate.Limiter, transport http.RoundTripper) *Client {
	if transport == nil {
		transport = http.DefaultTransport
	}
	return &Client{base: strings.TrimRight(base, "/"), auth: auth, limits: limits, global: global,
		http:  &http.Client{Transport: readOnly{transport}, Timeout: limits.Timeout},
		limit: rate.NewLimiter(limits.PerConnection, limits.Burst)}
}

// Page is one page of a list.
type Page struct {
	Items   []json.RawMessage
	HasMore bool
	Total   *int64
}

// List reads one page of the list at path (e.g. "/rewards") with the
// query q, retrying what can be retried.
func (c *Client) List(ctx context.Context, path string, q url.Values) (Page, error) {
	var body struct {
		Data struct {
			Items   []json.RawMessage `json:"items"`
			HasMore *bool             `json:"has_more"`
			Total   *int64            `json:"total"`
		} `json:"data"`
	}
	raw, err := c.get(ctx, path, q)
	if err != nil {
		return Page{}, err
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		return Page{}, fmt.Errorf("GET %s: the answer is not a list envelope: %w", path, err)
	}
	if body.Data.HasMore == nil {
		return Page{}, fmt.Errorf("GET %s: the answer has no data.has_more", path)
	}
	return Page{Items: body.Data.Items, HasMore: *body.Data.HasMore, Total: body.Data.Total}, nil
}

// get sends GET base+path?q and returns the body of a 2xx answer.
func (c *Client) get(ctx context.Context, path string, q url.Values) ([]byte, error) {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var lastErr error
	for attempt := 0; attempt < c.limits.MaxAttempts; attempt++ {
		if attempt > 0 {
			if err := sleep(ctx, c.backoff(attempt, lastErr)); err != nil {
				return nil, err
			}
		}
		if err := c.wait(ctx); err != nil {
			return nil, err
		}
		body, retry, err := c.once(ctx, u)
		if err == nil {
			return body, nil
		}
		if !retry {
			return nil, err
		}
		lastErr = err
	}
	return nil, fmt.Errorf("GET %s: gave up after %d tries: %w", path, c.limits.MaxAttempts, lastErr)
}

func (c *Client) wait(ctx context.Context) error {
	if c.global != nil {
		if err := c.global.Wait(ctx); err != nil {
			return err
		}
	}
	return c.limit.Wait(ctx)
}

// retryAfter is an error that carries the source's Retry-After.
type retryAfter struct {
	err   error
	after time.Duration
}

func (r retryAfter) Error() string { return r.err.Error() }
func (r retryAfter) Unwrap() error { return r.err }

// once makes one request. retry tells whether trying again can help.
func (c *Client) once(ctx context.Context, u string) (body []byte, retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, false, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Authorization", c.auth)
	req.Header.Set("Accept", "application/json")
	c.sent.Add(1)
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil || errors.Is(err, errReadOnly) {
			return nil, false, err
		}
		return nil, true, fmt.Errorf("GET %s: %w", req.URL.Path, err) // network error or timeout
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, true, fmt.Errorf("GET %s: read the answer: %w", req.URL.Path, err)
	}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return body, false, nil
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return nil, false, fmt.Errorf("%w: GET %s answered %d: %s", ErrInvalidCredentials, req.URL.Path, resp.StatusCode, message(body))
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		err := fmt.Errorf("GET %s answered %d: %s", req.URL.Path, resp.StatusCode, message(body))
		if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			return nil, true, retryAfter{err, d}
		}
		return nil, true, err
	}
	return nil, false, fmt.Errorf("%w: GET %s answered %d: %s", ErrRefused, req.URL.Path, resp.StatusCode, message(body))
}

// backoff is how long to wait before try number attempt (1-based): the
// source's Retry-After when it gave one, else a full-jitter exponential.
func (c *Client) backoff(attempt int, last error) time.Duration {
	var ra retryAfter
	if errors.As(last, &ra) {
		return min(ra.after, c.limits.MaxRetryAfter)
	}
	ceiling := c.limits.BackoffBase << (attempt - 1)
	if ceiling > c.limits.BackoffMax || ceiling <= 0 {
		ceiling = c.limits.BackoffMax
	}
	return time.Duration(rand.Int64N(int64(ceiling) + 1))
}

// parseRetryAfter reads a Retry-After header: seconds, or an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d, true
		}
		return 0, true
	}
	return 0, false
}

// message is what an error body says, for an error message: its
// "message" when it is PartnerStack's envelope, else its start.
func message(body []byte) string {
	var env struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &env) == nil && env.Message != "" {
		return env.Message
	}
	s := strings.TrimSpace(string(body))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
