// Command rewards benchmarks what the reward engine costs on the ingest
// path: POST /api/v2/transactions with three active transaction offers,
// against the same ingest with no offers, in the same run. Both sides are
// partnerd on a fresh database driven by the same load generator; the runs
// alternate (-rounds) so that drift on a shared machine hits both alike.
// After each run partnerd stops gracefully and the benchmark checks that
// every acknowledged transaction is stored with exactly the rewards its
// offers pay (three each, none without offers).
//
//	go run ./bench/rewards [-db sqlite|postgres://...] [-c 32] [-d 10s] [-rounds 2]
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/partnerd/partnerd/bench/loadgen"
	"github.com/partnerd/partnerd/internal/store"
)

// customers is how many customers the transactions are spread over, so
// that each has a realistic history (a few dozen payments per run) rather
// than one customer with every transaction.
const customers = 1000

// offers are three active transaction offers that all pay on every
// benchmark transaction: a lifetime revenue share, a first-year bonus (which
// needs the customer's first transaction) and a flat fee with a hold.
var offers = []string{
	`{"name":"Revenue share","trigger":"transaction","type":"percent","rate":"20"}`,
	`{"name":"First-year bonus","trigger":"transaction","type":"percent","rate":"5","duration_months":12}`,
	`{"name":"Per payment","trigger":"transaction","type":"flat","amount":100,"currency":"USD","hold_days":30}`,
}

func main() {
	rounds := flag.Int("rounds", 2, "alternating runs of each side")
	f := loadgen.ParseFlags()
	if err := run(f, *rounds); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func transactions(base, auth string, run int) func(w, i int) (*http.Request, string) {
	return func(w, i int) (*http.Request, string) {
		key := fmt.Sprintf("bench-%d-%d-%d", run, w, i)
		cust := (w*7919 + i) % customers
		body := fmt.Sprintf(`{"customer_external_key":"bench-customer-%d","amount":%d,"currency":"USD","key":"%s","product_key":"pro","metadata":{"plan":"pro"}}`,
			cust, 1000+i%500, key)
		req, _ := http.NewRequest("POST", base+"/api/v2/transactions", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", auth)
		return req, key
	}
}

// side is one side of the comparison, summed over its rounds.
type side struct {
	name     string
	offers   int
	served   float64
	secs     float64
	p99      []time.Duration
	rewarded int64
}

func (s *side) rps() float64 { return s.served / s.secs }

func run(f loadgen.Flags, rounds int) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "partnerd-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin, err := loadgen.BuildPartnerd(dir)
	if err != nil {
		return err
	}
	none := &side{name: "no offers", offers: 0}
	three := &side{name: "3 active offers", offers: len(offers)}
	n := 0
	for r := 0; r < rounds; r++ {
		for _, s := range []*side{none, three} {
			n++
			if err := once(ctx, f, bin, dir, s, n); err != nil {
				return fmt.Errorf("%s, round %d: %w", s.name, r+1, err)
			}
		}
	}
	fmt.Printf("POST /api/v2/transactions, %d clients, %d customers, %d x %s per side, 127.0.0.1, %s\n",
		f.Conc, customers, rounds, f.Dur, engine(f.DB))
	for _, s := range []*side{none, three} {
		fmt.Printf("  partnerd, %-16s: %8.0f req/s  p99 per run %v  rewards written %d\n", s.name, s.rps(), s.p99, s.rewarded)
	}
	fmt.Printf("  ratio                    : %8.3f  (target >= 0.8)\n", three.rps()/none.rps())
	return nil
}

func engine(db string) string {
	if db == "sqlite" {
		return "sqlite"
	}
	return "postgres"
}

// once runs one side on a fresh database and checks what it stored.
func once(ctx context.Context, f loadgen.Flags, bin, dir string, s *side, n int) error {
	if err := loadgen.ResetDB(ctx, dir, f.DB); err != nil {
		return err
	}
	pd, err := loadgen.StartPartnerd(bin, dir, f.DB, "")
	if err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = pd.Cmd.Process.Kill()
			_ = pd.Cmd.Wait()
		}
	}()
	if err := pd.Post("/api/v2/partnerships", `{"email":"bench@partner.test","partner_key":"bench"}`); err != nil {
		return err
	}
	for c := 0; c < customers; c++ {
		if err := pd.Post("/api/v2/customers", fmt.Sprintf(`{"email":"c%d@customer.test","customer_key":"bench-customer-%d","partner_key":"bench"}`, c, c)); err != nil {
			return err
		}
	}
	for _, o := range offers[:s.offers] {
		if err := pd.Post("/api/v2/offers", o); err != nil {
			return err
		}
	}
	res := loadgen.Run(f.Conc, f.Dur, 200, transactions(pd.Base, pd.Auth(), n), nil)
	stopped = true
	if err := pd.Stop(); err != nil {
		return err
	}
	if res.Failed > 0 {
		return fmt.Errorf("%d requests failed", res.Failed)
	}
	s.served += res.RPS * f.Dur.Seconds()
	s.secs += f.Dur.Seconds()
	s.p99 = append(s.p99, res.Pct(.99).Round(100*time.Microsecond))

	// Every acknowledged transaction is stored, each with one reward per offer.
	dbh, err := store.Open(ctx, pd.DSN)
	if err != nil {
		return err
	}
	defer dbh.Close()
	var stored, rewards, unpaired int64
	if err := dbh.QueryRow(ctx, "SELECT COUNT(*) FROM transactions").Scan(&stored); err != nil {
		return err
	}
	if err := dbh.QueryRow(ctx, "SELECT COUNT(*) FROM rewards").Scan(&rewards); err != nil {
		return err
	}
	if err := dbh.QueryRow(ctx, `SELECT COUNT(*) FROM transactions t WHERE (SELECT COUNT(*) FROM rewards r WHERE r.transaction_id = t.id) <> ?`,
		s.offers).Scan(&unpaired); err != nil {
		return err
	}
	if stored < res.OK {
		return fmt.Errorf("%d transactions acknowledged, only %d stored", res.OK, stored)
	}
	if unpaired > 0 || rewards != stored*int64(s.offers) {
		return fmt.Errorf("%d transactions stored with %d rewards; %d of them without exactly %d rewards", stored, rewards, unpaired, s.offers)
	}
	s.rewarded += rewards
	return nil
}
