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
		// The server's outbox dispatcher moves events to deliveries (and
		// deletes them) while the test reads: a webhook subscribed to
		// reward.updated keeps each as a delivery, and the count is of
		// both tables in one statement. Its target refuses connections,
		// so the deliveries stay.
		e.must("POST", "/api/v2/webhooks", e.prod, map[string]any{"target_url": "http://127.0.0.1:9/hook", "events": []string{"reward.updated"}})
		e.tick()
		paidAt := e.clock.Now().UnixMilli()
		e.must("POST", "/api/v2/payouts/"+run.Created[0].Key+"/paid", e.prod, map[string]any{"external_reference": "wire-1"})
		var paid, events int
		if err := e.app.DB.QueryRow(ctx, "SELECT COUNT(*) FROM rewards WHERE status = 'paid'").Scan(&paid); err != nil {
			t.Fatal(err)
		}
		if err := e.app.DB.QueryRow(ctx, `SELECT (SELECT COUNT(*) FROM events WHERE name = 'reward.updated' AND created_at = ?) +
			(SELECT COUNT(*) FROM deliveries WHERE event = 'reward.updated' AND created_at = ?)`, paidAt, paidAt).Scan(&events); err != nil {
			t.Fatal(err)
		}
		if paid != n || events != n {
			t.Fatalf("after marking the payout paid: %d rewards paid, %d reward.updated events, want %d", paid, events, n)
		}
	})
}
