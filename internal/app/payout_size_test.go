package app_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/partnerd/partnerd/internal/importer"
	"github.com/partnerd/partnerd/internal/program"
)

// A payout of thousands of rewards can be marked paid: every reward's
// reward.updated event is recorded. Before, the events went in one
// statement, over SQLite's limit of 32,766 parameters past 6,553 rewards.
func TestMarkingALargePayoutPaid(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.partnership("big@partner.test", "big")
		const n = 7000
		var csv strings.Builder
		csv.WriteString("key,partner_key,amount,currency,status,created_at\n")
		at := time.Date(2025, 12, 15, 0, 0, 0, 0, time.UTC).UnixMilli()
		for i := range n {
			fmt.Fprintf(&csv, "rw-%05d,big,100,USD,approved,%d\n", i, at)
		}
		p := program.Principal{CompanyID: e.company.ID, CompanyKey: e.company.Key, CompanyName: e.company.Name}
		im, err := e.app.Importer.Import(ctx, p, importer.Options{Type: "rewards"}, "rewards.csv", int64(csv.Len()), strings.NewReader(csv.String()), nil)
		if err != nil || im.Created != n {
			t.Fatalf("import %d rewards: %+v %v", n, im, err)
		}
		run, err := e.app.Ledger.RunPayouts(ctx, e.company.ID, "2025-12")
		if err != nil || len(run.Created) != 1 || run.Created[0].RewardCount != n {
			t.Fatalf("payout run: %+v %v", run, err)
		}
		var before int
		if err := e.app.DB.QueryRow(ctx, "SELECT COUNT(*) FROM events WHERE name = 'reward.updated'").Scan(&before); err != nil {
			t.Fatal(err)
		}
		e.must("POST", "/api/v2/payouts/"+run.Created[0].Key+"/paid", e.prod, map[string]any{"external_reference": "wire-1"})
		var paid, events int
		if err := e.app.DB.QueryRow(ctx, "SELECT COUNT(*) FROM rewards WHERE status = 'paid'").Scan(&paid); err != nil {
			t.Fatal(err)
		}
		if err := e.app.DB.QueryRow(ctx, "SELECT COUNT(*) FROM events WHERE name = 'reward.updated'").Scan(&events); err != nil {
			t.Fatal(err)
		}
		if paid != n || events-before != n {
			t.Fatalf("after marking the payout paid: %d rewards paid, %d reward.updated events, want %d", paid, events-before, n)
		}
	})
}
