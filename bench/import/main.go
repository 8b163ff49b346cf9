// Command import times `partnerd import transactions` on a CSV file of a
// million payments, next to a bare batched INSERT of the same rows into the
// same table of the same engine in the same run (COPY on PostgreSQL).
//
// Both sides start from a fresh database holding one company with 100
// partnerships and 10,000 customers (loaded with the real importer) and no
// offers. The baseline reads and parses the same CSV, maps each
// customer_key to its customer from a map loaded beforehand, and writes
// the rows with the columns the importer writes, 1,000 rows per
// transaction (the importer's commit size) through store.InsertRows. The
// import is the real CLI in a child process, whose peak resident memory
// is read from the kernel when it exits. Afterwards the benchmark checks
// that the import stored every row once, with the file's total amount.
//
//	go run ./bench/import [-db sqlite|postgres://...] [-n 1000000]
package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/partnerd/partnerd/bench/loadgen"
	"github.com/partnerd/partnerd/internal/store"
)

const (
	partnerships = 100
	customers    = 10000
	batch        = 1000
)

func main() {
	n := flag.Int("n", 1_000_000, "transactions in the file")
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
	dsn := f.DB
	if dsn == "sqlite" {
		dsn = filepath.Join(b.Dir, "bench.db")
	}
	file := filepath.Join(b.Dir, "transactions.csv")
	sum, err := writeFile(file, n)
	if err != nil {
		return err
	}
	st, _ := os.Stat(file)

	// The baseline.
	company, err := seed(ctx, b, f.DB, dsn)
	if err != nil {
		return err
	}
	base, err := bareInsert(ctx, dsn, company, file)
	if err != nil {
		return err
	}

	// The real import, from the same starting point.
	company, err = seed(ctx, b, f.DB, dsn)
	if err != nil {
		return err
	}
	t0 := time.Now()
	cmd := exec.Command(b.Bin, "import", "transactions", file, "--db", dsn, "--company", company)
	out, err := cmd.CombinedOutput()
	took := time.Since(t0)
	if err != nil {
		return fmt.Errorf("partnerd import: %w: %s", err, out)
	}
	rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss // KiB on Linux
	if err := check(ctx, dsn, n, sum); err != nil {
		return err
	}
	summary := string(out)
	if i := strings.LastIndex(summary, "import imp_"); i >= 0 {
		summary = strings.TrimSpace(summary[i:])
	}
	fmt.Printf("partnerd import transactions, %d rows (%.0f MB), %d customers, no offers, %s\n", n, float64(st.Size())/1e6, customers, loadgen.Engine(f.DB))
	fmt.Printf("  baseline: bare batched INSERT (%s), %d rows per transaction: %v  %8.0f rows/s\n",
		map[bool]string{true: "COPY", false: "multi-row INSERT"}[f.DB != "sqlite"], batch, base.Round(time.Millisecond), float64(n)/base.Seconds())
	fmt.Printf("  partnerd import (CLI, rewards on)                        : %v  %8.0f rows/s  = %.2f of baseline\n",
		took.Round(time.Millisecond), float64(n)/took.Seconds(), base.Seconds()/took.Seconds())
	fmt.Printf("  peak memory of the import process: %.1f MiB\n", float64(rss)/1024)
	fmt.Printf("  %s\n", summary)
	return nil
}

// writeFile writes n transactions over the customers and the last 300
// days and returns their total amount.
func writeFile(path string, n int) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprintln(w, "key,customer_key,amount,currency,created_at")
	start := time.Now().AddDate(0, 0, -300).UnixMilli()
	step := (time.Now().UnixMilli() - start - 60_000) / int64(n)
	var sum int64
	for i := 0; i < n; i++ {
		amount := int64(1000 + i%9000)
		sum += amount
		fmt.Fprintf(w, "pay-%d,c%d,%d,USD,%d\n", i, i%customers, amount, start+int64(i)*step)
	}
	return sum, w.Flush()
}

// seed empties the database and loads one company with its partnerships
// and customers through the real CLI, returning the company's key.
func seed(ctx context.Context, b *loadgen.Bench, dbArg, dsn string) (string, error) {
	if err := loadgen.ResetDB(ctx, b.Dir, dbArg); err != nil {
		return "", err
	}
	if dbArg == "sqlite" {
		for _, s := range []string{"", "-wal", "-shm", ".key"} {
			if err := os.Remove(dsn + s); err != nil && !errors.Is(err, os.ErrNotExist) {
				return "", err
			}
		}
	}
	out, err := exec.Command(b.Bin, "program", "create", "--db", dsn, "--name", "Bench", "--json").Output()
	if err != nil {
		return "", fmt.Errorf("program create: %w", err)
	}
	var c struct {
		CompanyKey string `json:"company_key"`
	}
	if err := json.Unmarshal(out, &c); err != nil {
		return "", err
	}
	var ps, cs strings.Builder
	ps.WriteString("email,partner_key\n")
	for p := 0; p < partnerships; p++ {
		fmt.Fprintf(&ps, "p%d@partner.test,p%d\n", p, p)
	}
	cs.WriteString("customer_key,email,partner_key\n")
	for i := 0; i < customers; i++ {
		fmt.Fprintf(&cs, "c%d,c%d@customer.test,p%d\n", i, i, i%partnerships)
	}
	for typ, data := range map[string]string{"partners": ps.String(), "customers": cs.String()} {
		path := filepath.Join(b.Dir, typ+".csv")
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			return "", err
		}
	}
	for _, typ := range []string{"partners", "customers"} {
		if out, err := exec.Command(b.Bin, "import", typ, filepath.Join(b.Dir, typ+".csv"), "--db", dsn, "--company", c.CompanyKey).CombinedOutput(); err != nil {
			return "", fmt.Errorf("seed %s: %w: %s", typ, err, out)
		}
	}
	return c.CompanyKey, nil
}

// bareInsert is the baseline: parse the same file and append its rows.
func bareInsert(ctx context.Context, dsn, company, file string) (time.Duration, error) {
	db, err := store.Open(ctx, dsn)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var companyID int64
	if err := db.QueryRow(ctx, "SELECT id FROM companies WHERE key = ?", company).Scan(&companyID); err != nil {
		return 0, err
	}
	type cust struct{ id, partnershipID, groupID int64 }
	byKey := map[string]cust{}
	rows, err := db.Query(ctx, "SELECT customer_key, id, partnership_id, group_id FROM customers WHERE company_id = ? AND customer_key IS NOT NULL", companyID)
	if err != nil {
		return 0, err
	}
	for rows.Next() {
		var k string
		var c cust
		if err := rows.Scan(&k, &c.id, &c.partnershipID, &c.groupID); err != nil {
			rows.Close()
			return 0, err
		}
		byKey[k] = c
	}
	rows.Close()
	cols := []string{"key", "company_id", "customer_id", "partnership_id", "amount", "currency", "amount_usd", "metadata", "test",
		"archived", "created_at", "updated_at", "group_id"}
	t0 := time.Now()
	fh, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer fh.Close()
	r := csv.NewReader(bufio.NewReaderSize(fh, 64<<10))
	if _, err := r.Read(); err != nil {
		return 0, err
	}
	now := time.Now().UnixMilli()
	buf := make([][]any, 0, batch)
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, err
		}
		c, ok := byKey[rec[1]]
		if !ok {
			return 0, fmt.Errorf("no customer %s", rec[1])
		}
		amount, _ := strconv.ParseInt(rec[2], 10, 64)
		at, _ := strconv.ParseInt(rec[4], 10, 64)
		buf = append(buf, []any{rec[0], companyID, c.id, c.partnershipID, amount, rec[3], amount, "{}", 0, 0, at, now, c.groupID})
		if len(buf) == batch {
			if err := db.InsertRows(ctx, "transactions", cols, buf); err != nil {
				return 0, err
			}
			buf = buf[:0]
		}
	}
	if err := db.InsertRows(ctx, "transactions", cols, buf); err != nil {
		return 0, err
	}
	return time.Since(t0), nil
}

// check requires every row of the file stored once with the file's total.
func check(ctx context.Context, dsn string, n int, sum int64) error {
	db, err := store.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	var count, total int64
	if err := db.QueryRow(ctx, "SELECT COUNT(*), COALESCE(SUM(amount), 0) FROM transactions").Scan(&count, &total); err != nil {
		return err
	}
	if count != int64(n) || total != sum {
		return fmt.Errorf("the import stored %d transactions totalling %d; the file has %d totalling %d", count, total, n, sum)
	}
	return nil
}
