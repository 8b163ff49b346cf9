package app_test

import (
	"context"
	"testing"

	"github.com/partnerd/partnerd/internal/importer"
)

// A migration brings payments with the rewards they earned where they came
// from; a recompute under the new program's offers must not pay them again.
func TestRecomputeLeavesImportedHistoryPaidOnce(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		e.partnership("ann@agency.io", "ann")
		opts := importer.Options{NoRewards: true}
		wantCounts(t, e.importBytes("customers", []byte("customer_key,email,partner_key\nc1,c1@x.com,ann\n"), opts), 1, 1, 0, 0, 0)
		wantCounts(t, e.importBytes("transactions", []byte("key,customer_key,amount\np1,c1,10000\np2,c1,5000\n"), opts), 2, 2, 0, 0, 0)
		// p1's reward came along; p2 earned none where it came from.
		wantCounts(t, e.importBytes("rewards", []byte("key,partner_key,transaction_key,amount,source\nr1,ann,p1,2000,offer\n"), importer.Options{}), 1, 1, 0, 0, 0)
		e.must("POST", "/api/v2/offers", e.prod, map[string]any{"name": "Share", "trigger": "transaction", "type": "percent", "rate": "20"})
		res, err := e.app.Ledger.Recompute(context.Background(), e.company.ID)
		if err != nil {
			t.Fatal(err)
		}
		if n, sum := liveSum(e.rewardsOf("p1")); n != 1 || sum != 2000 {
			t.Fatalf("p1 paid again by the recompute (%+v): %v", res, e.rewardsOf("p1"))
		}
		if n, sum := liveSum(e.rewardsOf("p2")); n != 1 || sum != 1000 {
			t.Fatalf("p2, which brought no reward, earns under today's offers (%+v): %v", res, e.rewardsOf("p2"))
		}
		again, err := e.app.Ledger.Recompute(context.Background(), e.company.ID)
		if err != nil || again.Created+again.Updated+again.Archived != 0 {
			t.Fatalf("second recompute: %+v %v", again, err)
		}
	})
}
