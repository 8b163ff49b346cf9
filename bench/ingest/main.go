// Command ingest benchmarks POST /api/v2/transactions over real HTTP on
// 127.0.0.1 against a bare net/http JSON handler driven by the same load
// generator in the same run, then kills partnerd with SIGKILL while requests
// are in flight and checks that every acknowledged transaction survived.
//
//	go run ./bench/ingest [-db sqlite|postgres://...] [-c 32] [-d 10s]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/partnerd/partnerd/bench/loadgen"
)

func main() {
	f := loadgen.ParseFlags()
	if f.Bare {
		// The baseline: decode the JSON body, encode a JSON envelope.
		http.HandleFunc("POST /api/v2/transactions", func(w http.ResponseWriter, r *http.Request) {
			var in map[string]any
			if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
				http.Error(w, err.Error(), 400)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"data": in, "message": "ok", "status": 200})
		})
		_ = http.ListenAndServe(f.Addr, nil)
		return
	}
	if err := run(f); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
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

func run(f loadgen.Flags) error {
	// The baseline needs no credentials: it checks none.
	unauthenticated := func(base string) func(w, i int) (*http.Request, string) { return transactions(base, "", time.Now()) }
	b, err := loadgen.Prepare(f, 200, unauthenticated)
	if err != nil {
		return err
	}
	defer b.Close()
	bare := b.Bare

	pd, err := loadgen.StartPartnerd(b.Bin, b.Dir, f.DB, "")
	if err != nil {
		return err
	}
	if err := pd.Post("/api/v2/partnerships", `{"email":"bench@partner.test","partner_key":"bench"}`); err != nil {
		return err
	}
	if err := pd.Post("/api/v2/customers", `{"email":"c@customer.test","customer_key":"bench-customer","partner_key":"bench"}`); err != nil {
		return err
	}
	res := loadgen.Run(f.Conc, f.Dur, 200, transactions(pd.Base, pd.Auth(), time.Now()), func() {
		_ = pd.Cmd.Process.Signal(syscall.SIGKILL) // with requests in flight
	})
	_ = pd.Cmd.Wait()

	// Every acknowledged key must be in the database.
	missing, stored, err := loadgen.Missing(context.Background(), pd.DSN, "SELECT key FROM transactions", res.Tags)
	if err != nil {
		return err
	}
	fmt.Printf("POST /api/v2/transactions, %d clients, %s per run, 127.0.0.1\n", f.Conc, f.Dur)
	fmt.Printf("  bare net/http JSON handler : %8.0f req/s  p50 %-9s p99 %s\n", bare.RPS, bare.Pct(.5), bare.Pct(.99))
	fmt.Printf("  partnerd (%-8s)         : %8.0f req/s  p50 %-9s p99 %s\n", pd.Engine, res.RPS, res.Pct(.5), res.Pct(.99))
	fmt.Printf("  ratio                      : %8.3f  (target >= 0.15)\n", res.RPS/bare.RPS)
	fmt.Printf("  kill -9 with requests in flight: %d acknowledged, %d missing after restart, %d stored in all\n", len(res.Tags), missing, stored)
	if missing > 0 {
		return errors.New("acknowledged transactions were lost")
	}
	return nil
}
