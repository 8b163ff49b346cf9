package billing

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/partnerd/partnerd/internal/billing/billingtest"
	"github.com/partnerd/partnerd/internal/clock"
	"github.com/partnerd/partnerd/internal/errs"
	"github.com/partnerd/partnerd/internal/ledger"
	"github.com/partnerd/partnerd/internal/program"
	"github.com/partnerd/partnerd/internal/secret"
	"github.com/partnerd/partnerd/internal/store"
)

// fuzzService is a real service on a real SQLite database with one company
// that has every provider configured and one attributed customer, u1.
func fuzzService(f *testing.F) (*Service, program.Principal) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(f.TempDir(), "fuzz.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		f.Fatal(err)
	}
	clk := clock.NewManual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	prog := program.New(db, clk)
	led := ledger.New(db, clk, prog)
	key := make([]byte, 32)
	box, err := secret.NewBox(key)
	if err != nil {
		f.Fatal(err)
	}
	s := New(db, clk, prog, led, box)
	prog.OnCustomerCreated(s.CustomerCreated)
	co, err := prog.CreateCompany(ctx, "Fuzz Co", "https://fuzz.example")
	if err != nil {
		f.Fatal(err)
	}
	p := program.Principal{CompanyID: co.ID}
	for _, in := range []ConfigInput{{Provider: Stripe, Secret: "whsec_x"}, {Provider: Chargebee, Secret: "u:p"},
		{Provider: Chargify, Secret: "k"}, {Provider: Recurly, Secret: "k"}} {
		if _, err := s.Configure(ctx, co.ID, in); err != nil {
			f.Fatal(err)
		}
	}
	email, partner, ck, pk := "ann@agency.example", "ann", "u1", "cus_1"
	if _, err := prog.CreatePartnership(ctx, p, program.PartnershipInput{Email: &email, PartnerKey: &partner}); err != nil {
		f.Fatal(err)
	}
	if _, _, err := prog.CreateCustomer(ctx, p, program.CustomerInput{CustomerKey: &ck, PartnerKey: &partner, ProviderKey: &pk,
		EmailOptional: true}); err != nil {
		f.Fatal(err)
	}
	return s, p
}

// seeds renders every fixture of a provider with a few fillings.
func seeds(f *testing.F, provider string) {
	dir := filepath.Join(billingtest.Dir(), provider)
	entries, err := os.ReadDir(dir)
	if err != nil {
		f.Fatal(err)
	}
	fills := []billingtest.F{
		{ID: "e1", EventID: "1", Type: "payment_succeeded", Object: "payment", At: 1767225600, Time: "2025-12-31 14:00:00 -0500",
			Customer: "cus_1", Key: "u1", Partner: "ann", Txn: "t1", TxnType: "payment", Status: "success", Amount: 4900, Currency: "USD",
			Sub: "s1", Plan: "basic", Invoice: "i1", Refund: "r1", PaymentAmount: 4900},
		{ID: "e2", EventID: "2", Type: "payment_refunded", Object: "subscription", At: 1767225600, Time: "2025-12-31T18:00:00Z",
			Customer: "cus_1", Key: "u1", Txn: "t2", TxnType: "refund", Refunds: "t1", Status: "lost", Amount: 900, Currency: "",
			Sub: "dp_1", Refund: "r2", PaymentAmount: 4900, Test: true},
	}
	for _, e := range entries {
		for _, fill := range fills {
			b, err := billingtest.RenderErr(provider+"/"+e.Name(), fill)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(string(b))
		}
	}
}

// fuzzHandler processes any body as a verified event of the provider:
// nothing may panic, every outcome has a known status and a reason, and
// no input may cause an internal error (bad input is a reason, not a crash).
func fuzzHandler(f *testing.F, provider, contentType string, extra ...string) {
	seeds(f, provider)
	for _, x := range append(extra, "", "{", "<", "%zz", "\x00\xff", "null", "[]") {
		f.Add(x)
	}
	s, p := fuzzService(f)
	f.Fuzz(func(t *testing.T, body string) {
		ct := contentType
		if provider == Recurly && !strings.HasPrefix(strings.TrimSpace(body), "<") {
			ct = "application/json"
		}
		o, err := s.handle(context.Background(), Event{CompanyID: p.CompanyID, Provider: provider, Body: []byte(body), ContentType: ct})
		if err != nil {
			if errs.CodeOf(err) == errs.Internal {
				t.Fatalf("%s: internal error on %q: %v", provider, body, err)
			}
			return
		}
		switch o.status {
		case StatusDone, StatusWaiting, StatusIgnored:
		default:
			t.Fatalf("%s: outcome %q on %q", provider, o.status, body)
		}
		if o.reason == "" {
			t.Fatalf("%s: outcome without a reason on %q", provider, body)
		}
	})
}

func FuzzStripeEvent(f *testing.F) {
	fuzzHandler(f, Stripe, "application/json",
		`{"id":"evt_1","type":"charge.succeeded","livemode":true,"data":{"object":{"id":"ch_1","amount":100,"currency":"usd","customer":"cus_1","created":1767225600}}}`,
		`{"id":"evt_2","type":"charge.refunded","livemode":true,"data":{"object":{"id":"ch_1","amount":100,"amount_refunded":40,"currency":"usd","customer":"cus_1"}}}`,
		`{"id":"evt_3","type":"customer.created","livemode":true,"data":{"object":{"id":"cus_2","metadata":{"customer_key":"u2","partner_key":"ann"}}}}`)
}

func FuzzChargebeeEvent(f *testing.F) {
	fuzzHandler(f, Chargebee, "application/json")
}

func FuzzChargifyEvent(f *testing.F) {
	fuzzHandler(f, Chargify, "application/x-www-form-urlencoded")
}

func FuzzRecurlyEvent(f *testing.F) {
	fuzzHandler(f, Recurly, "application/xml")
}
