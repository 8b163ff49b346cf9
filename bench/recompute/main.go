// Command recompute times `partnerd rewards recompute` over a million
// transactions. It builds partnerd, creates a company with 100 partnerships,
// 20,000 customers and three transaction offers through the real API, then
// loads the transactions straight into the database in bulk (as an import
// would, so no rewards exist yet) and runs the real CLI twice:
//
//   - the first recompute creates every reward (three per transaction);
//   - the second runs on unchanged data and must change nothing.
//
// The baseline, measured the same way in the same run, is one plain read of
// the rows a recompute has to read (transactions joined to partnerships,
// and the rewards), so the figure says how much the engine adds to reading
// its inputs.
//
//	go run ./bench/recompute [-db sqlite|postgres://...] [-n 1000000]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/partnerd/partnerd/bench/loadgen"
	"github.com/partnerd/partnerd/internal/store"
)

const (
	partnerships = 100
	customers    = 20000
)

func main() {
	n := flag.Int("n", 1_000_000, "transactions to load")
	f := loadgen.ParseFlags()
	if err := run(f, *n); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(f loadgen.Flags, n int) error {
	ctx := context.Background()
	b, err := loadgen.Build()
	if err != nil {
		return err
	}
	defer b.Close()
	dir, bin := b.Dir, b.Bin
	if err := loadgen.ResetDB(ctx, dir, f.DB); err != nil {
		return err
	}
	pd, err := loadgen.StartPartnerd(bin, dir, f.DB, "")
	if err != nil {
		return err
	}
	companyKey, err := seedViaAPI(pd)
	if stopErr := pd.Stop(); err == nil {
		err = stopErr
	}
	if err != nil {
		return err
	}
	db, err := store.Open(ctx, pd.DSN)
	if err != nil {
		return err
	}
	defer db.Close()
	t0 := time.Now()
	if err := loadTransactions(ctx, db, n); err != nil {
		return err
	}
	loadTime := time.Since(t0)

	first, firstOut, err := recompute(bin, pd.DSN, companyKey)
	if err != nil {
		return err
	}
	second, secondOut, err := recompute(bin, pd.DSN, companyKey)
	if err != nil {
		return err
	}
	if !strings.HasSuffix(secondOut, "0 rewards created, 0 updated, 0 archived") {
		return fmt.Errorf("recompute on unchanged data changed something: %s", secondOut)
	}
	var rewards int64
	if err := db.QueryRow(ctx, "SELECT COUNT(*) FROM rewards").Scan(&rewards); err != nil {
		return err
	}
	if rewards != int64(n)*int64(len(loadgen.ThreeOffers)) {
		return fmt.Errorf("%d transactions under %d offers left %d rewards", n, len(loadgen.ThreeOffers), rewards)
	}
	scan, err := readInputs(ctx, db)
	if err != nil {
		return err
	}
	fmt.Printf("partnerd rewards recompute, %d transactions, %d customers, %d partnerships, %d offers, %s\n",
		n, customers, partnerships, len(loadgen.ThreeOffers), loadgen.Engine(f.DB))
	fmt.Printf("  bulk load of the transactions   : %v\n", loadTime.Round(time.Millisecond))
	fmt.Printf("  baseline: one read of the inputs: %v\n", scan.Round(time.Millisecond))
	fmt.Printf("  first recompute (no rewards yet): %v  (%.1fx baseline)  %s\n", first.Round(time.Millisecond), first.Seconds()/scan.Seconds(), firstOut)
	fmt.Printf("  second recompute (unchanged)    : %v  (%.1fx baseline)  %s\n", second.Round(time.Millisecond), second.Seconds()/scan.Seconds(), secondOut)
	return nil
}

// seedViaAPI creates the partnerships, customers and offers through the
// API and returns the company's key.
func seedViaAPI(pd *loadgen.Partnerd) (string, error) {
	for p := 0; p < partnerships; p++ {
		if err := pd.Post("/api/v2/partnerships", fmt.Sprintf(`{"email":"p%d@partner.test","partner_key":"p%d"}`, p, p)); err != nil {
			return "", err
		}
	}
	for c := 0; c < customers; c++ {
		if err := pd.Post("/api/v2/customers", fmt.Sprintf(`{"email":"c%d@customer.test","customer_key":"c%d","partner_key":"p%d"}`,
			c, c, c%partnerships)); err != nil {
			return "", err
		}
	}
	for _, o := range loadgen.ThreeOffers {
		if err := pd.Post("/api/v2/offers", o); err != nil {
			return "", err
		}
	}
	return pd.CompanyKey, nil
}

// loadTransactions writes n transactions spread over the customers and the
// last 300 days (inside the first-year window, so every offer pays on
// every transaction), in bulk, with the columns CreateTransaction writes.
func loadTransactions(ctx context.Context, db *store.DB, n int) error {
	type cust struct{ id, partnershipID, companyID int64 }
	rows, err := db.Query(ctx, "SELECT id, partnership_id, company_id FROM customers ORDER BY id")
	if err != nil {
		return err
	}
	var cs []cust
	for rows.Next() {
		var c cust
		if err := rows.Scan(&c.id, &c.partnershipID, &c.companyID); err != nil {
			rows.Close()
			return err
		}
		cs = append(cs, c)
	}
	rows.Close()
	if len(cs) == 0 {
		return fmt.Errorf("no customers")
	}
	cols := []string{"key", "company_id", "customer_id", "partnership_id", "amount", "currency", "amount_usd", "metadata", "test",
		"created_at", "updated_at"}
	start := time.Now().AddDate(0, 0, -300).UnixMilli()
	step := (time.Now().UnixMilli() - start) / int64(n)
	const chunk = 20000
	batch := make([][]any, 0, chunk)
	for i := 0; i < n; i++ {
		c := cs[i%len(cs)]
		at := start + int64(i)*step
		amount := int64(1000 + i%9000)
		batch = append(batch, []any{fmt.Sprintf("seed-%d", i), c.companyID, c.id, c.partnershipID, amount, "USD", amount, "{}", 0, at, at})
		if len(batch) == chunk || i == n-1 {
			if err := db.InsertRows(ctx, "transactions", cols, batch); err != nil {
				return fmt.Errorf("load transactions: %w", err)
			}
			batch = batch[:0]
		}
	}
	// What CreateTransaction keeps on the customer: its first payment.
	if _, err := db.Exec(ctx, `UPDATE customers SET first_paid_id = (SELECT MIN(t.id) FROM transactions t WHERE t.customer_id = customers.id AND t.amount > 0)`); err != nil {
		return err
	}
	_, err = db.Exec(ctx, `UPDATE customers SET first_paid_at = (SELECT t.created_at FROM transactions t WHERE t.id = customers.first_paid_id)`)
	return err
}

// recompute runs the real CLI and returns its time and summary line.
func recompute(bin, dsn, company string) (time.Duration, string, error) {
	t0 := time.Now()
	out, err := exec.Command(bin, "rewards", "recompute", "--db", dsn, "--company", company).CombinedOutput()
	d := time.Since(t0)
	if err != nil {
		return d, "", fmt.Errorf("rewards recompute: %w: %s", err, out)
	}
	return d, strings.TrimSpace(string(out)), nil
}

// readInputs is the baseline: one read of every transaction with its
// partnership and of every reward, which any recompute must at least do.
func readInputs(ctx context.Context, db *store.DB) (time.Duration, error) {
	t0 := time.Now()
	rows, err := db.Query(ctx, `SELECT t.id, t.customer_id, t.amount, t.currency, t.product_key, t.category_key, t.test, t.archived,
		COALESCE(t.group_id, p.group_id), t.created_at FROM transactions t JOIN partnerships p ON p.id = t.partnership_id
		ORDER BY t.customer_id, t.id`)
	if err != nil {
		return 0, err
	}
	for rows.Next() {
		var id, cid, amount, group, at int64
		var cur string
		var product, category *string
		var test, archived bool
		if err := rows.Scan(&id, &cid, &amount, &cur, &product, &category, &test, &archived, &group, &at); err != nil {
			rows.Close()
			return 0, err
		}
	}
	rows.Close()
	rows, err = db.Query(ctx, "SELECT id, dedupe, amount, currency, explanation, status, archived, payout_id FROM rewards")
	if err != nil {
		return 0, err
	}
	for rows.Next() {
		var id, amount int64
		var dedupe *string
		var cur, ex, status string
		var archived bool
		var payout *int64
		if err := rows.Scan(&id, &dedupe, &amount, &cur, &ex, &status, &archived, &payout); err != nil {
			rows.Close()
			return 0, err
		}
	}
	rows.Close()
	return time.Since(t0), rows.Err()
}
