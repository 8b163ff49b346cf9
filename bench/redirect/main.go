// Command redirect benchmarks GET /r/{slug} over real HTTP on 127.0.0.1
// against a bare net/http redirect handler driven by the same load
// generator in the same run. It then stops partnerd gracefully (SIGTERM)
// and checks that the stored clicks equal the redirects served.
//
//	go run ./bench/redirect [-db sqlite|postgres://...] [-c 32] [-d 10s]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
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
		// The baseline: answer every slug with a 302 to a fixed destination.
		http.HandleFunc("GET /r/{slug}", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://www.vendor.test/landing?gspk=YmVuY2g&gsxid=aeRWhfbdq3aIjz", http.StatusFound)
		})
		_ = http.ListenAndServe(*addr, nil)
		return
	}
	if err := run(*db, *conc, *dur); err != nil {
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

func run(dbArg string, conc int, dur time.Duration) error {
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

	bareAddr := loadgen.FreeAddr()
	bareCmd := exec.Command(self, "-bare-server", "-addr", bareAddr)
	if err := bareCmd.Start(); err != nil {
		return err
	}
	if err := loadgen.WaitUp("http://" + bareAddr + "/"); err != nil {
		return err
	}
	bare := loadgen.Run(conc, dur, http.StatusFound, clicks("http://"+bareAddr), nil)
	_ = bareCmd.Process.Kill()
	_ = bareCmd.Wait()

	dsn, engine := dbArg, "postgres"
	if dbArg == "sqlite" {
		dsn, engine = filepath.Join(tmp, "bench.db"), "sqlite"
	}
	out, err := exec.Command(bin, "program", "create", "--db", dsn, "--name", "Bench", "--website", "https://www.vendor.test/landing", "--json").Output()
	if err != nil {
		return fmt.Errorf("program create: %w", err)
	}
	var keys struct {
		CompanyKey string `json:"company_key"`
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
	srv.Stderr = nil
	if err := srv.Start(); err != nil {
		return err
	}
	base := "http://" + addr
	if err := loadgen.WaitUp(base + "/healthz"); err != nil {
		return err
	}
	r, _ := http.NewRequest("POST", base+"/api/v2/partnerships", strings.NewReader(`{"email":"bench@partner.test","partner_key":"bench"}`))
	r.SetBasicAuth(keys.Production.PublicKey, keys.Production.SecretKey)
	if resp, err := http.DefaultClient.Do(r); err != nil || resp.StatusCode != 200 {
		return fmt.Errorf("create partnership: %v %v", err, resp)
	}
	pd := loadgen.Run(conc, dur, http.StatusFound, clicks(base), nil)
	// Graceful stop: the server finishes what is in flight and writes its
	// click buffer before exiting.
	_ = srv.Process.Signal(syscall.SIGTERM)
	if err := srv.Wait(); err != nil {
		return fmt.Errorf("partnerd did not stop cleanly: %w", err)
	}
	ctx := context.Background()
	dbh, err := store.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer dbh.Close()
	var stored int64
	if err := dbh.QueryRow(ctx, "SELECT COUNT(*) FROM clicks").Scan(&stored); err != nil {
		return err
	}
	fmt.Printf("GET /r/{slug}, %d clients, %s per run, 127.0.0.1\n", conc, dur)
	fmt.Printf("  bare net/http redirect     : %8.0f req/s  p50 %-9s p99 %s\n", bare.RPS, bare.Pct(.5), bare.Pct(.99))
	fmt.Printf("  partnerd (%-8s)         : %8.0f req/s  p50 %-9s p99 %s\n", engine, pd.RPS, pd.Pct(.5), pd.Pct(.99))
	fmt.Printf("  ratio                      : %8.3f  (target >= 0.6)\n", pd.RPS/bare.RPS)
	fmt.Printf("  after graceful shutdown    : %d redirects served, %d clicks stored\n", pd.OK, stored)
	if stored != pd.OK {
		return errors.New("stored clicks differ from redirects served")
	}
	return nil
}
