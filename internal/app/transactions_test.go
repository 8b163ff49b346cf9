package app_test

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
)

func TestTransactions(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		e.partnership("p@p.test", "tp")
		cu := e.customer("buyer-1", "buyer@shop.test", "tp")
		internal := cu["key"].(string)

		// Exactly one customer reference.
		e.fails(400, "exactly one of", "POST", "/api/v2/transactions", e.prod, map[string]any{"amount": 100, "currency": "USD"})
		e.fails(400, "exactly one of", "POST", "/api/v2/transactions", e.prod, map[string]any{"customer_key": internal, "customer_email": "buyer@shop.test", "amount": 100, "currency": "USD"})
		e.fails(400, "exactly one of", "POST", "/api/v2/transactions", e.prod, map[string]any{"customer_key": nil, "amount": 100, "currency": "USD"})

		// Each way of naming the customer works.
		refs := []map[string]any{{"customer_key": internal}, {"customer_key": "buyer-1"}, {"customer_external_key": "buyer-1"}, {"customer_email": "BUYER@shop.test"}}
		for i, ref := range refs {
			e.tick()
			body := map[string]any{"amount": 1000 + i, "currency": "usd", "key": fmt.Sprintf("order-%d", i), "category_key": "subscription", "product_key": "pro", "metadata": map[string]any{"plan": "pro", "seats": 3}}
			for k, v := range ref {
				body[k] = v
			}
			tx := e.must("POST", "/api/v2/transactions", e.prod, body).data()
			if tx["customer_key"] != internal || tx["currency"] != "USD" || tx["amount"].(float64) != float64(1000+i) ||
				tx["amount_usd"].(float64) != float64(1000+i) || tx["partner_key"] != "tp" || tx["key"] != fmt.Sprintf("order-%d", i) {
				t.Fatalf("transaction via %v: %v", ref, tx)
			}
			if tx["customer"].(map[string]any)["external_key"] != "buyer-1" || tx["metadata"].(map[string]any)["plan"] != "pro" {
				t.Fatalf("transaction details via %v: %v", ref, tx)
			}
		}
		e.fails(400, "'customer_email' does not match", "POST", "/api/v2/transactions", e.prod, map[string]any{"customer_email": "ghost@shop.test", "amount": 1, "currency": "USD"})
		e.fails(400, "'customer_external_key' does not match", "POST", "/api/v2/transactions", e.prod, map[string]any{"customer_external_key": "ghost", "amount": 1, "currency": "USD"})

		// Non-USD amounts keep their minor units; JPY has none, KWD three.
		for _, c := range []string{"JPY", "KWD", "EUR"} {
			tx := e.must("POST", "/api/v2/transactions", e.prod, map[string]any{"customer_key": "buyer-1", "amount": 12345, "currency": c}).data()
			if tx["amount"].(float64) != 12345 || tx["currency"] != c || tx["amount_usd"] != nil {
				t.Fatalf("%s transaction: %v", c, tx)
			}
		}
		// Negative and zero amounts are allowed; the bounds are inclusive.
		for _, amt := range []int64{0, -500, 50_000_000_000, -50_000_000_000} {
			e.must("POST", "/api/v2/transactions", e.prod, map[string]any{"customer_key": "buyer-1", "amount": amt, "currency": "USD"})
		}
		// Backdating.
		tx := e.must("POST", "/api/v2/transactions", e.prod, map[string]any{"customer_key": "buyer-1", "amount": 1, "currency": "USD", "created_at": 1600000000000}).data()
		if tx["created_at"].(float64) != 1600000000000 {
			t.Fatalf("backdated created_at: %v", tx["created_at"])
		}
		e.fails(400, "'created_at'", "POST", "/api/v2/transactions", e.prod, map[string]any{"customer_key": "buyer-1", "amount": 1, "currency": "USD", "created_at": e.clock.Now().UnixMilli() + 2*86400000})

		// Get, delete (archive), list.
		got := e.must("GET", "/api/v2/transactions/order-0", e.prod, nil).data()
		if got["amount"].(float64) != 1000 {
			t.Fatalf("get: %v", got)
		}
		e.fails(404, "not found", "GET", "/api/v2/transactions/nope", e.prod, nil)
		before := e.count("/api/v2/transactions", e.prod)
		del := e.must("DELETE", "/api/v2/transactions/order-0", e.prod, nil).data()
		if del["archived"] != true || del["approved"] != false {
			t.Fatalf("delete: %v", del)
		}
		if after := e.count("/api/v2/transactions", e.prod); after != before-1 {
			t.Fatalf("deleted transaction still listed: %d -> %d", before, after)
		}
		if n := e.count("/api/v2/transactions?include_archived=true", e.prod); n != before {
			t.Fatalf("include_archived: %d, want %d", n, before)
		}
		// A retried create after a delete returns the deleted transaction and does not revive it.
		re := e.must("POST", "/api/v2/transactions", e.prod, map[string]any{"customer_key": "buyer-1", "amount": 1000, "currency": "USD", "key": "order-0"})
		if re.data()["archived"] != true || re.header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("retry after delete: %s", re.raw)
		}
		e.fails(404, "not found", "DELETE", "/api/v2/transactions/nope", e.prod, nil)
	})
}

// TestTransactionKeyIsIdempotent: a key already stored returns the stored
// transaction and writes nothing, also when many requests race.
func TestTransactionKeyIsIdempotent(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		e.partnership("p@p.test", "ip")
		e.customer("c1", "c1@x.test", "ip")
		first := e.must("POST", "/api/v2/transactions", e.prod, map[string]any{"customer_key": "c1", "amount": 4200, "currency": "USD", "key": "inv-0001"})
		if first.header.Get("Idempotent-Replayed") != "" {
			t.Fatal("first post marked as replay")
		}
		e.tick()
		second := e.must("POST", "/api/v2/transactions", e.prod, map[string]any{"customer_key": "c1", "amount": 9999, "currency": "EUR", "key": "inv-0001"})
		if second.header.Get("Idempotent-Replayed") != "true" || !strings.Contains(second.message(), "already exists") {
			t.Fatalf("second post: %s", second.raw)
		}
		if !reflect.DeepEqual(first.data(), second.data()) {
			t.Fatalf("replay differs from the stored transaction:\n%v\n%v", first.data(), second.data())
		}
		if n := e.count("/api/v2/transactions", e.prod); n != 1 {
			t.Fatalf("replay wrote a row: total %d", n)
		}
		// Twenty concurrent posts of one new key store exactly one transaction.
		var wg sync.WaitGroup
		keys := make(chan string, 20)
		for i := 0; i < 20; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				r := e.must("POST", "/api/v2/transactions", e.prod, map[string]any{"customer_key": "c1", "amount": 100 + i, "currency": "USD", "key": "race-key"})
				keys <- fmt.Sprint(r.data()["amount"])
			}(i)
		}
		wg.Wait()
		close(keys)
		amounts := map[string]bool{}
		for k := range keys {
			amounts[k] = true
		}
		if len(amounts) != 1 {
			t.Fatalf("racing posts saw different transactions: %v", amounts)
		}
		if n := e.count("/api/v2/transactions", e.prod); n != 2 {
			t.Fatalf("racing posts stored %d transactions, want 2 in all", n-0)
		}
		// The same key in another company is a different transaction.
		_, other := e.newCompany("Other")
		e.must("POST", "/api/v2/partnerships", other, map[string]any{"email": "o@p.test", "partner_key": "op"})
		e.must("POST", "/api/v2/customers", other, map[string]any{"customer_key": "c1", "email": "c1@x.test", "partner_key": "op"})
		o := e.must("POST", "/api/v2/transactions", other, map[string]any{"customer_key": "c1", "amount": 1, "currency": "USD", "key": "inv-0001"})
		if o.header.Get("Idempotent-Replayed") != "" || o.data()["amount"].(float64) != 1 {
			t.Fatalf("a key is scoped to its company: %s", o.raw)
		}
	})
}

func TestTransactionFilters(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		a := e.partnership("a@p.test", "fa")
		e.partnership("b@p.test", "fb")
		ca := e.customer("ca", "ca@x.test", "fa")
		e.customer("cb", "cb@x.test", "fb")
		post := func(cust, cur, cat, prod, key string) {
			e.tick()
			e.must("POST", "/api/v2/transactions", e.prod, map[string]any{"customer_key": cust, "amount": 100, "currency": cur, "category_key": cat, "product_key": prod, "key": key})
		}
		post("ca", "USD", "sub", "pro", "t-a1")
		post("ca", "EUR", "one-off", "basic", "t-a2")
		post("cb", "USD", "sub", "basic", "t-b1")
		for q, want := range map[string][]string{
			"customer_key=ca":                      {"t-a2", "t-a1"},
			"customer_key=" + ca["key"].(string):   {"t-a2", "t-a1"},
			"partner_key=fb":                       {"t-b1"},
			"partnership_key=" + a["key"].(string): {"t-a2", "t-a1"},
			"currency=usd":                         {"t-b1", "t-a1"},
			"category_key=sub":                     {"t-b1", "t-a1"},
			"product_key=basic":                    {"t-b1", "t-a2"},
			"product_key=basic&currency=EUR":       {"t-a2"},
			"order_by=created_at&limit=2":          {"t-a1", "t-a2"},
			"partner_key=nobody":                   nil,
		} {
			if got := e.must("GET", "/api/v2/transactions?"+q, e.prod, nil).keys(); !reflect.DeepEqual(got, want) {
				t.Errorf("?%s: got %v want %v", q, got, want)
			}
		}
	})
}
