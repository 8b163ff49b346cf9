package app_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/partnerd/partnerd/internal/billing"
	"github.com/partnerd/partnerd/internal/ledger"
	"github.com/partnerd/partnerd/internal/program"
	"github.com/partnerd/partnerd/internal/store"
)

const stripeSecret = "whsec_partnerd_test"

// stripeEvent is a Stripe event as Stripe's API reference shows it, trimmed
// to what matters plus the envelope fields every event has.
func stripeEvent(id, typ string, object map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{"id": id, "object": "event", "api_version": "2024-06-20", "created": 1767225600,
		"livemode": true, "pending_webhooks": 1, "request": map[string]any{"id": nil, "idempotency_key": nil}, "type": typ,
		"data": map[string]any{"object": object}})
	return b
}

func charge(id, customer string, amount, refunded int64) map[string]any {
	return map[string]any{"id": id, "object": "charge", "amount": amount, "amount_captured": amount, "amount_refunded": refunded,
		"refunded": refunded > 0 && refunded >= amount, "captured": true, "currency": "usd", "customer": customer, "paid": true,
		"status": "succeeded", "created": 1767225600, "livemode": true, "metadata": map[string]any{}}
}

// postWebhook sends a provider delivery with its headers and checks the
// answer against the contract.
func (e *env) postWebhook(path, contentType string, body []byte, headers map[string]string) resp {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.base+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	hr, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer hr.Body.Close()
	out := resp{status: hr.StatusCode, header: hr.Header}
	out.raw, _ = io.ReadAll(hr.Body)
	if err := json.Unmarshal(out.raw, &out.body); err != nil {
		e.t.Fatalf("POST %s: not JSON: %s", path, out.raw)
	}
	e.validate(req, body, out)
	return out
}

func (e *env) stripe(path string, body []byte, at time.Time, secret string) resp {
	e.t.Helper()
	m := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(m, "%d.%s", at.Unix(), body)
	sig := fmt.Sprintf("t=%d,v1=%s", at.Unix(), hex.EncodeToString(m.Sum(nil)))
	return e.postWebhook(path, "application/json", body, map[string]string{"Stripe-Signature": sig})
}

// drain processes the inbox until nothing is due.
func (e *env) drain() {
	e.t.Helper()
	for i := 0; i < 20; i++ {
		n, err := e.app.Billing.Process(context.Background())
		if err != nil {
			e.t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
}

func (e *env) billingEvent(eventID string) map[string]any {
	e.t.Helper()
	for _, it := range e.must("GET", "/api/v2/billing/events?limit=100", e.prod, nil).data()["items"].([]any) {
		if m := it.(map[string]any); m["event_id"] == eventID {
			return m
		}
	}
	e.t.Fatalf("no billing event %s", eventID)
	return nil
}

func (e *env) countRows(table string) int {
	e.t.Helper()
	var n int
	if err := e.app.DB.QueryRow(context.Background(), "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

func TestStripeWebhooksThroughTheInbox(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		co := e.company.Key
		hook := billing.WebhookPath(billing.Stripe, co, false)

		// Not configured yet: 404. Bad settings: 400, nothing stored.
		e.fails(404, "not set up", "POST", hook, auth{}, map[string]any{"id": "evt_0", "type": "x"})
		e.fails(400, "'secret'", "PUT", "/api/v2/billing/stripe", e.prod, map[string]any{"payments_from": "charge"})
		e.fails(400, "'payments_from'", "PUT", "/api/v2/billing/stripe", e.prod, map[string]any{"secret": "x", "payments_from": "both"})
		e.fails(400, "stripe only", "PUT", "/api/v2/billing/chargify", e.prod, map[string]any{"secret": "x", "payments_from": "charge"})
		e.fails(400, "'provider'", "PUT", "/api/v2/billing/paddle", e.prod, map[string]any{"secret": "x"})
		if n := e.countRows("billing_configs"); n != 0 {
			t.Fatalf("bad settings stored %d rows", n)
		}
		cfg := e.must("PUT", "/api/v2/billing/stripe", e.prod, map[string]any{"secret": stripeSecret}).data()
		if cfg["webhook_path"] != hook || cfg["payments_from"] != "charge" || cfg["test"] != false {
			t.Fatalf("configured: %v", cfg)
		}
		var sealed string
		if err := e.app.DB.QueryRow(ctx, "SELECT secret FROM billing_configs").Scan(&sealed); err != nil || strings.Contains(sealed, stripeSecret) {
			t.Fatalf("the secret is stored readable: %q %v", sealed, err)
		}

		// Verification: forged, expired, future and unsigned deliveries get 401 and are not stored.
		now := e.clock.Now()
		ev := stripeEvent("evt_forged", "charge.succeeded", charge("ch_x", "cus_x", 100, 0))
		e.stripe(hook, ev, now, "whsec_other").mustStatus(t, 401)
		e.stripe(hook, ev, now.Add(-6*time.Minute), stripeSecret).mustStatus(t, 401)
		e.stripe(hook, ev, now.Add(6*time.Minute), stripeSecret).mustStatus(t, 401)
		e.postWebhook(hook, "application/json", ev, nil).mustStatus(t, 401)
		e.stripe("/webhooks/stripe/comp_nope", ev, now, stripeSecret).mustStatus(t, 404)
		e.stripe(billing.WebhookPath(billing.Stripe, co, true), ev, now, stripeSecret).mustStatus(t, 404) // test mode not set up
		e.stripe(hook, []byte(`{"id":"evt_1"}`), now, stripeSecret).mustStatus(t, 400)                    // verified but no type
		if n := e.countRows("billing_events"); n != 0 {
			t.Fatalf("%d unverified or malformed deliveries were stored", n)
		}

		e.partnership("ann@agency.io", "ann")
		// A customer with metadata.customer_key and partner_key is created and attributed.
		e.stripe(hook, stripeEvent("evt_c1", "customer.created", map[string]any{"id": "cus_1", "object": "customer", "email": "buyer@shop.test",
			"name": "Buyer", "metadata": map[string]any{"customer_key": "u1", "partner_key": "ann"}}), now, stripeSecret).mustStatus(t, 200)
		// A refund that arrives before its payment waits for it.
		e.stripe(hook, stripeEvent("evt_r1", "charge.refunded", charge("ch_1", "cus_1", 5000, 1000)), now, stripeSecret).mustStatus(t, 200)
		e.drain()
		cu, err := e.app.Program.GetCustomer(ctx, program.Principal{CompanyID: e.company.ID}, "u1")
		if err != nil || cu.PartnerKey != "ann" || cu.ProviderKey == nil || *cu.ProviderKey != "cus_1" || cu.Email != "buyer@shop.test" {
			t.Fatalf("customer from Stripe: %+v %v (event: %v)", cu, err, e.billingEvent("evt_c1"))
		}
		if st := e.billingEvent("evt_r1"); st["status"] != "waiting" || !strings.Contains(st["reason"].(string), "has not arrived") {
			t.Fatalf("early refund: %v", st)
		}
		// The payment lands; the waiting refund then applies; a redelivery adds nothing.
		pay := stripeEvent("evt_p1", "charge.succeeded", charge("ch_1", "cus_1", 5000, 0))
		e.stripe(hook, pay, now, stripeSecret).mustStatus(t, 200)
		if dup := e.stripe(hook, pay, now, stripeSecret); dup.data()["duplicate"] != true {
			t.Fatalf("a redelivered event was not reported as a duplicate: %s", dup.raw)
		}
		e.drain()
		p := program.Principal{CompanyID: e.company.ID}
		txs, _, err := e.app.Ledger.ListTransactions(ctx, p, ledger.TransactionFilter{CustomerKey: "u1"}, store.Page{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		total := int64(0)
		for _, tx := range txs {
			total += tx.Amount
		}
		if len(txs) != 2 || total != 4000 {
			t.Fatalf("payment 5000 then a 1000 refund: %d transactions totalling %d", len(txs), total)
		}
		if st := e.billingEvent("evt_r1"); st["status"] != "done" {
			t.Fatalf("the early refund did not apply once its payment came: %v", st)
		}
		// The same charge in another event (Stripe's charge.updated, say) is still one payment.
		e.stripe(hook, stripeEvent("evt_p1b", "charge.succeeded", charge("ch_1", "cus_1", 5000, 0)), now, stripeSecret).mustStatus(t, 200)
		// A second partial refund records only the increase; the full refund removes payment and partials.
		e.stripe(hook, stripeEvent("evt_r2", "charge.refunded", charge("ch_1", "cus_1", 5000, 2500)), now, stripeSecret).mustStatus(t, 200)
		e.drain()
		live := func() (n int, sum int64) {
			txs, _, err := e.app.Ledger.ListTransactions(ctx, p, ledger.TransactionFilter{CustomerKey: "u1"}, store.Page{Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			for _, tx := range txs {
				n++
				sum += tx.Amount
			}
			return
		}
		if n, sum := live(); n != 3 || sum != 2500 {
			t.Fatalf("after refunds of 1000 then 2500 in all: %d live transactions totalling %d", n, sum)
		}
		e.stripe(hook, stripeEvent("evt_r3", "charge.refunded", charge("ch_1", "cus_1", 5000, 5000)), now, stripeSecret).mustStatus(t, 200)
		e.drain()
		if n, sum := live(); n != 0 || sum != 0 {
			t.Fatalf("after the full refund: %d live transactions totalling %d", n, sum)
		}

		// A payment for a Stripe customer partnerd cannot match waits, and
		// applies once customer.updated links that customer.
		e.customer("u2", "two@shop.test", "ann")
		e.stripe(hook, stripeEvent("evt_p2", "charge.succeeded", charge("ch_2", "cus_2", 1200, 0)), now, stripeSecret).mustStatus(t, 200)
		e.drain()
		if st := e.billingEvent("evt_p2"); st["status"] != "waiting" {
			t.Fatalf("payment for an unknown Stripe customer: %v", st)
		}
		e.stripe(hook, stripeEvent("evt_c2", "customer.updated", map[string]any{"id": "cus_2", "object": "customer",
			"metadata": map[string]any{"customer_key": "u2"}}), now, stripeSecret).mustStatus(t, 200)
		e.drain()
		if st := e.billingEvent("evt_p2"); st["status"] != "done" {
			t.Fatalf("the waiting payment did not apply after its customer was linked: %v", st)
		}
		if tx, err := e.app.Ledger.GetTransaction(ctx, p, "stripe:ch_2"); err != nil || tx.Amount != 1200 || tx.Currency != "USD" {
			t.Fatalf("payment ch_2: %+v %v", tx, err)
		}
		// Invoices are not counted while payments come from charges; unused types are ignored with a reason.
		e.stripe(hook, stripeEvent("evt_i1", "invoice.payment_succeeded", map[string]any{"id": "in_1", "subtotal": 900, "currency": "usd",
			"customer": "cus_2", "created": 1767225600}), now, stripeSecret).mustStatus(t, 200)
		e.stripe(hook, stripeEvent("evt_x", "product.created", map[string]any{"id": "prod_1"}), now, stripeSecret).mustStatus(t, 200)
		e.drain()
		for _, id := range []string{"evt_i1", "evt_x"} {
			if st := e.billingEvent(id); st["status"] != "ignored" || st["reason"] == nil {
				t.Fatalf("%s: %v", id, st)
			}
		}
		// Filters.
		for _, it := range e.must("GET", "/api/v2/billing/events?status=ignored", e.prod, nil).data()["items"].([]any) {
			if it.(map[string]any)["status"] != "ignored" {
				t.Fatalf("status filter: %v", it)
			}
		}
		e.fails(400, "'status'", "GET", "/api/v2/billing/events?status=lost", e.prod, nil)
		// Test keys see the test-mode inbox: empty.
		if items := e.must("GET", "/api/v2/billing/events", e.test, nil).data()["items"].([]any); len(items) != 0 {
			t.Fatalf("test keys see production events: %v", items)
		}
	})
}

func (r resp) mustStatus(t *testing.T, want int) resp {
	t.Helper()
	if r.status != want {
		t.Fatalf("status %d, want %d: %s", r.status, want, r.raw)
	}
	return r
}
