package app_test

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/partnerd/partnerd/internal/billing/billingtest"
	"github.com/partnerd/partnerd/internal/ledger"
	"github.com/partnerd/partnerd/internal/program"
	"github.com/partnerd/partnerd/internal/store"
)

func basicAuth(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// live counts a customer's live transactions and their sum.
func (e *env) live(customerKey string) (n int, sum int64) {
	e.t.Helper()
	txs, _, err := e.app.Ledger.ListTransactions(context.Background(), program.Principal{CompanyID: e.company.ID},
		ledger.TransactionFilter{CustomerKey: customerKey}, store.Page{Limit: 100})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, tx := range txs {
		n++
		sum += tx.Amount
	}
	return n, sum
}

func (e *env) wantEvent(eventID, status, reasonHas string) map[string]any {
	e.t.Helper()
	st := e.billingEvent(eventID)
	if st["status"] != status || !strings.Contains(st["reason"].(string), reasonHas) {
		e.t.Fatalf("event %s: want %s with %q, got %v", eventID, status, reasonHas, st)
	}
	return st
}

func (e *env) subscriptions(customerKey string) []map[string]any {
	e.t.Helper()
	return e.must("GET", "/api/v2/billing/subscriptions?customer_key="+customerKey, e.prod, nil).items()
}

func TestChargebeeWebhooks(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		p := program.Principal{CompanyID: e.company.ID}
		e.fails(400, "username:password", "PUT", "/api/v2/billing/chargebee", e.prod, map[string]any{"secret": "no-colon"})
		e.fails(400, "'currency'", "PUT", "/api/v2/billing/chargebee", e.prod, map[string]any{"secret": "cb:pw", "currency": "EUR"})
		hook := e.must("PUT", "/api/v2/billing/chargebee", e.prod, map[string]any{"secret": "cb_user:cb_pass"}).data()["webhook_path"].(string)
		at := e.clock.Now().Add(-time.Hour).Unix()
		fx := func(name string, f billingtest.F) []byte {
			f.At = at
			return billingtest.Render(t, "chargebee/"+name, f)
		}
		send := func(body []byte) resp {
			return e.postWebhook(hook, "application/json", body, map[string]string{"Authorization": basicAuth("cb_user", "cb_pass")}).mustStatus(t, 200)
		}
		pay := func(id, txn string, amount int64) []byte {
			return fx("payment.json", billingtest.F{ID: id, Type: "payment_succeeded", Txn: txn, TxnType: "payment", Status: "success",
				Amount: amount, Currency: "USD", Customer: "cb_1", Key: "u1"})
		}
		refund := func(id, txn, of string, amount int64) []byte {
			return fx("payment.json", billingtest.F{ID: id, Type: "payment_refunded", Txn: txn, TxnType: "refund", Status: "success",
				Amount: amount, Currency: "USD", Customer: "cb_1", Key: "u1", Refunds: of})
		}

		// Wrong or missing credentials: 401, nothing stored.
		e.postWebhook(hook, "application/json", pay("ev_forged", "txn_x", 100), map[string]string{"Authorization": basicAuth("cb_user", "nope")}).mustStatus(t, 401)
		e.postWebhook(hook, "application/json", pay("ev_forged", "txn_x", 100), nil).mustStatus(t, 401)
		if n := e.countRows("billing_events"); n != 0 {
			t.Fatalf("%d unverified deliveries stored", n)
		}

		e.partnership("ann@agency.io", "ann")
		// Out of order: the payment and a refund of it arrive before the
		// customer exists. Both wait; customer_created (with a partner_key)
		// creates and attributes the customer, then both apply.
		send(pay("ev_p1", "txn_1", 4900))
		send(refund("ev_r1", "txn_r1", "txn_1", 1000))
		e.drain()
		e.wantEvent("ev_p1", "waiting", "customer_key u1")
		e.wantEvent("ev_r1", "waiting", "has not arrived")
		send(fx("customer.json", billingtest.F{ID: "ev_c1", Type: "customer_created", Customer: "cb_1", Key: "u1", Partner: "ann"}))
		e.drain()
		cu, err := e.app.Program.GetCustomer(ctx, p, "u1")
		if err != nil || cu.PartnerKey != "ann" || cu.ProviderKey == nil || *cu.ProviderKey != "cb_1" {
			t.Fatalf("customer from Chargebee: %+v %v", cu, err)
		}
		e.wantEvent("ev_p1", "done", "chargebee:txn_1")
		e.wantEvent("ev_r1", "done", "partial refund")
		if n, sum := e.live("u1"); n != 2 || sum != 3900 {
			t.Fatalf("4900 paid, 1000 refunded: %d transactions, %d", n, sum)
		}
		// A redelivery is a duplicate; the same transaction under another
		// event id, and the same refund under another, add nothing.
		if r := send(pay("ev_p1", "txn_1", 4900)); r.data()["duplicate"] != true {
			t.Fatalf("redelivery: %s", r.raw)
		}
		send(pay("ev_p1b", "txn_1", 4900))
		send(refund("ev_r1b", "txn_r1", "txn_1", 1000))
		e.drain()
		e.wantEvent("ev_r1b", "done", "already recorded")
		if n, sum := e.live("u1"); n != 2 || sum != 3900 {
			t.Fatalf("after redeliveries: %d transactions, %d", n, sum)
		}
		// A second refund for the rest deletes the payment and the partial refund.
		send(refund("ev_r2", "txn_r2", "txn_1", 3900))
		e.drain()
		e.wantEvent("ev_r2", "done", "fully reversed")
		if n, sum := e.live("u1"); n != 0 || sum != 0 {
			t.Fatalf("after refunds of everything: %d transactions, %d", n, sum)
		}

		// payment_failed: a declined card had no payment; a late failure
		// (a bounced direct debit) removes the payment it reported.
		send(fx("payment.json", billingtest.F{ID: "ev_f1", Type: "payment_failed", Txn: "txn_f", TxnType: "payment", Status: "failure",
			Amount: 700, Currency: "USD", Customer: "cb_1", Key: "u1"}))
		send(pay("ev_p2", "txn_2", 2500))
		e.drain()
		send(fx("payment.json", billingtest.F{ID: "ev_f2", Type: "payment_failed", Txn: "txn_2", TxnType: "payment", Status: "late_failure",
			Amount: 2500, Currency: "USD", Customer: "cb_1", Key: "u1"}))
		e.drain()
		e.wantEvent("ev_f1", "done", "nothing was recorded")
		e.wantEvent("ev_f2", "done", "fully reversed")
		if n, _ := e.live("u1"); n != 0 {
			t.Fatalf("a late failure left %d transactions", n)
		}

		// Subscription events are state, never money; an older event that
		// arrives late does not overwrite a newer state.
		sub := func(id, typ, status string, when int64) []byte {
			b := billingtest.Render(t, "chargebee/subscription.json", billingtest.F{ID: id, Type: typ, Status: status, Sub: "sub_1",
				Plan: "pro-USD-monthly", Customer: "cb_1", Key: "u1", At: when})
			return b
		}
		send(sub("ev_s1", "subscription_created", "active", at))
		send(sub("ev_s2", "subscription_cancelled", "cancelled", at+60))
		send(sub("ev_s0", "subscription_changed", "active", at-60))
		e.drain()
		e.wantEvent("ev_s0", "done", "newer state")
		subs := e.subscriptions("u1")
		if len(subs) != 1 || subs[0]["status"] != "cancelled" || subs[0]["plan"] != "pro-USD-monthly" || subs[0]["provider"] != "chargebee" ||
			num(subs[0]["event_at"]) != (at+60)*1000 {
			t.Fatalf("subscription state: %v", subs)
		}
		if n, _ := e.live("u1"); n != 0 {
			t.Fatalf("subscription events made %d transactions", n)
		}

		// A payment for a customer nobody has created yet waits until the
		// customer is created through the API: woken at once, no timer.
		send(fx("payment.json", billingtest.F{ID: "ev_p9", Type: "payment_succeeded", Txn: "txn_9", TxnType: "payment", Status: "success",
			Amount: 1500, Currency: "EUR", Customer: "cb_9", Key: "u9"}))
		e.drain()
		e.wantEvent("ev_p9", "waiting", "customer_key u9")
		e.customer("u9", "nine@buyer.example", "ann")
		e.drain()
		e.wantEvent("ev_p9", "done", "chargebee:txn_9")
		if tx, err := e.app.Ledger.GetTransaction(ctx, p, "chargebee:txn_9"); err != nil || tx.Amount != 1500 || tx.Currency != "EUR" ||
			tx.CreatedAt != at*1000 {
			t.Fatalf("payment txn_9: %+v %v", tx, err)
		}
	})
}

// A waiting event is retried on the backoff schedule, then parked: kept and
// listed, no longer retried on a timer, and still woken by its customer.
func TestWaitingBillingEventsParkAndWake(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		hook := e.must("PUT", "/api/v2/billing/chargify", e.prod, map[string]any{"secret": "site_key"}).data()["webhook_path"].(string)
		body := billingtest.Render(t, "chargify/payment_success.form", billingtest.F{ID: "501", EventID: "9501", Sub: "77", Customer: "c1",
			Key: "never-yet", Txn: "9001", Amount: 4900, Currency: "USD", Time: "2025-12-31 14:00:00 -0500"})
		e.postWebhook(hook, "application/x-www-form-urlencoded", body,
			map[string]string{"X-Chargify-Webhook-Signature-Hmac-Sha-256": billingtest.ChargifySignature(body, "site_key")}).mustStatus(t, 200)
		for i := 0; i < 12; i++ {
			e.drain()
			e.clock.Advance(2 * time.Hour)
		}
		st := e.wantEvent("501", "waiting", "customer_key never-yet")
		if num(st["attempts"]) != 10 || st["next_at"] != nil {
			t.Fatalf("after its retries the event should be parked with 10 attempts: %v", st)
		}
		e.partnership("ann@agency.io", "ann")
		e.customer("never-yet", "late@buyer.example", "ann")
		e.drain()
		e.wantEvent("501", "done", "chargify:9001")
	})
}

func TestChargifyWebhooks(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		p := program.Principal{CompanyID: e.company.ID}
		e.fails(400, "'currency'", "PUT", "/api/v2/billing/chargify", e.prod, map[string]any{"secret": "site_key", "currency": "XYZ"})
		cfg := e.must("PUT", "/api/v2/billing/chargify", e.prod, map[string]any{"secret": "site_key", "currency": "eur"}).data()
		if cfg["currency"] != "EUR" {
			t.Fatalf("configured: %v", cfg)
		}
		hook := cfg["webhook_path"].(string)
		send := func(body []byte) resp {
			return e.postWebhook(hook, "application/x-www-form-urlencoded", body,
				map[string]string{"X-Chargify-Webhook-Signature-Hmac-Sha-256": billingtest.ChargifySignature(body, "site_key")}).mustStatus(t, 200)
		}
		const when = "2025-12-31 14:00:00 -0500" // the site's zone, as Chargify sends it
		pay := func(id, txn string, amount int64, currency string) []byte {
			return billingtest.Render(t, "chargify/payment_success.form", billingtest.F{ID: id, EventID: "9" + id, Sub: "77", Customer: "c1",
				Key: "u1", Txn: txn, Amount: amount, Currency: currency, Time: when})
		}
		refund := func(id, refundID, txn string, amount, of int64) []byte {
			return billingtest.Render(t, "chargify/refund_success.form", billingtest.F{ID: id, EventID: "9" + id, Sub: "77", Customer: "c1",
				Key: "u1", Refund: refundID, Txn: txn, Amount: amount, PaymentAmount: of, Time: when})
		}
		forged := pay("100", "8999", 100, "USD")
		e.postWebhook(hook, "application/x-www-form-urlencoded", forged,
			map[string]string{"X-Chargify-Webhook-Signature-Hmac-Sha-256": billingtest.ChargifySignature(forged, "other")}).mustStatus(t, 401)
		e.postWebhook(hook, "application/x-www-form-urlencoded", forged, nil).mustStatus(t, 401)

		e.partnership("ann@agency.io", "ann")
		e.customer("u1", "dana@buyer.example", "ann")
		// A new subscription fires signup_success and payment_success: only
		// the payment is money; the signup is state.
		send(billingtest.Render(t, "chargify/subscription.form", billingtest.F{ID: "101", EventID: "9101", Type: "signup_success",
			Status: "active", Sub: "77", Customer: "c1", Key: "u1", Plan: "basic", Time: when}))
		send(pay("102", "9001", 4900, ""))
		e.drain()
		e.wantEvent("101", "done", "is active")
		tx, err := e.app.Ledger.GetTransaction(ctx, p, "chargify:9001")
		wantAt := time.Date(2025, 12, 31, 19, 0, 0, 0, time.UTC).UnixMilli()
		if err != nil || tx.Amount != 4900 || tx.Currency != "EUR" || tx.CreatedAt != wantAt {
			t.Fatalf("payment with no currency in the payload (the site's EUR) at %d: %+v %v", wantAt, tx, err)
		}
		if n, sum := e.live("u1"); n != 1 || sum != 4900 {
			t.Fatalf("signup plus payment: %d transactions, %d", n, sum)
		}
		if s := e.subscriptions("u1"); len(s) != 1 || s[0]["status"] != "active" || s[0]["plan"] != "basic" {
			t.Fatalf("state: %v", s)
		}
		// Refunds have their own ids: a partial one, the same one redelivered
		// under a new webhook id, then the rest.
		send(refund("103", "r1", "9001", 900, 4900))
		send(refund("104", "r1", "9001", 900, 4900))
		e.drain()
		e.wantEvent("104", "done", "already recorded")
		if n, sum := e.live("u1"); n != 2 || sum != 4000 {
			t.Fatalf("after a 900 refund (twice delivered): %d transactions, %d", n, sum)
		}
		send(refund("105", "r2", "9001", 4000, 4900))
		e.drain()
		if n, sum := e.live("u1"); n != 0 || sum != 0 {
			t.Fatalf("after refunding all: %d transactions, %d", n, sum)
		}
		// A refund before its payment waits, then applies; the payload's own
		// currency wins over the site's.
		send(refund("106", "r3", "9002", 500, 2000))
		e.drain()
		e.wantEvent("106", "waiting", "has not arrived")
		send(pay("107", "9002", 2000, "USD"))
		e.drain()
		e.wantEvent("106", "done", "partial refund")
		if n, sum := e.live("u1"); n != 2 || sum != 1500 {
			t.Fatalf("early refund: %d transactions, %d", n, sum)
		}
		if tx, _ := e.app.Ledger.GetTransaction(ctx, p, "chargify:9002"); tx.Currency != "USD" {
			t.Fatalf("currency: %+v", tx)
		}
		// The same, when both arrive before the worker runs: one batch
		// handles the refund (waits) then the payment, which wakes it.
		send(refund("109", "r4", "9003", 300, 1000))
		send(pay("110", "9003", 1000, "USD"))
		e.drain()
		e.wantEvent("109", "done", "partial refund")
		// An event partnerd does not use is ignored with its reason.
		body := []byte("id=108&event=billing_date_change&payload[subscription][id]=77")
		send(body)
		e.drain()
		e.wantEvent("108", "ignored", "billing_date_change")
	})
}

func TestRecurlyWebhooks(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		p := program.Principal{CompanyID: e.company.ID}
		hook := e.must("PUT", "/api/v2/billing/recurly", e.prod, map[string]any{"secret": "rk_secret", "currency": "EUR"}).data()["webhook_path"].(string)
		xmlSend := func(body []byte) resp {
			return e.postWebhook(hook, "application/xml", body, map[string]string{"Authorization": basicAuth("recurly", "rk_secret")}).mustStatus(t, 200)
		}
		jsonSend := func(body []byte) resp {
			return e.postWebhook(hook, "application/json", body,
				map[string]string{"Recurly-Signature": billingtest.RecurlySignature(body, "rk_secret", e.clock.Now())}).mustStatus(t, 200)
		}
		when := "2025-12-31T18:00:00Z"
		money := func(name, txn, invoice string, amount int64, test bool) []byte {
			return billingtest.Render(t, "recurly/"+name+".xml", billingtest.F{Key: "u1", Txn: txn, Invoice: invoice, Sub: "sub1", Time: when,
				Amount: amount, Test: test})
		}
		pay := money("successful_payment_notification", "p1", "inv1", 3000, false)
		e.postWebhook(hook, "application/xml", pay, nil).mustStatus(t, 401)
		e.postWebhook(hook, "application/xml", pay, map[string]string{"Authorization": basicAuth("recurly", "wrong")}).mustStatus(t, 401)
		jb := billingtest.Render(t, "recurly/notification.json", billingtest.F{ID: "n1", Object: "payment", Type: "succeeded", Sub: "x", Key: "u1", Time: when})
		e.postWebhook(hook, "application/json", jb, map[string]string{"Recurly-Signature": billingtest.RecurlySignature(jb, "wrong", e.clock.Now())}).mustStatus(t, 401)
		if n := e.countRows("billing_events"); n != 0 {
			t.Fatalf("%d unverified deliveries stored", n)
		}

		e.partnership("ann@agency.io", "ann")
		e.customer("u1", "dana@buyer.example", "ann")
		xmlSend(billingtest.Render(t, "recurly/new_account_notification.xml", billingtest.F{Key: "u1"}))
		stranger := billingtest.Render(t, "recurly/new_account_notification.xml", billingtest.F{Key: "not-referred"})
		xmlSend(stranger)
		// The refund names only the invoice: it waits for the payment of that invoice.
		xmlSend(money("successful_refund_notification", "r1", "inv1", 500, false))
		e.drain()
		items := e.must("GET", "/api/v2/billing/events?provider=recurly", e.prod, nil).items()
		byType := map[string]map[string]any{}
		for _, it := range items {
			byType[it["event_type"].(string)+"/"+it["status"].(string)] = it
		}
		if byType["new_account_notification/done"] == nil || byType["new_account_notification/ignored"] == nil ||
			byType["successful_refund_notification/waiting"] == nil {
			t.Fatalf("account and early refund notifications: %v", items)
		}
		if r := xmlSend(pay); r.data()["duplicate"] != false {
			t.Fatalf("first delivery: %s", r.raw)
		}
		if r := xmlSend(pay); r.data()["duplicate"] != true {
			t.Fatalf("an identical XML redelivery is a duplicate: %s", r.raw)
		}
		e.drain()
		tx, err := e.app.Ledger.GetTransaction(ctx, p, "recurly:p1")
		if err != nil || tx.Amount != 3000 || tx.Currency != "EUR" || tx.CreatedAt != time.Date(2025, 12, 31, 18, 0, 0, 0, time.UTC).UnixMilli() {
			t.Fatalf("payment: %+v %v", tx, err)
		}
		if n, sum := e.live("u1"); n != 2 || sum != 2500 {
			t.Fatalf("3000 paid, 500 refunded first: %d transactions, %d", n, sum)
		}
		// A void removes its payment; a sandbox transaction on the production endpoint is ignored.
		xmlSend(money("successful_payment_notification", "p2", "inv2", 1200, false))
		xmlSend(money("successful_payment_notification", "p3", "inv3", 999, true))
		e.drain()
		xmlSend(money("void_payment_notification", "p2", "inv2", 1200, false))
		e.drain()
		if n, sum := e.live("u1"); n != 2 || sum != 2500 {
			t.Fatalf("after a voided payment and a test one: %d transactions, %d", n, sum)
		}
		if _, err := e.app.Ledger.GetTransaction(ctx, p, "recurly:p3"); err == nil {
			t.Fatal("a test transaction on the production endpoint was recorded")
		}
		// Subscriptions: XML state, then a newer JSON event.
		xmlSend(billingtest.Render(t, "recurly/subscription_notification.xml", billingtest.F{Type: "new_subscription_notification", Key: "u1",
			Sub: "sub1", Plan: "pro-monthly", Status: "active"}))
		e.drain()
		if s := e.subscriptions("u1"); len(s) != 1 || s[0]["status"] != "active" || s[0]["plan"] != "pro-monthly" {
			t.Fatalf("XML subscription: %v", s)
		}
		later := e.clock.Now().Add(time.Minute).UTC().Format(time.RFC3339)
		jsonSend(billingtest.Render(t, "recurly/notification.json", billingtest.F{ID: "n2", Object: "subscription", Type: "canceled",
			Sub: "sub1", Key: "u1", Time: later}))
		// JSON payment notices carry no amount: kept, ignored with the reason.
		jsonSend(jb)
		e.drain()
		if s := e.subscriptions("u1"); len(s) != 1 || s[0]["status"] != "canceled" {
			t.Fatalf("JSON subscription: %v", s)
		}
		e.wantEvent("n1", "ignored", "carry no amount")
	})
}

func TestStripeDisputesHoldAndClawBack(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		hook := e.must("PUT", "/api/v2/billing/stripe", e.prod, map[string]any{"secret": stripeSecret}).data()["webhook_path"].(string)
		e.must("POST", "/api/v2/offers", e.prod, map[string]any{"name": "Rev share", "trigger": "transaction", "type": "percent", "rate": "20"})
		e.partnership("ann@agency.io", "ann")
		e.must("POST", "/api/v2/customers", e.prod, map[string]any{"customer_key": "u1", "email": "dana@buyer.example", "partner_key": "ann",
			"provider_key": "cus_1"})
		now := e.clock.Now()
		send := func(body []byte) { e.stripe(hook, body, now, stripeSecret).mustStatus(t, 200) }
		dispute := func(id, typ, dp, ch, status string, amount int64) []byte {
			return billingtest.Render(t, "stripe/dispute.json", billingtest.F{ID: id, Type: typ, Sub: dp, Txn: ch, Status: status,
				Amount: amount, At: now.Unix()})
		}
		status := func(txKey string) (out []string) {
			for _, r := range e.rewardsOf(txKey) {
				s := r["reward_status"].(string)
				if r["archived"] == true {
					s += "/archived"
				}
				out = append(out, s)
			}
			return out
		}
		send(stripeEvent("evt_p1", "charge.succeeded", charge("ch_1", "cus_1", 10000, 0)))
		send(stripeEvent("evt_p2", "charge.succeeded", charge("ch_2", "cus_1", 5000, 0)))
		e.drain()
		if s := status("stripe:ch_1"); len(s) != 1 || s[0] != "approved" {
			t.Fatalf("reward before the dispute: %v", s)
		}
		// Opened: held with the dispute as the reason. Won: released.
		send(dispute("evt_d1", "charge.dispute.created", "dp_1", "ch_1", "needs_response", 10000))
		e.drain()
		rs := e.rewardsOf("stripe:ch_1")
		if len(rs) != 1 || rs[0]["reward_status"] != "hold" || !strings.Contains(rs[0]["hold_reason"].(string), "dp_1") {
			t.Fatalf("disputed reward: %v", rs)
		}
		send(dispute("evt_d2", "charge.dispute.closed", "dp_1", "ch_1", "won", 10000))
		e.drain()
		if s := status("stripe:ch_1"); len(s) != 1 || s[0] != "approved" {
			t.Fatalf("after a won dispute: %v", s)
		}
		// The second payment's reward is paid, then its dispute is lost: the
		// payment is deleted and the paid reward clawed back.
		if _, err := e.app.Ledger.RunPayouts(ctx, e.company.ID, "2026-01"); err != nil {
			t.Fatal(err)
		}
		po := e.must("GET", "/api/v2/payouts", e.prod, nil).items()
		if len(po) != 1 {
			t.Fatalf("payouts: %v", po)
		}
		e.must("POST", "/api/v2/payouts/"+po[0]["key"].(string)+"/paid", e.prod, map[string]any{"external_reference": "wire-1"})
		send(dispute("evt_d3", "charge.dispute.created", "dp_2", "ch_2", "needs_response", 5000))
		send(dispute("evt_d4", "charge.dispute.closed", "dp_2", "ch_2", "lost", 5000))
		e.drain()
		e.wantEvent("evt_d4", "done", "fully reversed")
		claws := 0
		for _, r := range e.must("GET", "/api/v2/rewards?limit=100", e.prod, nil).items() {
			if r["source"] == "clawback" {
				claws++
				if num(r["amount"]) != -1000 {
					t.Fatalf("clawback of a 20%% reward on 5000: %v", r)
				}
			}
		}
		if n, sum := e.live("u1"); claws != 1 || n != 1 || sum != 10000 {
			t.Fatalf("after a lost dispute: %d clawbacks, %d live transactions totalling %d", claws, n, sum)
		}
		// Out of order: a dispute's close arrives before its creation; the
		// late creation does not hold what is no longer in doubt.
		send(stripeEvent("evt_p3", "charge.succeeded", charge("ch_3", "cus_1", 2000, 0)))
		e.drain()
		send(dispute("evt_d6", "charge.dispute.closed", "dp_3", "ch_3", "won", 2000))
		send(dispute("evt_d5", "charge.dispute.created", "dp_3", "ch_3", "needs_response", 2000))
		e.drain()
		e.wantEvent("evt_d5", "done", "already closed")
		if s := status("stripe:ch_3"); len(s) != 1 || s[0] != "approved" {
			t.Fatalf("late dispute creation: %v", s)
		}
	})
}
