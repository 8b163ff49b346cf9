package app_test

import (
	"context"
	"reflect"
	"testing"
)

func TestV1(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		e.partnership("p@p.test", "v1partner")
		// v1 clients send extras such as ip_address; they are ignored.
		c := e.must("POST", "/v1/customers", e.prod, map[string]any{"email": "v1@shop.test", "key": "v1-cust", "partner_key": "v1partner", "name": "V One", "ip_address": "203.0.113.9"}).data()
		if c["customer_key"] != "v1-cust" || c["source_type"] != "api_v1" || c["name"] != "V One" {
			t.Fatalf("v1 create: %v", c)
		}
		e.fails(400, "'key' is a required property", "POST", "/v1/customers", e.prod, map[string]any{"email": "x@shop.test", "partner_key": "v1partner"})
		if got := e.must("GET", "/v1/customers/v1-cust", e.prod, nil).data(); got["key"] != c["key"] {
			t.Fatalf("v1 get: %v", got)
		}
		// PATCH with key renames the customer_key.
		up := e.must("PATCH", "/v1/customers/v1-cust", e.prod, map[string]any{"key": "v1-renamed", "name": "V Two", "ip_address": "x"}).data()
		if up["customer_key"] != "v1-renamed" || up["name"] != "V Two" {
			t.Fatalf("v1 patch: %v", up)
		}
		e.fails(404, "not found", "GET", "/v1/customers/v1-cust", e.prod, nil)
		// Transactions by customer_key or email in the path; currency defaults to USD.
		tx := e.must("POST", "/v1/customers/v1-renamed/transactions", e.prod, map[string]any{"amount": 0, "key": "v1-tx-1"}).data()
		if tx["currency"] != "USD" || tx["amount"].(float64) != 0 || tx["customer_key"] != c["key"] {
			t.Fatalf("v1 transaction: %v", tx)
		}
		tx2 := e.must("POST", "/v1/customers/v1@shop.test/transactions", e.prod, map[string]any{"amount": 250, "currency": "CAD"}).data()
		if tx2["currency"] != "CAD" || tx2["customer_key"] != c["key"] {
			t.Fatalf("v1 transaction by email: %v", tx2)
		}
		e.fails(400, "'amount' is a required property", "POST", "/v1/customers/v1-renamed/transactions", e.prod, map[string]any{"currency": "USD"})
		e.fails(400, "does not match any customer", "POST", "/v1/customers/ghost/transactions", e.prod, map[string]any{"amount": 1})
		again := e.must("POST", "/v1/customers/v1-renamed/transactions", e.prod, map[string]any{"amount": 999, "key": "v1-tx-1"})
		if again.header.Get("Idempotent-Replayed") != "true" || again.data()["amount"].(float64) != 0 {
			t.Fatalf("v1 idempotent key: %s", again.raw)
		}
	})
}

// TestPartnerAPI: a partner token reads only its own partnership and the
// customers and transactions under it, with the same paging and filters.
func TestPartnerAPI(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		mine := e.partnership("me@p.test", "me")
		e.partnership("you@p.test", "you")
		for _, c := range []struct{ key, partner string }{{"m1", "me"}, {"m2", "me"}, {"y1", "you"}} {
			e.customer(c.key, c.key+"@x.test", c.partner)
			e.tick()
			e.must("POST", "/api/v2/transactions", e.prod, map[string]any{"customer_external_key": c.key, "amount": 100, "currency": "USD", "key": "tx-" + c.key})
		}
		tok, err := e.app.Program.CreatePartnerToken(context.Background(), e.company.Key, "me")
		if err != nil {
			t.Fatal(err)
		}
		pt := bearer(tok)
		if got := e.must("GET", "/api/v2/partnerships", pt, nil).keys(); !reflect.DeepEqual(got, []string{mine["key"].(string)}) {
			t.Fatalf("partner sees partnerships %v", got)
		}
		cs := e.must("GET", "/api/v2/customers", pt, nil)
		if len(cs.items()) != 2 || cs.data()["total"].(float64) != 2 {
			t.Fatalf("partner sees customers %s", cs.raw)
		}
		for _, it := range cs.items() {
			if it["partner_key"] != "me" {
				t.Fatalf("partner sees another partner's customer: %v", it)
			}
		}
		if got := e.must("GET", "/api/v2/transactions?order_by=created_at", pt, nil).keys(); !reflect.DeepEqual(got, []string{"tx-m1", "tx-m2"}) {
			t.Fatalf("partner sees transactions %v", got)
		}
		// Paging works, and another partner's keys are unknown cursors.
		page := e.must("GET", "/api/v2/transactions?limit=1&order_by=created_at", pt, nil)
		if page.data()["has_more"] != true || page.keys()[0] != "tx-m1" {
			t.Fatalf("partner paging: %s", page.raw)
		}
		if got := e.must("GET", "/api/v2/transactions?limit=1&order_by=created_at&starting_after=tx-m1", pt, nil).keys(); !reflect.DeepEqual(got, []string{"tx-m2"}) {
			t.Fatalf("partner page 2: %v", got)
		}
		e.fails(400, "unknown key", "GET", "/api/v2/transactions?starting_after=tx-y1", pt, nil)
		// Filters cannot widen the view.
		if n := e.count("/api/v2/customers?partner_key=you", pt); n != 0 {
			t.Fatalf("partner filtered into another partner's customers: %d", n)
		}
		// Partners cannot write or use vendor-only reads.
		e.fails(401, "HTTP Basic", "POST", "/api/v2/customers", pt, map[string]any{"customer_key": "z", "email": "z@x.test", "partner_key": "me"})
		e.fails(401, "HTTP Basic", "GET", "/api/v2/customers/m1", pt, nil)
		e.fails(401, "HTTP Basic", "DELETE", "/api/v2/transactions/tx-m1", pt, nil)
		// A token names one partnership in one company.
		if _, err := e.app.Program.CreatePartnerToken(context.Background(), e.company.Key, "ghost"); err == nil {
			t.Fatal("token for an unknown partner key")
		}
	})
}

// TestCompanyIsolation: one company's keys never see or change another's objects.
func TestCompanyIsolation(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		p := e.partnership("p@p.test", "shared-name")
		c := e.customer("shared-cust", "c@x.test", "shared-name")
		e.must("POST", "/api/v2/transactions", e.prod, map[string]any{"customer_key": "shared-cust", "amount": 100, "currency": "USD", "key": "shared-tx"})
		other, ob := e.newCompany("Rival")

		for _, path := range []string{"/api/v2/partnerships", "/api/v2/customers", "/api/v2/transactions"} {
			r := e.must("GET", path, ob, nil)
			for _, it := range r.items() {
				if it["company"].(map[string]any)["key"] != other.Key {
					t.Fatalf("%s leaks another company's object: %v", path, it)
				}
			}
		}
		for _, path := range []string{"/api/v2/partnerships/" + p["key"].(string), "/api/v2/partnerships/shared-name", "/api/v2/partnerships/p@p.test",
			"/api/v2/customers/" + c["key"].(string), "/api/v2/customers/shared-cust", "/api/v2/transactions/shared-tx", "/v1/customers/shared-cust"} {
			e.fails(404, "not found", "GET", path, ob, nil)
		}
		e.fails(404, "not found", "PATCH", "/api/v2/partnerships/shared-name", ob, map[string]any{"first_name": "Hijack"})
		e.fails(404, "not found", "DELETE", "/api/v2/partnerships/shared-name", ob, nil)
		e.fails(404, "not found", "PATCH", "/api/v2/customers/shared-cust", ob, map[string]any{"name": "Hijack"})
		e.fails(404, "not found", "DELETE", "/api/v2/customers/shared-cust", ob, nil)
		e.fails(404, "not found", "DELETE", "/api/v2/transactions/shared-tx", ob, nil)
		e.fails(400, "does not match", "POST", "/api/v2/transactions", ob, map[string]any{"customer_key": c["key"], "amount": 1, "currency": "USD"})
		e.fails(400, "does not match", "POST", "/api/v2/customers", ob, map[string]any{"customer_key": "x", "email": "x@x.test", "partner_key": "shared-name"})
		e.fails(400, "group_key", "POST", "/api/v2/partnerships", ob, map[string]any{"email": "x@x.test", "group_key": p["group"].(map[string]any)["key"]})
		e.fails(400, "unknown key", "GET", "/api/v2/customers?starting_after="+c["key"].(string), ob, nil)
		// Nothing of the first company changed.
		if got := e.must("GET", "/api/v2/partnerships/shared-name", e.prod, nil).data(); got["first_name"] != "" || got["archived"] != false {
			t.Fatalf("partnership changed by another company: %v", got)
		}
		if got := e.must("GET", "/api/v2/transactions/shared-tx", e.prod, nil).data(); got["archived"] != false {
			t.Fatalf("transaction changed by another company: %v", got)
		}
		// A partner token of one company sees nothing of the other.
		tok, _ := e.app.Program.CreatePartnerToken(context.Background(), other.Key, "gstest")
		if n := e.count("/api/v2/customers", bearer(tok)); n != 0 {
			t.Fatalf("rival partner sees %d customers", n)
		}
	})
}
