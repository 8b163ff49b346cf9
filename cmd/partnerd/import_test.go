package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/partnerd/partnerd/internal/ledger"
	"github.com/partnerd/partnerd/internal/program"
	"github.com/partnerd/partnerd/internal/store/storetest"
)

// TestKilledImportRerunLeavesEveryRowOnce kills `partnerd import` with
// SIGKILL part-way through a file, runs the same command again, and
// requires exactly the file's transactions, each once, with one reward
// each from the program's offer.
func TestKilledImportRerunLeavesEveryRowOnce(t *testing.T) {
	for _, eng := range storetest.Engines(t) {
		t.Run(eng.Name, func(t *testing.T) {
			ctx := context.Background()
			dsn := eng.DSN(t)
			a, err := openQuiet(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			c, err := a.Program.CreateCompany(ctx, "Kill", "")
			if err != nil {
				t.Fatal(err)
			}
			p := program.Principal{CompanyID: c.ID}
			if _, err := a.Ledger.CreateOffer(ctx, p, ledger.OfferInput{Name: ptr("Share"), Trigger: ptr("transaction"), Type: ptr("percent"), Rate: ptr("10"),
				Set: map[string]bool{"name": true, "trigger": true, "type": true, "rate": true}}); err != nil {
				t.Fatal(err)
			}
			if _, err := a.Program.CreatePartnership(ctx, p, program.PartnershipInput{Email: ptr("pat@partner.test"), PartnerKey: ptr("pat")}); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 50; i++ {
				if _, _, err := a.Program.CreateCustomer(ctx, p, program.CustomerInput{CustomerKey: ptr(fmt.Sprintf("k%d", i)),
					Email: ptr(fmt.Sprintf("k%d@x.test", i)), PartnerKey: ptr("pat")}); err != nil {
					t.Fatal(err)
				}
			}
			const n = 40000
			var file bytes.Buffer
			var sum int64
			file.WriteString("key,customer_key,amount,currency\n")
			for i := 0; i < n; i++ {
				fmt.Fprintf(&file, "k-%d,k%d,%d,USD\n", i, i%50, 100+i%7)
				sum += int64(100 + i%7)
			}
			path := filepath.Join(t.TempDir(), "tx.csv")
			if err := os.WriteFile(path, file.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			args := []string{"import", "transactions", path, "--db", dsn, "--company", c.Key}
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "PARTNERD_TEST_CHILD_ARGS="+strings.Join(args, "\x1f"))
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			count := func() (rows, total int64) {
				t.Helper()
				if err := a.DB.QueryRow(ctx, "SELECT COUNT(*), COALESCE(SUM(amount), 0) FROM transactions").Scan(&rows, &total); err != nil {
					t.Fatal(err)
				}
				return
			}
			deadline := time.Now().Add(60 * time.Second)
			for {
				if rows, _ := count(); rows > 0 {
					break
				}
				if time.Now().After(deadline) {
					cmd.Process.Kill()
					t.Fatal("the import wrote nothing in 60 s")
				}
				time.Sleep(5 * time.Millisecond)
			}
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			cmd.Wait()
			mid, _ := count()
			if mid == 0 || mid >= n {
				t.Fatalf("the kill landed at %d of %d rows: not mid-import", mid, n)
			}
			var stdout, stderr bytes.Buffer
			if err := run(ctx, args, &stdout, &stderr); err != nil {
				t.Fatalf("rerun: %v\n%s", err, stderr.String())
			}
			if !strings.Contains(stdout.String(), fmt.Sprintf("%d rows: %d created, 0 updated, %d unchanged, 0 rejected", n, n-mid, mid)) {
				t.Fatalf("rerun after the kill at %d rows said: %s", mid, stdout.String())
			}
			rows, total := count()
			var rewards int64
			if err := a.DB.QueryRow(ctx, "SELECT COUNT(*) FROM rewards WHERE source = 'offer'").Scan(&rewards); err != nil {
				t.Fatal(err)
			}
			if rows != n || total != sum || rewards != n {
				t.Fatalf("after the rerun: %d transactions totalling %d with %d rewards; the file has %d totalling %d", rows, total, rewards, n, sum)
			}
			// The killed run reads as interrupted once its lease runs out;
			// before that, as still running.
			var status string
			if err := a.DB.QueryRow(ctx, "SELECT status FROM imports ORDER BY id LIMIT 1").Scan(&status); err != nil || status != "running" {
				t.Fatalf("killed import's stored status %q, %v", status, err)
			}
			a.Close()
		})
	}
}
