package app_test

import (
	"reflect"
	"testing"
)

func TestCustomerLifecycle(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		e.partnership("p@p.test", "acme-partner")
		e.partnership("q@p.test", "other-partner")
		c := e.must("POST", "/api/v2/customers", e.prod, map[string]any{
			"customer_key": "user-42", "email": "Buyer@Shop.test", "name": "Buyer Inc", "partner_key": "acme-partner",
			"provider_key": "cus_stripe123", "meta": map[string]any{"company_name": "Buyer Inc"},
		})
		d := c.data()
		if d["customer_key"] != "user-42" || d["email"] != "buyer@shop.test" || d["partner_key"] != "acme-partner" ||
			d["provider_key"] != "cus_stripe123" || d["source_type"] != "api" || d["test"] != false {
			t.Fatalf("customer: %v", d)
		}
		if c.header.Get("Idempotent-Replayed") != "" {
			t.Fatal("a new customer is not a replay")
		}
		key := d["key"].(string)
		// The same customer_key for the same partner: the stored customer, nothing written.
		again := e.must("POST", "/api/v2/customers", e.prod, map[string]any{"customer_key": "user-42", "email": "changed@shop.test", "partner_key": "acme-partner"})
		if again.data()["key"] != key || again.data()["email"] != "buyer@shop.test" || again.header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("repeated customer_key: %s", again.raw)
		}
		if n := e.count("/api/v2/customers", e.prod); n != 1 {
			t.Fatalf("repeated customer_key wrote a row: total %d", n)
		}
		// For another partner: a conflict, the customer stays where it is.
		e.fails(409, "another partnership", "POST", "/api/v2/customers", e.prod, map[string]any{"customer_key": "user-42", "email": "b@shop.test", "partner_key": "other-partner"})
		// Without a customer_key (null is allowed): a new customer each time.
		n1 := e.must("POST", "/api/v2/customers", e.prod, map[string]any{"customer_key": nil, "email": "anon@shop.test", "partner_key": "acme-partner"}).data()
		if n1["customer_key"] != nil {
			t.Fatalf("null customer_key: %v", n1)
		}
		e.fails(400, "'partner_key' does not match", "POST", "/api/v2/customers", e.prod, map[string]any{"customer_key": "x", "email": "x@shop.test", "partner_key": "ghost"})

		// Retrieve by internal key or customer_key.
		for _, id := range []string{key, "user-42"} {
			if got := e.must("GET", "/api/v2/customers/"+id, e.prod, nil).data(); got["key"] != key {
				t.Fatalf("get by %s: %v", id, got)
			}
		}
		e.fails(404, "not found", "GET", "/api/v2/customers/nope", e.prod, nil)

		// PATCH: only what is sent; the partner cannot change.
		e.tick()
		up := e.must("PATCH", "/api/v2/customers/user-42", e.prod, map[string]any{"name": "Buyer GmbH", "provider_key": nil}).data()
		if up["name"] != "Buyer GmbH" || up["email"] != "buyer@shop.test" || up["provider_key"] != nil {
			t.Fatalf("patch: %v", up)
		}
		e.fails(400, "cannot change", "PATCH", "/api/v2/customers/user-42", e.prod, map[string]any{"partner_key": "other-partner"})
		e.must("PATCH", "/api/v2/customers/user-42", e.prod, map[string]any{"partner_key": "acme-partner"}) // unchanged is fine
		e.fails(400, "cannot be cleared", "PATCH", "/api/v2/customers/user-42", e.prod, map[string]any{"customer_key": nil})
		e.must("PATCH", "/api/v2/customers/"+n1["key"].(string), e.prod, map[string]any{"customer_key": "user-43"})
		e.fails(409, "already used", "PATCH", "/api/v2/customers/user-43", e.prod, map[string]any{"customer_key": "user-42"})

		// DELETE archives; archived customers take no transactions.
		del := e.must("DELETE", "/api/v2/customers/user-42", e.prod, nil).data()
		if del["archived"] != true {
			t.Fatalf("archive: %v", del)
		}
		if n := e.count("/api/v2/customers", e.prod); n != 1 {
			t.Fatalf("archived customer listed: %d", n)
		}
		if n := e.count("/api/v2/customers?include_archived=true", e.prod); n != 2 {
			t.Fatalf("include_archived: %d", n)
		}
		e.fails(400, "archived", "POST", "/api/v2/transactions", e.prod, map[string]any{"customer_external_key": "user-42", "amount": 100, "currency": "USD"})
	})
}

func TestCustomerFilters(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		g := e.must("POST", "/api/v2/groups", e.prod, map[string]any{"name": "VIP"}).data()
		a := e.partnership("a@p.test", "pa")
		e.tick()
		e.must("POST", "/api/v2/partnerships", e.prod, map[string]any{"email": "b@p.test", "partner_key": "pb", "group_key": g["key"]})
		ca := e.customer("ca", "ca@x.test", "pa")
		cb := e.must("POST", "/api/v2/customers", e.prod, map[string]any{"customer_key": "cb", "email": "cb@x.test", "partner_key": "pb", "provider_key": "cus_9"}).data()
		ka, kb := ca["key"].(string), cb["key"].(string)
		for q, want := range map[string][]string{
			"partner_key=pa":                       {ka},
			"partnership_key=" + a["key"].(string): {ka},
			"group_key=" + g["key"].(string):       {kb},
			"group=vip":                            {kb},
			"email=CB@x.test":                      {kb},
			"provider_key=cus_9":                   {kb},
			"partner_key=pa&provider_key=cus_9":    nil,
		} {
			if got := e.must("GET", "/api/v2/customers?"+q, e.prod, nil).keys(); !reflect.DeepEqual(got, want) {
				t.Errorf("?%s: got %v want %v", q, got, want)
			}
		}
		e.fails(400, "'include_archived'", "GET", "/api/v2/customers?include_archived=maybe", e.prod, nil)
	})
}
