// Command redirect benchmarks GET /r/{slug} over real HTTP on 127.0.0.1
// against a bare net/http redirect handler driven by the same load
// generator in the same run. It then stops partnerd gracefully (SIGTERM)
// and checks that the stored clicks equal the redirects served.
//
//	go run ./bench/redirect [-db sqlite|postgres://...] [-c 32] [-d 10s]
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"

	"github.com/partnerd/partnerd/bench/loadgen"
	"github.com/partnerd/partnerd/internal/store"
)

func main() {
	f := loadgen.ParseFlags()
	if f.Bare {
		// The baseline: answer every slug with a 302 to a fixed destination.
		http.HandleFunc("GET /r/{slug}", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://www.vendor.test/landing?gspk=YmVuY2g&gsxid=aeRWhfbdq3aIjz", http.StatusFound)
		})
		_ = http.ListenAndServe(f.Addr, nil)
		return
	}
	if err := run(f); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func clicks(base string) func(w, i int) (*http.Request, string) {
	return func(w, i int) (*http.Request, string) {
		req, _ := http.NewRequest("GET", base+"/r/bench?sid=campaign-7", nil)
		req.Header.Set("User-Agent", "Mozilla/5.0 (bench)")
		req.Header.Set("Referer", "https://blog.example/post")
		return req, ""
	}
}

func run(f loadgen.Flags) error {
	b, err := loadgen.Prepare(f, http.StatusFound, clicks)
	if err != nil {
		return err
	}
	defer b.Close()
	bare := b.Bare

	pd, err := loadgen.StartPartnerd(b.Bin, b.Dir, f.DB, "https://www.vendor.test/landing")
	if err != nil {
		return err
	}
	if err := pd.Post("/api/v2/partnerships", `{"email":"bench@partner.test","partner_key":"bench"}`); err != nil {
		return err
	}
	res := loadgen.Run(f.Conc, f.Dur, http.StatusFound, clicks(pd.Base), nil)
	// Graceful stop: the server finishes what is in flight and writes its
	// click buffer before exiting.
	if err := pd.Stop(); err != nil {
		return err
	}
	ctx := context.Background()
	dbh, err := store.Open(ctx, pd.DSN)
	if err != nil {
		return err
	}
	defer dbh.Close()
	var stored int64
	if err := dbh.QueryRow(ctx, "SELECT COUNT(*) FROM clicks").Scan(&stored); err != nil {
		return err
	}
	fmt.Printf("GET /r/{slug}, %d clients, %s per run, 127.0.0.1\n", f.Conc, f.Dur)
	fmt.Printf("  bare net/http redirect     : %8.0f req/s  p50 %-9s p99 %s\n", bare.RPS, bare.Pct(.5), bare.Pct(.99))
	fmt.Printf("  partnerd (%-8s)         : %8.0f req/s  p50 %-9s p99 %s\n", pd.Engine, res.RPS, res.Pct(.5), res.Pct(.99))
	fmt.Printf("  ratio                      : %8.3f  (target >= 0.6)\n", res.RPS/bare.RPS)
	fmt.Printf("  after graceful shutdown    : %d redirects served, %d clicks stored\n", res.OK, stored)
	if stored != res.OK {
		return errors.New("stored clicks differ from redirects served")
	}
	return nil
}
