// Command pipeline benchmarks what the reward engine costs when deals are
// won: POST /api/v2/deals at a won stage (a CRM pushing closed deals) with
// two active deal_won offers, against the same requests with no offers, in
// the same run. Both sides are partnerd on a fresh database driven by the
// same load generator, alternating (-rounds) so that drift on a shared
// machine hits both alike. After each run partnerd stops gracefully and
// the benchmark checks that every acknowledged deal is stored with its
// history entry and exactly the rewards its offers pay (two each, none
// without offers). It then times paging through the deals, each page with
// its items' history, against paging through as many customers.
//
//	go run ./bench/pipeline [-db sqlite|postgres://...] [-c 32] [-d 10s] [-rounds 2]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/partnerd/partnerd/bench/loadgen"
	"github.com/partnerd/partnerd/internal/store"
)

func main() {
	rounds := flag.Int("rounds", 2, "alternating runs of each side")
	f := loadgen.ParseFlags()
	if err := run(f, *rounds); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// dealWonOffers pay on every benchmark deal: a share of its amount and a
// flat bonus with a hold.
var dealWonOffers = []string{
	`{"name":"Co-sell share","trigger":"deal_won","type":"percent","rate":"10"}`,
	`{"name":"Win bonus","trigger":"deal_won","type":"flat","amount":25000,"currency":"USD","hold_days":30}`,
}

func deals(base, auth string, run int) func(w, i int) (*http.Request, string) {
	return func(w, i int) (*http.Request, string) {
		key := fmt.Sprintf("crm-%d-%d-%d", run, w, i)
		body := fmt.Sprintf(`{"partner_key":"bench","external_key":"%s","account_name":"Account %d","amount":%d,"currency":"USD",
			"stage":"closed won","contact_first_name":"Pat","contact_last_name":"Lee","meta":{"region":"emea"}}`, key, i, 100000+i%5000)
		req, _ := http.NewRequest("POST", base+"/api/v2/deals", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", auth)
		return req, key
	}
}

type side struct {
	name     string
	offers   []string
	perDeal  int64
	served   float64
	secs     float64
	p99      []time.Duration
	rewarded int64
	dealPage []time.Duration // time to page through every deal, 250 a page
	custPage []time.Duration // the same number of customers
}

func (s *side) rps() float64 { return s.served / s.secs }

func run(f loadgen.Flags, rounds int) error {
	ctx := context.Background()
	b, err := loadgen.Build()
	if err != nil {
		return err
	}
	defer b.Close()
	none := &side{name: "no offers"}
	two := &side{name: "2 deal_won offers", offers: dealWonOffers, perDeal: 2}
	n := 0
	for r := 0; r < rounds; r++ {
		for _, s := range []*side{none, two} {
			n++
			if err := once(ctx, f, b.Bin, b.Dir, s, n); err != nil {
				return fmt.Errorf("%s, round %d: %w", s.name, r+1, err)
			}
		}
	}
	fmt.Printf("POST /api/v2/deals at a won stage, %d clients, %d x %s per side, 127.0.0.1, %s\n", f.Conc, rounds, f.Dur, loadgen.Engine(f.DB))
	for _, s := range []*side{none, two} {
		fmt.Printf("  partnerd, %-18s: %8.0f req/s  p99 per run %v  rewards written %d\n", s.name, s.rps(), s.p99, s.rewarded)
	}
	fmt.Printf("  ratio                      : %8.3f\n", two.rps()/none.rps())
	fmt.Printf("paging every deal (with history) vs as many customers, 250 a page, per run: deals %v, customers %v\n",
		append(none.dealPage, two.dealPage...), append(none.custPage, two.custPage...))
	return nil
}

// once runs one side on a fresh database and checks what it stored.
func once(ctx context.Context, f loadgen.Flags, bin, dir string, s *side, n int) error {
	pd, err := loadgen.FreshPartnerd(ctx, bin, dir, f.DB)
	if err != nil {
		return err
	}
	defer pd.Kill() // on an error path; a no-op after Stop
	for _, o := range s.offers {
		if err := pd.Post("/api/v2/offers", o); err != nil {
			return err
		}
	}
	res := loadgen.Run(f.Conc, f.Dur, 200, deals(pd.Base, pd.Auth(), n), nil)
	if res.Failed > 0 {
		return fmt.Errorf("%d requests failed", res.Failed)
	}
	s.served += res.RPS * f.Dur.Seconds()
	s.secs += f.Dur.Seconds()
	s.p99 = append(s.p99, res.Pct(.99).Round(100*time.Microsecond))

	// Reads: page through every deal, then through as many customers.
	total, took, err := pageAll(pd, "/api/v2/deals")
	if err != nil {
		return err
	}
	if total < res.OK {
		return fmt.Errorf("%d deals acknowledged, %d listed", res.OK, total)
	}
	s.dealPage = append(s.dealPage, took.Round(time.Millisecond))
	for c := int64(0); c < total; c++ {
		if err := pd.Post("/api/v2/customers", fmt.Sprintf(`{"email":"c%d@customer.test","customer_key":"c-%d","partner_key":"bench"}`, c, c)); err != nil {
			return err
		}
	}
	if _, took, err = pageAll(pd, "/api/v2/customers"); err != nil {
		return err
	}
	s.custPage = append(s.custPage, took.Round(time.Millisecond))
	if err := pd.Stop(); err != nil {
		return err
	}

	// Every acknowledged deal is stored with its history and its rewards.
	dbh, err := store.Open(ctx, pd.DSN)
	if err != nil {
		return err
	}
	defer dbh.Close()
	missing, stored, err := loadgen.Missing(ctx, pd.DSN, "SELECT external_key FROM deals", res.Tags)
	if err != nil {
		return err
	}
	if missing > 0 {
		return fmt.Errorf("%d of %d acknowledged deals are not stored", missing, res.OK)
	}
	var history, rewards, unpaired int64
	if err := dbh.QueryRow(ctx, "SELECT COUNT(*) FROM pipeline_history WHERE object_kind = 'deal'").Scan(&history); err != nil {
		return err
	}
	if err := dbh.QueryRow(ctx, "SELECT COUNT(*) FROM rewards").Scan(&rewards); err != nil {
		return err
	}
	if err := dbh.QueryRow(ctx, `SELECT COUNT(*) FROM deals d WHERE (SELECT COUNT(*) FROM rewards r WHERE r.deal_id = d.id) <> ?`,
		s.perDeal).Scan(&unpaired); err != nil {
		return err
	}
	if history != int64(stored) || unpaired > 0 || rewards != int64(stored)*s.perDeal {
		return fmt.Errorf("%d deals stored with %d history entries and %d rewards; %d without exactly %d rewards",
			stored, history, rewards, unpaired, s.perDeal)
	}
	s.rewarded += rewards
	return nil
}

// pageAll reads a whole list, 250 items a page, and returns its total and
// how long the pages took.
func pageAll(pd *loadgen.Partnerd, path string) (int64, time.Duration, error) {
	start := time.Now()
	var total int64
	after := ""
	for {
		url := pd.Base + path + "?limit=250&order_by=created_at"
		if after != "" {
			url += "&starting_after=" + after
		}
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", pd.Auth())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, 0, err
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return 0, 0, fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, raw)
		}
		var page struct {
			Data struct {
				HasMore bool             `json:"has_more"`
				Total   int64            `json:"total"`
				Items   []map[string]any `json:"items"`
			} `json:"data"`
		}
		if err := json.Unmarshal(raw, &page); err != nil {
			return 0, 0, err
		}
		total = page.Data.Total
		if len(page.Data.Items) == 0 || !page.Data.HasMore {
			return total, time.Since(start), nil
		}
		after, _ = page.Data.Items[len(page.Data.Items)-1]["key"].(string)
	}
}
