package ledger_test

import (
	"context"
	"math/big"
	"math/rand"
	"testing"
	"time"

	"github.com/partnerd/partnerd/internal/clock"
	"github.com/partnerd/partnerd/internal/ledger"
	"github.com/partnerd/partnerd/internal/money"
	"github.com/partnerd/partnerd/internal/program"
	"github.com/partnerd/partnerd/internal/store"
	"github.com/partnerd/partnerd/internal/store/storetest"
)

// world is a company with one partner and a few customers on a real database.
type world struct {
	t    *testing.T
	ctx  context.Context
	clk  *clock.Manual
	prog *program.Service
	led  *ledger.Service
	p    program.Principal
	test program.Principal
}

func newWorld(t *testing.T, dsn string) *world {
	ctx := context.Background()
	db, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	clk := clock.NewManual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	prog := program.New(db, clk)
	led := ledger.New(db, clk, prog)
	prog.OnCustomerCreated(led.RewardSignup)
	c, err := prog.CreateCompany(ctx, "Acme", "")
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, ctx: ctx, clk: clk, prog: prog, led: led, p: program.Principal{CompanyID: c.ID}, test: program.Principal{CompanyID: c.ID, Test: true}}
	email, pk := "ann@agency.io", "ann"
	if _, err := prog.CreatePartnership(ctx, w.p, program.PartnershipInput{Email: &email, PartnerKey: &pk}); err != nil {
		t.Fatal(err)
	}
	return w
}

// spec is a random offer and what the oracle needs to know of it.
type spec struct {
	percent  string // "" for flat
	flat     int64
	duration *int
	max      *int
}

func randomOffer(r *rand.Rand) spec {
	var s spec
	if r.Intn(3) == 0 {
		s.flat = int64(1 + r.Intn(2000))
	} else {
		s.percent = []string{"5", "12.5", "20", "33.3333", "0.5"}[r.Intn(5)]
	}
	switch r.Intn(3) {
	case 1:
		d := r.Intn(4) // 0 = first only
		s.duration = &d
	case 2:
		m := 1 + r.Intn(3)
		s.max = &m
	}
	return s
}

func (w *world) createOffer(s spec) {
	name, trig := "offer", "transaction"
	in := ledger.OfferInput{Set: map[string]bool{"name": true, "trigger": true, "type": true, "duration_months": true, "max_transactions": true},
		Name: &name, Trigger: &trig, DurationMonths: s.duration, MaxTransactions: s.max}
	if s.percent != "" {
		typ := "percent"
		in.Type, in.Rate = &typ, &s.percent
		in.Set["rate"] = true
	} else {
		typ, cur := "flat", "USD"
		in.Type, in.Amount, in.Currency = &typ, &s.flat, &cur
		in.Set["amount"], in.Set["currency"] = true, true
	}
	if _, err := w.led.CreateOffer(w.ctx, w.p, in); err != nil {
		w.t.Fatal(err)
	}
}

// tx is a transaction as the oracle sees it.
type tx struct {
	key      string
	customer string
	amount   int64
	at       time.Time
	deleted  bool
}

// oracle computes, independently of the engine, what the live
// transactions earn under the offers.
func oracle(offers []spec, txs []tx) int64 {
	var total int64
	for _, o := range offers {
		first := map[string]tx{}
		rank := map[string]int{}
		for _, t := range txs { // txs are in arrival order
			if t.amount > 0 {
				if _, ok := first[t.customer]; !ok {
					first[t.customer] = t
				}
				rank[t.customer]++
			}
			if t.deleted {
				continue
			}
			f, ok := first[t.customer]
			if !ok {
				f = t
			}
			r := 0
			if t.amount > 0 {
				r = rank[t.customer]
			}
			if t.amount < 0 && (o.percent == "" || o.max != nil || (o.duration != nil && *o.duration == 0)) {
				continue
			}
			if o.duration != nil && *o.duration == 0 && t.key != f.key {
				continue
			}
			if o.duration != nil && *o.duration > 0 && !t.at.Before(f.at.AddDate(0, *o.duration, 0)) {
				continue
			}
			if o.max != nil && r > *o.max {
				continue
			}
			if o.percent == "" {
				total += o.flat
				continue
			}
			rate, _ := new(big.Rat).SetString(o.percent)
			v := new(big.Rat).Mul(new(big.Rat).SetInt64(t.amount), rate)
			v.Quo(v, big.NewRat(100, 1))
			total += money.Round(v)
		}
	}
	return total
}

func (w *world) liveTotal() int64 {
	var total int64
	page := store.Page{Limit: 250, OrderBy: "created_at"}
	for {
		rs, res, err := w.led.ListRewards(w.ctx, w.p, ledger.RewardFilter{}, page)
		if err != nil {
			w.t.Fatal(err)
		}
		for _, r := range rs {
			if r.Source == ledger.SourceOffer {
				total += r.Amount
			}
		}
		if !res.HasMore {
			return total
		}
		page.After = rs[len(rs)-1].Key
	}
}

func (w *world) customer(key string, p program.Principal, partnerKey string) {
	email := key + "@client.com"
	if _, _, err := w.prog.CreateCustomer(w.ctx, p, program.CustomerInput{CustomerKey: &key, Email: &email, PartnerKey: &partnerKey}); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) transaction(p program.Principal, customer string, amount int64) tx {
	t, _, err := w.led.CreateTransaction(w.ctx, p, ledger.TransactionInput{Customer: program.CustomerRef{Key: customer}, Amount: amount, Currency: "USD"})
	if err != nil {
		w.t.Fatal(err)
	}
	return tx{key: t.Key, customer: customer, amount: amount, at: w.clk.Now()}
}

// TestEngineProperties runs random offers and event sequences and checks
// the engine against the oracle, recompute against the engine, and that
// test data never earns.
func TestEngineProperties(t *testing.T) {
	for _, eng := range storetest.Engines(t) {
		t.Run(eng.Name, func(t *testing.T) {
			rounds := 12
			if eng.Name == "postgres" {
				rounds = 6
			}
			for round := 0; round < rounds; round++ {
				seed := time.Now().UnixNano() + int64(round)
				r := rand.New(rand.NewSource(seed))
				w := newWorld(t, eng.DSN(t))
				var offers []spec
				for i := 0; i <= r.Intn(3); i++ {
					o := randomOffer(r)
					offers = append(offers, o)
					w.createOffer(o)
				}
				customers := []string{"a", "b", "c"}
				for _, c := range customers {
					w.customer(c, w.p, "ann")
				}
				w.customer("t1", w.test, program.TestPartnerKey)
				var txs []tx
				for i := 0; i < 25; i++ {
					w.clk.Advance(time.Duration(r.Intn(40*24)) * time.Hour)
					switch k := r.Intn(10); {
					case k < 7:
						amount := int64(r.Intn(100000) + 1)
						if r.Intn(6) == 0 {
							amount = -amount / 3
						}
						txs = append(txs, w.transaction(w.p, customers[r.Intn(3)], amount))
					case k < 8:
						w.transaction(w.test, "t1", int64(r.Intn(10000)+1)) // test data
					default:
						if len(txs) > 0 {
							i := r.Intn(len(txs))
							if _, err := w.led.DeleteTransaction(w.ctx, w.p, txs[i].key); err != nil {
								t.Fatal(err)
							}
							txs[i].deleted = true
						}
					}
				}
				want, got := oracle(offers, txs), w.liveTotal()
				if got != want {
					t.Fatalf("seed %d: reward total %d, oracle %d (offers %+v)", seed, got, want, offers)
				}
				res, err := w.led.Recompute(w.ctx, w.p.CompanyID)
				if err != nil || res.Created+res.Updated+res.Archived != 0 {
					t.Fatalf("seed %d: recompute changed unchanged data: %+v %v", seed, res, err)
				}
				if test, _, err := w.led.ListRewards(w.ctx, w.test, ledger.RewardFilter{CustomerKey: "t1", IncludeArchived: true}, store.Page{Limit: 10}); err != nil || len(test) != 0 {
					t.Fatalf("seed %d: test data earned %d rewards", seed, len(test))
				}
			}
		})
	}
}

// TestReverseReaddAndClawbackNet checks that, under lifetime offers,
// deleting a transaction and recording it again restores the total, and
// that a transaction reversed after payout nets to zero across two payouts.
func TestReverseReaddAndClawbackNet(t *testing.T) {
	for _, eng := range storetest.Engines(t) {
		t.Run(eng.Name, func(t *testing.T) {
			seed := time.Now().UnixNano()
			r := rand.New(rand.NewSource(seed))
			w := newWorld(t, eng.DSN(t))
			offers := []spec{{percent: []string{"7.5", "20", "12.3456"}[r.Intn(3)]}, {flat: int64(100 + r.Intn(900))}}
			for _, o := range offers {
				w.createOffer(o)
			}
			w.customer("a", w.p, "ann")
			w.clk.Set(time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC))
			var txs []tx
			for i := 0; i < 5; i++ {
				txs = append(txs, w.transaction(w.p, "a", int64(1000+r.Intn(50000))))
			}
			before := w.liveTotal()
			victim := txs[r.Intn(len(txs))]
			if _, err := w.led.DeleteTransaction(w.ctx, w.p, victim.key); err != nil {
				t.Fatal(err)
			}
			w.transaction(w.p, "a", victim.amount)
			if after := w.liveTotal(); after != before {
				t.Fatalf("seed %d: reverse then re-add: %d → %d", seed, before, after)
			}

			// Pay March, reverse a paid transaction in April, pay April.
			run, err := w.led.RunPayouts(w.ctx, w.p.CompanyID, "2026-03")
			if err != nil || len(run.Created) != 1 {
				t.Fatalf("march run: %+v %v", run, err)
			}
			march := run.Created[0]
			if march.Amount != before {
				t.Fatalf("seed %d: March payout %d, rewards %d", seed, march.Amount, before)
			}
			if _, err := w.led.MarkPaid(w.ctx, w.p, march.Key, "wire-1"); err != nil {
				t.Fatal(err)
			}
			w.clk.Set(time.Date(2026, 4, 2, 0, 0, 0, 0, time.UTC))
			gone := txs[(r.Intn(len(txs)-1)+1+indexOf(txs, victim))%len(txs)] // a paid one, not the victim
			var goneRewards int64
			rs, _, _ := w.led.ListRewards(w.ctx, w.p, ledger.RewardFilter{TransactionKey: gone.key}, store.Page{Limit: 10})
			for _, rw := range rs {
				goneRewards += rw.Amount
			}
			if _, err := w.led.DeleteTransaction(w.ctx, w.p, gone.key); err != nil {
				t.Fatal(err)
			}
			w.transaction(w.p, "a", 900000) // so April clears the minimum
			run, err = w.led.RunPayouts(w.ctx, w.p.CompanyID, "2026-04")
			if err != nil || len(run.Created) != 1 {
				t.Fatalf("april run: %+v %v", run, err)
			}
			aprilRewards := oracle(offers, []tx{{key: "x", customer: "a", amount: 900000}})
			if got := run.Created[0].Amount; got != aprilRewards-goneRewards {
				t.Fatalf("seed %d: April payout %d, want April's rewards %d minus the clawback %d", seed, got, aprilRewards, goneRewards)
			}
		})
	}
}

func indexOf(txs []tx, t tx) int {
	for i, x := range txs {
		if x.key == t.key {
			return i
		}
	}
	return -1
}
