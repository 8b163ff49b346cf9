package ledger_test

import (
	"testing"

	"github.com/partnerd/partnerd/internal/clock"
	"github.com/partnerd/partnerd/internal/ledger"
	"github.com/partnerd/partnerd/internal/program"
	"github.com/partnerd/partnerd/internal/store"
	"github.com/partnerd/partnerd/internal/store/storetest"
)

// TestOfferChangesReachEveryNode runs two nodes on one database: each keeps
// the active offers in memory, and an offer created, changed or archived on
// one node must apply to the very next transaction recorded on the other.
func TestOfferChangesReachEveryNode(t *testing.T) {
	for _, eng := range storetest.Engines(t) {
		t.Run(eng.Name, func(t *testing.T) {
			dsn := eng.DSN(t)
			a := newWorld(t, dsn) // node A
			dbB, err := store.Open(a.ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { dbB.Close() })
			b := ledger.New(dbB, clock.NewManual(a.clk.Now()), program.New(dbB, a.clk)) // node B
			a.customer("cust", a.p, "ann")

			earned := func(txKey string) []int64 {
				t.Helper()
				rs, _, err := a.led.ListRewards(a.ctx, a.p, ledger.RewardFilter{TransactionKey: txKey}, store.Page{Limit: 10})
				if err != nil {
					t.Fatal(err)
				}
				var amounts []int64
				for _, r := range rs {
					amounts = append(amounts, r.Amount)
				}
				return amounts
			}
			// A caches "no offers".
			if got := earned(a.transaction(a.p, "cust", 10000).key); len(got) != 0 {
				t.Fatalf("rewards without offers: %v", got)
			}
			// B creates an offer; A's next transaction earns from it.
			name, trig, typ, rate := "Share", "transaction", "percent", "20"
			o, err := b.CreateOffer(a.ctx, a.p, ledger.OfferInput{Set: map[string]bool{"name": true, "trigger": true, "type": true, "rate": true},
				Name: &name, Trigger: &trig, Type: &typ, Rate: &rate})
			if err != nil {
				t.Fatal(err)
			}
			if got := earned(a.transaction(a.p, "cust", 10000).key); len(got) != 1 || got[0] != 2000 {
				t.Fatalf("after B created a 20%% offer, A's transaction of 100.00 earned %v, want [2000]", got)
			}
			// B changes the rate; A applies the new one.
			rate = "10"
			if _, err := b.UpdateOffer(a.ctx, a.p, o.Key, ledger.OfferInput{Set: map[string]bool{"rate": true}, Rate: &rate}); err != nil {
				t.Fatal(err)
			}
			if got := earned(a.transaction(a.p, "cust", 10000).key); len(got) != 1 || got[0] != 1000 {
				t.Fatalf("after B changed the rate to 10%%, A's transaction earned %v, want [1000]", got)
			}
			// B archives it; A stops paying it.
			if _, err := b.ArchiveOffer(a.ctx, a.p, o.Key); err != nil {
				t.Fatal(err)
			}
			if got := earned(a.transaction(a.p, "cust", 10000).key); len(got) != 0 {
				t.Fatalf("after B archived the offer, A's transaction earned %v", got)
			}
		})
	}
}
