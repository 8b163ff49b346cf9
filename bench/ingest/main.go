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
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/partnerd/partnerd/bench/loadgen"
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

func transactions(base, auth string, start time.Time) func(w, i int) (*http.Request, string) {
	return func(w, i int) (*http.Request, string) {
		key := fmt.Sprintf("bench-%d-%d-%d", start.UnixNano(), w, i)
		body := fmt.Sprintf(`{"customer_external_key":"bench-customer","amount":%d,"currency":"USD","key":"%s","metadata":{"plan":"pro"}}`, 1000+i%500, key)
		req, _ := http.NewRequest("POST", base+"/api/v2/transactions", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		return req, key
	}
}

func run(dbArg string, conc int, dur time.Duration) error {
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "partnerd-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin, err := loadgen.BuildPartnerd(tmp)
	if err != nil {
		return err
	}
	self, _ := os.Executable()

	// Baseline.
	bareAddr := loadgen.FreeAddr()
	bareCmd := exec.Command(self, "-bare-server", "-addr", bareAddr)
	if err := bareCmd.Start(); err != nil {
		return err
	}
	if err := loadgen.WaitUp("http://" + bareAddr + "/"); err != nil {
		return err
	}
	bare := loadgen.Run(conc, dur, 200, transactions("http://"+bareAddr, "", time.Now()), nil)
	_ = bareCmd.Process.Kill()
	_ = bareCmd.Wait()

	// partnerd.
	dsn, engine := dbArg, "postgres"
	if dbArg == "sqlite" {
		dsn, engine = filepath.Join(tmp, "bench.db"), "sqlite"
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
	addr := loadgen.FreeAddr()
	srv := exec.Command(bin, "serve", "--db", dsn, "--addr", addr)
	if err := srv.Start(); err != nil {
		return err
	}
	base := "http://" + addr
	if err := loadgen.WaitUp(base + "/healthz"); err != nil {
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
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(keys.Production.PublicKey+":"+keys.Production.SecretKey))
	pd := loadgen.Run(conc, dur, 200, transactions(base, auth, time.Now()), func() {
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
	for _, k := range pd.Tags {
		if !stored[k] {
			missing++
		}
	}
	fmt.Printf("POST /api/v2/transactions, %d clients, %s per run, 127.0.0.1\n", conc, dur)
	fmt.Printf("  bare net/http JSON handler : %8.0f req/s  p50 %-9s p99 %s\n", bare.RPS, bare.Pct(.5), bare.Pct(.99))
	fmt.Printf("  partnerd (%-8s)         : %8.0f req/s  p50 %-9s p99 %s\n", engine, pd.RPS, pd.Pct(.5), pd.Pct(.99))
	fmt.Printf("  ratio                      : %8.3f  (target >= 0.15)\n", pd.RPS/bare.RPS)
	fmt.Printf("  kill -9 with requests in flight: %d acknowledged, %d missing after restart, %d stored in all\n", len(pd.Tags), missing, len(stored))
	if missing > 0 {
		return errors.New("acknowledged transactions were lost")
	}
	return nil
}
