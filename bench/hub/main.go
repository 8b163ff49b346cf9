// Command hub benchmarks the partner hub's sync: a local partnerd serves a
// program of N records (a fifth customers, the rest their transactions) to
// a partner token; the benchmark pages through every list the hub reads,
// GET and discard (the baseline: what the source and the network cost),
// then runs the real `partnerd hub sync` in a child process into a fresh
// database, and compares the two in the same run. It reports the child's
// peak memory, checks that the hub holds exactly the program's records, and
// counts the requests of a second, unchanged sync.
//
//	go run ./bench/hub [-db sqlite|postgres://...] [-sizes 10000,100000]
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/partnerd/partnerd/bench/loadgen"
	"github.com/partnerd/partnerd/internal/store"
)

var streams = []string{"partnerships", "customers", "transactions", "rewards", "payouts", "actions"}

func main() {
	sizes := flag.String("sizes", "10000,100000", "record counts to sync, comma-separated")
	f := loadgen.ParseFlags()
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 10 {
			fmt.Fprintln(os.Stderr, "bench: -sizes takes record counts of at least 10")
			os.Exit(2)
		}
		if err := run(f, n); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
	}
}

func run(f loadgen.Flags, n int) error {
	ctx := context.Background()
	b, err := loadgen.Build()
	if err != nil {
		return err
	}
	defer b.Close()
	src, err := loadgen.StartPartnerd(b.Bin, b.Dir, "sqlite", "")
	if err != nil {
		return err
	}
	defer src.Kill()
	token, err := seed(b, src, n)
	if err != nil {
		return err
	}

	raw, rawReqs, rawItems, err := rawFetch(src.Base+"/api/v2", token)
	if err != nil {
		return err
	}
	hubDB := f.DB
	if hubDB == "sqlite" {
		hubDB = filepath.Join(b.Dir, "hub.db")
	} else if err := loadgen.ResetDB(ctx, b.Dir, hubDB); err != nil {
		return err
	}
	// The politeness limits (10 requests a second by default) would make
	// this a measure of the limiter; they are raised for the comparison.
	// PostgreSQL has no key file beside it: the token is sealed with a key
	// of the run's.
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	env := append(os.Environ(), "PARTNERD_HUB_RATE=10000", "PARTNERD_HUB_GLOBAL_RATE=10000",
		"PARTNERD_SECRET_KEY="+base64.StdEncoding.EncodeToString(key))
	connect := exec.Command(b.Bin, "hub", "connect", "--db", hubDB, "--workspace", "Bench", "--name", "Program",
		"--token", token, "--base-url", src.Base+"/api/v2")
	connect.Env = env
	if out, err := connect.CombinedOutput(); err != nil {
		return fmt.Errorf("hub connect: %v: %s", err, out)
	}
	start := time.Now()
	cmd := exec.Command(b.Bin, "hub", "sync", "--db", hubDB)
	cmd.Env = env
	out, err := cmd.Output()
	took := time.Since(start)
	if err != nil {
		return fmt.Errorf("hub sync: %v: %s", err, out)
	}
	rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss // KiB on Linux
	syncReqs := requests(string(out))
	stored, err := count(ctx, hubDB)
	if err != nil {
		return err
	}
	if stored != rawItems {
		return fmt.Errorf("the hub holds %d records, the program serves %d", stored, rawItems)
	}
	second := exec.Command(b.Bin, "hub", "sync", "--db", hubDB)
	second.Env = env
	start2 := time.Now()
	again, err := second.Output()
	took2 := time.Since(start2)
	if err != nil {
		return fmt.Errorf("second hub sync: %v: %s", err, again)
	}
	// The report and the model read a workspace's records whole (they are
	// derived on read): how long that takes at this size.
	rep := exec.Command(b.Bin, "hub", "report", "--db", hubDB, "--workspace", "Bench", "--json")
	rep.Env = env
	start3 := time.Now()
	if out, err := rep.Output(); err != nil {
		return fmt.Errorf("hub report: %v: %s", err, out)
	}
	took3 := time.Since(start3)
	fmt.Printf("%d records (%d customers, %d transactions, 1 partnership), source partnerd on SQLite, hub on %s, 127.0.0.1\n",
		rawItems, n/5, n-n/5, loadgen.Engine(f.DB))
	fmt.Printf("  raw fetch (GET and discard) : %8.0f records/s  %6.2fs  %d requests\n", float64(rawItems)/raw.Seconds(), raw.Seconds(), rawReqs)
	fmt.Printf("  partnerd hub sync           : %8.0f records/s  %6.2fs  %d requests  peak RSS %.1f MiB\n",
		float64(stored)/took.Seconds(), took.Seconds(), syncReqs, float64(rss)/1024)
	fmt.Printf("  ratio                       : %8.3f  (target >= 0.7)\n", raw.Seconds()/took.Seconds())
	fmt.Printf("  unchanged re-sync           : %d requests (%s) in %.2fs\n", requests(string(again)), changes(string(again)), took2.Seconds())
	fmt.Printf("  partnerd hub report --json  : %.2fs\n", took3.Seconds())
	fmt.Printf("  at the default 10 requests/s a connection's first sync of these records takes at least %.0fs\n", float64(syncReqs)/10)
	return nil
}

// seed imports the program's records through the real CLI and returns a
// partner token.
func seed(b *loadgen.Bench, src *loadgen.Partnerd, n int) (string, error) {
	custs := n / 5
	files := map[string]string{"partners": "email,partner_key\nbench@partner.test,bench\n"}
	var sb strings.Builder
	sb.WriteString("customer_key,email,partner_key,created_at\n")
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	for i := 0; i < custs; i++ {
		fmt.Fprintf(&sb, "c%d,c%d@customer%d.test,bench,%d\n", i, i, i%500, base+int64(i))
	}
	files["customers"] = sb.String()
	sb.Reset()
	sb.WriteString("key,customer_key,amount,currency,created_at\n")
	for i := 0; i < n-custs; i++ {
		fmt.Fprintf(&sb, "t%d,c%d,%d,USD,%d\n", i, i%custs, 1000+i%900, base+int64(custs+i))
	}
	files["transactions"] = sb.String()
	for _, typ := range []string{"partners", "customers", "transactions"} {
		path := filepath.Join(b.Dir, typ+".csv")
		if err := os.WriteFile(path, []byte(files[typ]), 0o600); err != nil {
			return "", err
		}
		if out, err := exec.Command(b.Bin, "import", typ, path, "--db", src.DSN, "--company", src.CompanyKey, "--no-rewards").CombinedOutput(); err != nil {
			return "", fmt.Errorf("import %s: %v: %s", typ, err, out)
		}
	}
	out, err := exec.Command(b.Bin, "partner", "token", "--db", src.DSN, "--company", src.CompanyKey, "--partner-key", "bench").Output()
	if err != nil {
		return "", fmt.Errorf("partner token: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// rawFetch pages through every list as the hub does and discards it.
func rawFetch(base, token string) (took time.Duration, reqs, items int, err error) {
	client := &http.Client{Timeout: time.Minute}
	start := time.Now()
	keyRe := regexp.MustCompile(`"key":"([^"]+)"`)
	for _, s := range streams {
		after := ""
		for {
			url := base + "/" + s + "?limit=250&order_by=created_at&min_created=0"
			if s != "payouts" && s != "actions" {
				url += "&include_archived=true"
			}
			if after != "" {
				url += "&starting_after=" + after
			}
			req, _ := http.NewRequest("GET", url, nil)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := client.Do(req)
			if err != nil {
				return 0, 0, 0, err
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			reqs++
			if resp.StatusCode != 200 {
				return 0, 0, 0, fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, body)
			}
			// The cheapest reading that still pages: the last item's key (the
			// first "key" of each item, which comes first in every object)
			// and has_more.
			keys := itemKeys(body, keyRe)
			items += len(keys)
			if len(keys) == 0 || !strings.Contains(string(body), `"has_more":true`) {
				break
			}
			after = keys[len(keys)-1]
		}
	}
	return time.Since(start), reqs, items, nil
}

// itemKeys finds the items' own keys: each item object starts with "key".
func itemKeys(body []byte, keyRe *regexp.Regexp) []string {
	var out []string
	for _, m := range keyRe.FindAllSubmatchIndex(body, -1) {
		if m[0] >= 1 && body[m[0]-1] == '{' && (m[0] < 2 || body[m[0]-2] == '[' || body[m[0]-2] == ',') {
			out = append(out, string(body[m[2]:m[3]]))
		}
	}
	return out
}

var reqRe = regexp.MustCompile(`(\d+) requests`)

// requests adds up the "N requests" of hub sync's lines.
func requests(out string) int {
	total := 0
	for _, m := range reqRe.FindAllStringSubmatch(out, -1) {
		n, _ := strconv.Atoi(m[1])
		total += n
	}
	return total
}

var newRe = regexp.MustCompile(`(\d+) new,\s+(\d+) changed`)

// changes sums what a sync created and changed.
func changes(out string) string {
	created, changed := 0, 0
	for _, m := range newRe.FindAllStringSubmatch(out, -1) {
		a, _ := strconv.Atoi(m[1])
		b, _ := strconv.Atoi(m[2])
		created += a
		changed += b
	}
	return fmt.Sprintf("%d new, %d changed", created, changed)
}

func count(ctx context.Context, dsn string) (int, error) {
	db, err := store.Open(ctx, dsn)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var n int
	err = db.QueryRow(ctx, "SELECT COUNT(*) FROM hub_records WHERE deleted_at IS NULL").Scan(&n)
	return n, err
}
