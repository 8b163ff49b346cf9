// Command web measures the server time of the web app's main pages on
// the demo's data scaled up (`partnerd demo --scale N`): every page of the
// vendor dashboard, the partner portal and the agency hub, requested
// one after another, with the server's own time read from its
// Server-Timing header. The baseline, measured the same way in the same
// run, is the log-in page: a template and no data.
//
//	go run ./bench/web -scale 20 [-db postgres://…] [-keep DIR] [-n 40]
//
// Seeding at scale 20 (about a million payments) takes many minutes; -keep
// keeps the seeded SQLite database in DIR and uses it again next time.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/partnerd/partnerd/bench/loadgen"
)

func main() {
	scale := flag.Int("scale", 20, "the demo's scale (1: about 47,000 payments)")
	db := flag.String("db", "sqlite", "sqlite, or a postgres:// URL of a database that is empty or already holds the demo")
	keep := flag.String("keep", "", "with SQLite: keep the seeded database in this directory and use it again")
	n := flag.Int("n", 40, "requests of each page")
	flag.Parse()
	if err := run(*scale, *db, *keep, *n); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(scale int, db, keep string, n int) error {
	b, err := loadgen.Build()
	if err != nil {
		return err
	}
	defer b.Close()
	dsn := db
	if db == "sqlite" {
		dir := b.Dir
		if keep != "" {
			dir = keep
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
		}
		dsn = filepath.Join(dir, fmt.Sprintf("demo-scale%d.db", scale))
	}
	addr := loadgen.FreeAddr()
	cmd := exec.Command(b.Bin, "demo", "--db", dsn, "--addr", addr, "--scale", strconv.Itoa(scale))
	if db != "sqlite" {
		// PostgreSQL has no key file beside it: a fixed key, so that a
		// database seeded by an earlier run opens its hub token again.
		cmd.Env = append(os.Environ(), "PARTNERD_SECRET_KEY=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = os.Stderr
	began := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	}()
	base, partner, err := waitRunning(out)
	if err != nil {
		return err
	}
	fmt.Printf("demo at scale %d on %s, ready in %s\n", scale, loadgen.Engine(db), time.Since(began).Round(time.Second))

	vendor, err := login(base, "/login", "owner@acme-analytics.example")
	if err != nil {
		return err
	}
	// The rollups and the hub's first sync run in the background after
	// start; the pages are measured once both are done.
	if err := waitFor(func() bool { return !strings.Contains(get(vendor, base+"/app"), "being computed") }, 30*time.Minute); err != nil {
		return fmt.Errorf("the rollups: %w", err)
	}
	agency, err := login(base, "/login", "agency@northwind.example")
	if err != nil {
		return err
	}
	if err := waitFor(func() bool {
		page := get(agency, base+"/hub")
		return !strings.Contains(page, "not yet") && !strings.Contains(page, "(syncing)")
	}, 30*time.Minute); err != nil {
		return fmt.Errorf("the hub's first sync: %w", err)
	}
	portal, err := login(base, "/portal/login", partner)
	if err != nil {
		return err
	}
	anon := &http.Client{}

	// Cursors and keys for the deeper pages.
	firstTx := firstMatch(get(vendor, base+"/app/transactions"), `explain=([A-Za-z0-9_]+)`)
	topPartner := firstMatch(get(vendor, base+"/app"), `href="/app/partners/([A-Za-z0-9_]+)"`)
	partners := allMatches(get(vendor, base+"/app/partners"), `href="/app/partners/([A-Za-z0-9_]+)"`)
	smallPartner := topPartner
	if len(partners) > 0 {
		smallPartner = partners[len(partners)-1]
	}
	nextCustomers := firstMatch(get(vendor, base+"/app/customers"), `href="(/app/customers\?after=[^"]+)" rel="next"`)

	pages := []struct {
		who  string
		c    *http.Client
		path string
	}{
		{"baseline", anon, "/login"},
		{"vendor", vendor, "/app"},
		{"vendor", vendor, "/app/partners"},
		{"vendor", vendor, "/app/partners/" + topPartner},
		{"vendor", vendor, "/app/partners/" + smallPartner},
		{"vendor", vendor, "/app/customers"},
		{"vendor", vendor, strings.ReplaceAll(nextCustomers, "&amp;", "&")},
		{"vendor", vendor, "/app/customers?email=nobody%40nowhere.example"},
		{"vendor", vendor, "/app/transactions"},
		{"vendor", vendor, "/app/transactions?explain=" + firstTx},
		{"vendor", vendor, "/app/rewards"},
		{"vendor", vendor, "/app/rewards?status=pending"},
		{"vendor", vendor, "/app/rewards?status=declined"},
		{"vendor", vendor, "/app/payouts"},
		{"partner", portal, "/portal"},
		{"partner", portal, "/portal/customers"},
		{"partner", portal, "/portal/rewards"},
		{"partner", portal, "/portal/payouts"},
		{"partner", portal, "/portal/tokens"},
		{"agency", agency, "/hub"},
		{"agency", agency, "/hub/report"},
		{"agency", agency, "/hub/missed"},
		{"agency", agency, "/hub/referrals"},
		{"agency", agency, "/hub/accounts"},
		{"agency", agency, "/hub/programs"},
		{"agency", agency, "/hub/contacts"},
		{"agency", agency, "/hub/deals"},
		{"vendor", vendor, "/app/offers"},
		{"vendor", vendor, "/app/imports"},
		{"vendor", vendor, "/app/billing"},
		{"vendor", vendor, "/app/webhooks"},
		{"vendor", vendor, "/app/developers"},
	}
	// A first pass views every page once, timed apart: a first view
	// builds what the server caches for the page (the hub's views take
	// seconds at scale 20, after each sync), and the demo is still
	// building them when its sync ends. The timed views that follow
	// measure the pages as they are served from then on.
	first := map[string]float64{}
	for _, p := range pages {
		if ms, err := serverTime(p.c, base+p.path); err == nil {
			first[p.path] = ms
		}
	}
	fmt.Printf("%-8s %-52s %9s %9s %9s %9s\n", "who", "page", "first ms", "p50 ms", "p95 ms", "max ms")
	worst := 0.0
	for _, p := range pages {
		if p.path == "" || strings.HasSuffix(p.path, "/") || strings.HasSuffix(p.path, "=") {
			fmt.Printf("%-8s %-52s (no such page in this data)\n", p.who, p.path)
			continue
		}
		times := make([]float64, 0, n)
		for i := 0; i < n; i++ {
			ms, err := serverTime(p.c, base+p.path)
			if err != nil {
				return fmt.Errorf("%s: %w", p.path, err)
			}
			times = append(times, ms)
		}
		sort.Float64s(times)
		p95 := times[(len(times)*95+99)/100-1]
		if p.who != "baseline" {
			worst = max(worst, p95)
		}
		fmt.Printf("%-8s %-52s %9.1f %9.1f %9.1f %9.1f\n", p.who, p.path, first[p.path], times[len(times)/2], p95, times[len(times)-1])
	}
	fmt.Printf("slowest p95 of a main page: %.1f ms (target < 100 ms)\n", worst)
	return nil
}

var running = regexp.MustCompile(`partnerd demo is running at (http://\S+)`)
var partnerLogin = regexp.MustCompile(`(\S+@partners\.example) / `)

// waitRunning reads the demo's output until it prints its URL and the
// partner's login; the rest of the output is passed through.
func waitRunning(r io.Reader) (base, partner string, err error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		fmt.Println("  |", line)
		if m := running.FindStringSubmatch(line); m != nil {
			base = m[1]
		}
		if m := partnerLogin.FindStringSubmatch(line); m != nil {
			partner = m[1]
		}
		if base != "" && partner != "" {
			go func() { _, _ = io.Copy(io.Discard, r) }()
			return base, partner, nil
		}
	}
	return "", "", fmt.Errorf("the demo stopped before it served: %v", sc.Err())
}

func login(base, path, email string) (*http.Client, error) {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 5 * time.Minute}
	form := get(c, base+path)
	token := firstMatch(form, `name="csrf" value="([^"]+)"`)
	res, err := c.PostForm(base+path, url.Values{"csrf": {token}, "email": {email}, "password": {"partnerd-demo"}})
	if err != nil {
		return nil, err
	}
	res.Body.Close()
	if res.Request.URL.Path == path {
		return nil, fmt.Errorf("log-in as %s failed: %d", email, res.StatusCode)
	}
	return c, nil
}

func get(c *http.Client, u string) string {
	res, err := c.Get(u)
	if err != nil {
		return ""
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

// serverTime requests a page and returns the server's time for it.
func serverTime(c *http.Client, u string) (float64, error) {
	res, err := c.Get(u)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		return 0, fmt.Errorf("status %d", res.StatusCode)
	}
	st := res.Header.Get("Server-Timing")
	i := strings.Index(st, "dur=")
	if i < 0 {
		return 0, fmt.Errorf("no Server-Timing header")
	}
	return strconv.ParseFloat(st[i+4:], 64)
}

func waitFor(cond func() bool, limit time.Duration) error {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(2 * time.Second) {
		if cond() {
			return nil
		}
	}
	return fmt.Errorf("not done after %s", limit)
}

func firstMatch(s, re string) string {
	if m := regexp.MustCompile(re).FindStringSubmatch(s); m != nil {
		return m[1]
	}
	return ""
}

func allMatches(s, re string) []string {
	var out []string
	for _, m := range regexp.MustCompile(re).FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	return out
}
