// Package loadgen is the load generator the benchmarks share, so partnerd
// and each baseline are driven exactly the same way in the same run.
package loadgen

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/partnerd/partnerd/internal/store"
)

// BuildPartnerd builds the partnerd binary into dir (run from the
// repository root) and returns its path.
func BuildPartnerd(dir string) (string, error) {
	bin := filepath.Join(dir, "partnerd")
	build := exec.Command("go", "build", "-o", bin, "./cmd/partnerd")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("build partnerd (run from the repository root): %w", err)
	}
	return bin, nil
}

// FreeAddr returns a free 127.0.0.1 address.
func FreeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// WaitUp waits until url answers.
func WaitUp(url string) error {
	for i := 0; i < 200; i++ {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("server at %s did not come up", url)
}

// Result is what a load run saw.
type Result struct {
	OK        int64 // responses with the wanted status
	Failed    int64
	RPS       float64 // wanted responses per second during the measured time
	Latencies []time.Duration
	Tags      []string // the tag of every wanted response
}

// Pct returns the p-th latency (0..1).
func (r Result) Pct(p float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	sort.Slice(r.Latencies, func(i, j int) bool { return r.Latencies[i] < r.Latencies[j] })
	return r.Latencies[int(float64(len(r.Latencies)-1)*p)]
}

// Run drives requests from conc keep-alive clients for dur. next builds
// request i of worker w and a tag for it; a response with status want counts
// as served and its tag is kept. atEnd, if set, runs after dur while the
// clients are still sending (to kill a server mid-load, say).
func Run(conc int, dur time.Duration, want int, next func(w, i int) (*http.Request, string), atEnd func()) Result {
	tr := &http.Transport{MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc, DisableCompression: true}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var stop atomic.Bool
	var counted, failed atomic.Int64
	var mu sync.Mutex
	var res Result
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var lat []time.Duration
			var tags []string
			for i := 0; !stop.Load(); i++ {
				req, tag := next(w, i)
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != want {
					failed.Add(1)
					continue
				}
				lat = append(lat, time.Since(t0))
				tags = append(tags, tag)
				counted.Add(1)
			}
			mu.Lock()
			res.Latencies = append(res.Latencies, lat...)
			res.Tags = append(res.Tags, tags...)
			mu.Unlock()
		}(w)
	}
	time.Sleep(dur)
	res.RPS = float64(counted.Load()) / time.Since(start).Seconds()
	if atEnd != nil {
		atEnd()
	}
	stop.Store(true)
	wg.Wait()
	res.OK = int64(len(res.Tags))
	res.Failed = failed.Load()
	tr.CloseIdleConnections()
	return res
}

// Flags are the command-line flags every benchmark takes.
type Flags struct {
	Bare bool          // internal: run the baseline server instead
	Addr string        // internal: the baseline's listen address
	DB   string        // "sqlite", or a postgres:// URL of an empty database
	Conc int           // concurrent clients
	Dur  time.Duration // duration of each measured run
}

// ParseFlags registers and parses the standard benchmark flags.
func ParseFlags() Flags {
	var f Flags
	flag.BoolVar(&f.Bare, "bare-server", false, "internal: run the bare baseline server on -addr")
	flag.StringVar(&f.Addr, "addr", "", "internal: listen address for -bare-server")
	flag.StringVar(&f.DB, "db", "sqlite", "sqlite, or a postgres:// URL of an empty database")
	flag.IntVar(&f.Conc, "c", 32, "concurrent clients")
	flag.DurationVar(&f.Dur, "d", 10*time.Second, "duration of each measured run")
	flag.Parse()
	return f
}

// StartBare runs this benchmark binary again as its baseline server
// (-bare-server) on a free address and returns its base URL and a stop.
func StartBare() (string, func(), error) {
	self, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	addr := FreeAddr()
	cmd := exec.Command(self, "-bare-server", "-addr", addr)
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	if err := WaitUp("http://" + addr + "/"); err != nil {
		stop()
		return "", nil, err
	}
	return "http://" + addr, stop, nil
}

// Partnerd is a partnerd server started as a child process, with one
// company, so that a benchmark can kill or stop it as an operator would.
type Partnerd struct {
	Base       string
	DSN        string
	Engine     string
	CompanyKey string
	PublicKey  string
	SecretKey  string
	Cmd        *exec.Cmd
	stopped    bool
}

// StartPartnerd creates a company (with website, if given) in a fresh
// database and serves it. dbArg is "sqlite" (a file in dir) or a URL.
func StartPartnerd(bin, dir, dbArg, website string) (*Partnerd, error) {
	p := &Partnerd{DSN: dbArg, Engine: "postgres"}
	if dbArg == "sqlite" {
		p.DSN, p.Engine = filepath.Join(dir, "bench.db"), "sqlite"
	}
	args := []string{"program", "create", "--db", p.DSN, "--name", "Bench", "--json"}
	if website != "" {
		args = append(args, "--website", website)
	}
	out, err := exec.Command(bin, args...).Output()
	if err != nil {
		return nil, fmt.Errorf("program create: %w", err)
	}
	var keys struct {
		CompanyKey string `json:"company_key"`
		Production struct {
			PublicKey string `json:"public_key"`
			SecretKey string `json:"secret_key"`
		} `json:"production"`
	}
	if err := json.Unmarshal(out, &keys); err != nil {
		return nil, fmt.Errorf("program create output: %w", err)
	}
	p.CompanyKey, p.PublicKey, p.SecretKey = keys.CompanyKey, keys.Production.PublicKey, keys.Production.SecretKey
	addr := FreeAddr()
	p.Cmd = exec.Command(bin, "serve", "--db", p.DSN, "--addr", addr)
	if err := p.Cmd.Start(); err != nil {
		return nil, err
	}
	p.Base = "http://" + addr
	if err := WaitUp(p.Base + "/healthz"); err != nil {
		return nil, err
	}
	return p, nil
}

// Auth is the Authorization header of the company's production keys.
func (p *Partnerd) Auth() string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(p.PublicKey+":"+p.SecretKey))
}

// Post sends a JSON body with the company's keys and requires 200.
func (p *Partnerd) Post(path, body string) error {
	_, err := p.PostData(path, body)
	return err
}

// PostData is Post returning the response's data object.
func (p *Partnerd) PostData(path, body string) (map[string]any, error) {
	req, _ := http.NewRequest("POST", p.Base+path, strings.NewReader(body))
	req.Header.Set("Authorization", p.Auth())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("POST %s: %d %s", path, resp.StatusCode, b)
	}
	var env struct {
		Data map[string]any `json:"data"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, fmt.Errorf("POST %s: %w", path, err)
	}
	return env.Data, nil
}

// Bench is a benchmark's working set: a temp dir with a freshly built
// partnerd, and the baseline's figures measured in the same run.
type Bench struct {
	Dir  string
	Bin  string
	Bare Result
}

// Prepare builds partnerd into a temp dir and measures the baseline
// (this binary run with -bare-server) with next for f.Dur. Call Close when
// done.
func Prepare(f Flags, want int, next func(base string) func(w, i int) (*http.Request, string)) (*Bench, error) {
	b, err := Build()
	if err != nil {
		return nil, err
	}
	base, stop, err := StartBare()
	if err != nil {
		b.Close()
		return nil, err
	}
	b.Bare = Run(f.Conc, f.Dur, want, next(base), nil)
	stop()
	return b, nil
}

// Build makes a temp dir with a freshly built partnerd, for benchmarks
// whose baseline is partnerd itself. Call Close when done.
func Build() (*Bench, error) {
	dir, err := os.MkdirTemp("", "partnerd-bench-")
	if err != nil {
		return nil, err
	}
	b := &Bench{Dir: dir}
	if b.Bin, err = BuildPartnerd(dir); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// Close removes the working directory.
func (b *Bench) Close() { os.RemoveAll(b.Dir) }

// ResetDB empties the benchmark database so the next StartPartnerd begins
// from nothing: the SQLite file in dir is removed, a PostgreSQL database
// gets a new empty public schema.
func ResetDB(ctx context.Context, dir, dbArg string) error {
	if dbArg == "sqlite" {
		for _, suffix := range []string{"", "-wal", "-shm"} {
			if err := os.Remove(filepath.Join(dir, "bench.db"+suffix)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("remove the benchmark database: %w", err)
			}
		}
		return nil
	}
	db, err := store.Open(ctx, dbArg)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.Exec(ctx, "DROP SCHEMA IF EXISTS public CASCADE"); err != nil {
		return fmt.Errorf("reset the benchmark database: %w", err)
	}
	if _, err := db.Exec(ctx, "CREATE SCHEMA public"); err != nil {
		return fmt.Errorf("reset the benchmark database: %w", err)
	}
	return nil
}

// Stop shuts partnerd down gracefully (SIGTERM) and waits for it.
func (p *Partnerd) Stop() error {
	p.stopped = true
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("stop partnerd: %w", err)
	}
	if err := p.Cmd.Wait(); err != nil {
		return fmt.Errorf("partnerd exited badly: %w", err)
	}
	return nil
}

// ThreeOffers are three active transaction offers that all pay on every
// benchmark transaction in USD within a year of the customer's first: a
// lifetime revenue share, a first-year bonus (which needs the customer's
// first payment) and a flat fee with a hold.
var ThreeOffers = []string{
	`{"name":"Revenue share","trigger":"transaction","type":"percent","rate":"20"}`,
	`{"name":"First-year bonus","trigger":"transaction","type":"percent","rate":"5","duration_months":12}`,
	`{"name":"Per payment","trigger":"transaction","type":"flat","amount":100,"currency":"USD","hold_days":30}`,
}

// Engine names the engine of a -db flag value.
func Engine(db string) string {
	if db == "sqlite" {
		return "sqlite"
	}
	return "postgres"
}

// Missing opens the database at dsn and counts the tags that column (one
// text column of one table, e.g. "SELECT key FROM transactions") does not
// hold: acknowledged writes that were lost. It also returns how many rows
// there are in all.
func Missing(ctx context.Context, dsn, query string, tags []string) (missing, stored int, err error) {
	db, err := store.Open(ctx, dsn)
	if err != nil {
		return 0, 0, err
	}
	defer db.Close()
	rows, err := db.Query(ctx, query)
	if err != nil {
		return 0, 0, err
	}
	have := map[string]bool{}
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			rows.Close()
			return 0, 0, err
		}
		have[k] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, 0, err
	}
	for _, t := range tags {
		if !have[t] {
			missing++
		}
	}
	return missing, len(have), nil
}

// Kill ends partnerd at once unless Stop already ran, for benchmarks'
// error paths.
func (p *Partnerd) Kill() {
	if p.stopped {
		return
	}
	p.stopped = true
	_ = p.Cmd.Process.Kill()
	_ = p.Cmd.Wait()
}

// FreshPartnerd serves a company in an emptied benchmark database (see
// ResetDB) with the partnership "bench" every benchmark posts for, for the
// benchmarks that compare partnerd with itself run after run.
func FreshPartnerd(ctx context.Context, bin, dir, dbArg string) (*Partnerd, error) {
	if err := ResetDB(ctx, dir, dbArg); err != nil {
		return nil, err
	}
	pd, err := StartPartnerd(bin, dir, dbArg, "")
	if err != nil {
		return nil, err
	}
	if err := pd.Post("/api/v2/partnerships", `{"email":"bench@partner.test","partner_key":"bench"}`); err != nil {
		pd.Kill()
		return nil, err
	}
	return pd, nil
}
