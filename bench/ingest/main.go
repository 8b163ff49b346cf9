// Command ingest benchmarks POST /api/v2/transactions over real HTTP on
// 127.0.0.1 against a bare net/http JSON handler driven by the same load
// generator in the same run, then kills partnerd with SIGKILL while requests
// are in flight and checks that every acknowledged transaction survived.
//
//	go run ./bench/ingest [-db sqlite|postgres://...] [-c 32] [-d 10s]
package main

import (
	"bytes"
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

func main() {
	bare := flag.Bool("bare-server", false, "internal: run the bare baseline server on -addr")
	addr := flag.String("addr", "", "internal: listen address for -bare-server")
	db := flag.String("db", "sqlite", "sqlite, or a postgres:// URL of an empty database")
	conc := flag.Int("c", 32, "concurrent clients")
	dur := flag.Duration("d", 10*time.Second, "duration of each measured run")
	flag.Parse()
	if *bare {
		runBare(*addr)
		return
	}
	if err := run(*db, *conc, *dur); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// runBare is the baseline: decode the JSON body, encode a JSON envelope.
func runBare(addr string) {
	http.HandleFunc("POST /api/v2/transactions", func(w http.ResponseWriter, r *http.Request) {
		var in map[string]any
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"data": in, "message": "ok", "status": 200})
	})
	_ = http.ListenAndServe(addr, nil)
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitUp(url string) error {
	for i := 0; i < 200; i++ {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("server at %s did not come up", url)
}

type result struct {
	ok        int64
	failed    int64
	rps       float64
	latencies []time.Duration
	acked     []string
}

// load drives POSTs from conc clients for dur, then calls atEnd (which may
// kill the server) while the clients are still sending, and collects the
// keys of every 2xx answer.
func load(base, auth string, conc int, dur time.Duration, atEnd func()) result {
	tr := &http.Transport{MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc, DisableCompression: true}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var stop atomic.Bool
	var mu sync.Mutex
	var res result
	var wg sync.WaitGroup
	var counted atomic.Int64
	start := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var lat []time.Duration
			var acked []string
			for i := 0; !stop.Load(); i++ {
				key := fmt.Sprintf("bench-%d-%d-%d", start.UnixNano(), w, i)
				body := fmt.Sprintf(`{"customer_external_key":"bench-customer","amount":%d,"currency":"USD","key":"%s","metadata":{"plan":"pro"}}`, 1000+i%500, key)
				req, _ := http.NewRequest("POST", base+"/api/v2/transactions", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				if auth != "" {
					req.Header.Set("Authorization", auth)
				}
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					atomic.AddInt64(&res.failed, 1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode/100 == 2 {
					lat = append(lat, time.Since(t0))
					acked = append(acked, key)
					counted.Add(1)
				} else {
					atomic.AddInt64(&res.failed, 1)
				}
			}
			mu.Lock()
			res.latencies = append(res.latencies, lat...)
			res.acked = append(res.acked, acked...)
			mu.Unlock()
		}(w)
	}
	time.Sleep(dur)
	n := counted.Load()
	res.rps = float64(n) / time.Since(start).Seconds()
	if atEnd != nil {
		atEnd()
	}
	stop.Store(true)
	wg.Wait()
	res.ok = int64(len(res.acked))
	tr.CloseIdleConnections()
	return res
}

func pct(l []time.Duration, p float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
	return l[int(float64(len(l)-1)*p)]
}

func run(dbArg string, conc int, dur time.Duration) error {
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "partnerd-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "partnerd")
	build := exec.Command("go", "build", "-o", bin, "./cmd/partnerd")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build partnerd (run from the repository root): %w", err)
	}
	self, _ := os.Executable()

	// Baseline.
	bareAddr := freeAddr()
	bareCmd := exec.Command(self, "-bare-server", "-addr", bareAddr)
	if err := bareCmd.Start(); err != nil {
		return err
	}
	if err := waitUp("http://" + bareAddr + "/"); err != nil {
		return err
	}
	bare := load("http://"+bareAddr, "", conc, dur, nil)
	_ = bareCmd.Process.Kill()
	_ = bareCmd.Wait()

	// partnerd.
	dsn := dbArg
	engine := "postgres"
	if dbArg == "sqlite" {
		dsn = filepath.Join(tmp, "bench.db")
		engine = "sqlite"
	}
	out, err := exec.Command(bin, "program", "create", "--db", dsn, "--name", "Bench", "--json").Output()
	if err != nil {
		return fmt.Errorf("program create: %w", err)
	}
	var keys struct {
		Production struct {
			PublicKey string `json:"public_key"`
			SecretKey string `json:"secret_key"`
		} `json:"production"`
	}
	if err := json.Unmarshal(out, &keys); err != nil {
		return fmt.Errorf("program create output: %w", err)
	}
	addr := freeAddr()
	srv := exec.Command(bin, "serve", "--db", dsn, "--addr", addr)
	if err := srv.Start(); err != nil {
		return err
	}
	base := "http://" + addr
	if err := waitUp(base + "/healthz"); err != nil {
		return err
	}
	req := func(method, path, body string) error {
		r, _ := http.NewRequest(method, base+path, bytes.NewBufferString(body))
		r.SetBasicAuth(keys.Production.PublicKey, keys.Production.SecretKey)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			b, _ := io.ReadAll(resp.Body)
			return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
		return nil
	}
	if err := req("POST", "/api/v2/partnerships", `{"email":"bench@partner.test","partner_key":"bench"}`); err != nil {
		return err
	}
	if err := req("POST", "/api/v2/customers", `{"email":"c@customer.test","customer_key":"bench-customer","partner_key":"bench"}`); err != nil {
		return err
	}
	auth := "Basic " + basic(keys.Production.PublicKey, keys.Production.SecretKey)
	pd := load(base, auth, conc, dur, func() {
		_ = srv.Process.Signal(syscall.SIGKILL) // with requests in flight
	})
	_ = srv.Wait()

	// Every acknowledged key must be in the database.
	dbh, err := store.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer dbh.Close()
	stored := map[string]bool{}
	rows, err := dbh.Query(ctx, "SELECT key FROM transactions")
	if err != nil {
		return err
	}
	for rows.Next() {
		var k string
		_ = rows.Scan(&k)
		stored[k] = true
	}
	rows.Close()
	missing := 0
	for _, k := range pd.acked {
		if !stored[k] {
			missing++
		}
	}

	ratio := pd.rps / bare.rps
	fmt.Printf("POST /api/v2/transactions, %d clients, %s per run, 127.0.0.1\n", conc, dur)
	fmt.Printf("  bare net/http JSON handler : %8.0f req/s  p50 %-9s p99 %s\n", bare.rps, pct(bare.latencies, .5), pct(bare.latencies, .99))
	fmt.Printf("  partnerd (%-8s)         : %8.0f req/s  p50 %-9s p99 %s\n", engine, pd.rps, pct(pd.latencies, .5), pct(pd.latencies, .99))
	fmt.Printf("  ratio                      : %8.3f  (target >= 0.15)\n", ratio)
	fmt.Printf("  kill -9 with requests in flight: %d acknowledged, %d missing after restart, %d stored in all\n", len(pd.acked), missing, len(stored))
	if missing > 0 {
		return errors.New("acknowledged transactions were lost")
	}
	return nil
}

func basic(u, p string) string {
	return base64.StdEncoding.EncodeToString([]byte(u + ":" + p))
}
