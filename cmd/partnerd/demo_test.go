package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// startDemo runs `partnerd demo` until the test ends and returns its URL
// and what it printed.
func startDemo(t *testing.T, db string) (string, *lockedBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &lockedBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"demo", "--db", db, "--addr", "127.0.0.1:0", "--partners", "12", "--customers", "400"}, out, io.Discard)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("demo: %v", err)
		}
	})
	running := regexp.MustCompile(`partnerd demo is running at (http://127\.0\.0\.1:\d+)`)
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if m := running.FindStringSubmatch(out.String()); m != nil {
			return m[1], out
		}
		select {
		case err := <-done:
			t.Fatalf("demo stopped: %v\n%s", err, out)
		default:
		}
	}
	t.Fatalf("demo did not start:\n%s", out)
	return "", nil
}

// logIn logs in through a page's form and returns a client holding the session.
func logIn(t *testing.T, base, path, email, password string) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	res, err := c.Get(base + path)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("no log-in form at %s", path)
	}
	res, err = c.PostForm(base+path, url.Values{"csrf": {string(m[1])}, "email": {email}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.Request.URL.Path == path {
		t.Fatalf("log-in as %s: %d at %s", email, res.StatusCode, res.Request.URL)
	}
	return c
}

func get(t *testing.T, c *http.Client, u string) string {
	t.Helper()
	res, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		t.Fatalf("GET %s: %d", u, res.StatusCode)
	}
	return string(b)
}

func TestDemoSeedsServesAndSyncsItsHub(t *testing.T) {
	db := filepath.Join(t.TempDir(), "demo.db")
	base, out := startDemo(t, db)
	printed := out.String()
	for _, want := range []string{"seeded 12 partners, 400 customers", demoVendor + " / " + demoPassword, demoAgency + " / " + demoPassword, "/portal/login"} {
		if !strings.Contains(printed, want) {
			t.Fatalf("the demo did not print %q:\n%s", want, printed)
		}
	}
	partner := regexp.MustCompile(`(\S+@partners\.example) / `).FindStringSubmatch(printed)
	if partner == nil {
		t.Fatalf("no partner login printed:\n%s", printed)
	}

	// The vendor sees a year of data: payouts paid, rewards of every kind.
	v := logIn(t, base, "/login", demoVendor, demoPassword)
	if page := get(t, v, base+"/app/payouts?status=paid"); !strings.Contains(page, `class="tag paid"`) {
		t.Fatal("the demo has no paid payouts")
	}
	for _, status := range []string{"approved", "declined", "paid", "pending"} {
		if page := get(t, v, base+"/app/rewards?status="+status); !strings.Contains(page, `class="tag `+status+`"`) {
			t.Fatalf("the demo has no %s rewards", status)
		}
	}
	if page := get(t, v, base+"/app/transactions"); !strings.Contains(page, "USD") {
		t.Fatal("the demo has no transactions")
	}
	// The partner's portal, and the agency's hub once its first sync ran.
	p := logIn(t, base, "/portal/login", partner[1], demoPassword)
	if page := get(t, p, base+"/portal"); !strings.Contains(page, "/r/") {
		t.Fatal("the partner portal shows no link")
	}
	a := logIn(t, base, "/login", demoAgency, demoPassword)
	synced := false
	for deadline := time.Now().Add(time.Minute); !synced && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		page := get(t, a, base+"/hub")
		synced = strings.Contains(page, demoConnection) && !strings.Contains(page, "not yet") && strings.Contains(page, `class="tag active"`)
	}
	if !synced {
		t.Fatal("the agency's connection did not sync")
	}
	if page := get(t, a, base+"/hub/referrals"); !strings.Contains(page, "Acme Analytics") {
		t.Fatal("the hub shows no referral")
	}
}
