// Command rewards benchmarks what the reward engine costs on the ingest
// path: POST /api/v2/transactions with three active transaction offers,
// against the same ingest with no offers, in the same run. Both sides are
// partnerd on a fresh database driven by the same load generator; the runs
// alternate (-rounds) so that drift on a shared machine hits both alike.
// After each run partnerd stops gracefully and the benchmark checks that
// every acknowledged transaction is stored with exactly the rewards its
// offers pay (three each, none without offers).
//
//	go run ./bench/rewards [-db sqlite|postgres://...] [-c 32] [-d 10s] [-rounds 2] [-offers all-pay|typical]
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

func main() {
	rounds := flag.Int("rounds", 2, "alternating runs of each side")
	mix := flag.String("offers", "all-pay", "all-pay: three offers that all pay on every transaction; typical: a revenue share for "+
		"everyone, a tier offer for another group and a sign-up bonus (one reward per transaction)")
	f := loadgen.ParseFlags()
	if *mix != "all-pay" && *mix != "typical" {
		fmt.Fprintln(os.Stderr, "bench: -offers must be all-pay or typical")
		os.Exit(2)
	}
	if err := run(f, *rounds, *mix); err != nil {
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
	mix      string // "" for no offers
	perTx    int64  // rewards each transaction must have
	served   float64
	secs     float64
	p99      []time.Duration
	rewarded int64
}

func (s *side) rps() float64 { return s.served / s.secs }

func run(f loadgen.Flags, rounds int, mix string) error {
	ctx := context.Background()
	b, err := loadgen.Build()
	if err != nil {
		return err
	}
	defer b.Close()
	dir, bin := b.Dir, b.Bin
	none := &side{name: "no offers"}
	three := &side{name: "3 active offers", mix: mix, perTx: 3}
	if mix == "typical" {
		three.perTx = 1
	}
	n := 0
	for r := 0; r < rounds; r++ {
		for _, s := range []*side{none, three} {
			n++
			if err := once(ctx, f, bin, dir, s, n); err != nil {
				return fmt.Errorf("%s, round %d: %w", s.name, r+1, err)
			}
		}
	}
	fmt.Printf("POST /api/v2/transactions, %d clients, %d customers, %d x %s per side, 127.0.0.1, %s, offers %s\n",
		f.Conc, customers, rounds, f.Dur, loadgen.Engine(f.DB), mix)
	for _, s := range []*side{none, three} {
		fmt.Printf("  partnerd, %-16s: %8.0f req/s  p99 per run %v  rewards written %d\n", s.name, s.rps(), s.p99, s.rewarded)
	}
	fmt.Printf("  ratio                    : %8.3f  (target >= 0.8)\n", three.rps()/none.rps())
	return nil
}

// once runs one side on a fresh database and checks what it stored.
func once(ctx context.Context, f loadgen.Flags, bin, dir string, s *side, n int) error {
	pd, err := loadgen.FreshPartnerd(ctx, bin, dir, f.DB)
	if err != nil {
		return err
	}
	defer pd.Kill() // on an error path; a no-op after Stop
	for c := 0; c < customers; c++ {
		if err := pd.Post("/api/v2/customers", fmt.Sprintf(`{"email":"c%d@customer.test","customer_key":"bench-customer-%d","partner_key":"bench"}`, c, c)); err != nil {
			return err
		}
	}
	if err := createOffers(pd, s.mix); err != nil {
		return err
	}
	res := loadgen.Run(f.Conc, f.Dur, 200, transactions(pd.Base, pd.Auth(), n), nil)
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
		s.perTx).Scan(&unpaired); err != nil {
		return err
	}
	if stored < res.OK {
		return fmt.Errorf("%d transactions acknowledged, only %d stored", res.OK, stored)
	}
	if unpaired > 0 || rewards != stored*s.perTx {
		return fmt.Errorf("%d transactions stored with %d rewards; %d of them without exactly %d rewards", stored, rewards, unpaired, s.perTx)
	}
	s.rewarded += rewards
	return nil
}

// createOffers sets up one side's offers: none, the three that all pay, or
// a typical program's three, of which one pays on the benchmark's
// transactions (the tier offer is for a group the partnership is not in,
// and the sign-up bonus is for customers, all created before the run).
func createOffers(pd *loadgen.Partnerd, mix string) error {
	var offers []string
	switch mix {
	case "all-pay":
		offers = loadgen.ThreeOffers
	case "typical":
		gold, err := pd.PostData("/api/v2/groups", `{"name":"Gold"}`)
		if err != nil {
			return err
		}
		offers = []string{
			loadgen.ThreeOffers[0],
			fmt.Sprintf(`{"name":"Gold tier","trigger":"transaction","type":"percent","rate":"30","group_key":%q}`, gold["key"]),
			`{"name":"Sign-up bonus","trigger":"customer","type":"flat","amount":2500,"currency":"USD"}`,
		}
	}
	for _, o := range offers {
		if err := pd.Post("/api/v2/offers", o); err != nil {
			return err
		}
	}
	return nil
}
