package app_test

import (
	"context"
	"strings"
	"testing"
)

func TestAuthentication(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		path := "/api/v2/partnerships"
		e.fails(401, "no credentials", "GET", path, auth{}, nil)
		e.fails(401, "do not match", "GET", path, basic(e.company.Production.PublicKey, "sk_wrong"), nil)
		e.fails(401, "do not match", "GET", path, basic("pk_unknown", e.company.Production.SecretKey), nil)
		// The test key's secret does not open the production public key.
		e.fails(401, "do not match", "GET", path, basic(e.company.Production.PublicKey, e.company.Test.SecretKey), nil)
		e.fails(401, "malformed", "GET", path, auth{"Basic !!!not-base64"}, nil)
		e.fails(401, "public_key:secret_key", "GET", path, auth{"Basic cGtfb25seQ=="}, nil)
		e.fails(401, "unsupported", "GET", path, auth{"Token abc"}, nil)
		r := e.do("GET", path, basic(e.company.Production.PublicKey, "sk_wrong"), nil)
		if r.header.Get("WWW-Authenticate") == "" {
			t.Error("401 without WWW-Authenticate")
		}
		// Bearer where Basic is expected: 401, as PartnerStack answers.
		tok, err := e.app.Program.CreatePartnerToken(context.Background(), e.company.Key, "gstest")
		if err != nil {
			t.Fatal(err)
		}
		e.fails(401, "HTTP Basic", "POST", "/api/v2/transactions", bearer(tok), map[string]any{"amount": 1})
		e.fails(401, "HTTP Basic", "GET", "/api/v2/groups", bearer(tok), nil)
		e.fails(401, "not valid", "GET", path, bearer("ptok_nope"), nil)
		// Credentials still work after being cached, and a wrong secret for
		// a cached public key is still refused.
		e.must("GET", path, e.prod, nil)
		e.must("GET", path, e.prod, nil)
		e.fails(401, "do not match", "GET", path, basic(e.company.Production.PublicKey, "sk_wrong"), nil)
	})
}

func TestNewCompanyHasDefaultGroupAndTestPartner(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		groups := e.must("GET", "/api/v2/groups", e.prod, nil).items()
		if len(groups) != 1 || groups[0]["default"] != true || groups[0]["name"] != "Default" {
			t.Fatalf("want one default group, got %v", groups)
		}
		p := e.must("GET", "/api/v2/partnerships/gstest", e.prod, nil).data()
		if p["test"] != true || p["partner_key"] != "gstest" {
			t.Fatalf("test partner: %v", p)
		}
		for _, k := range []string{e.company.Production.PublicKey, e.company.Test.PublicKey} {
			if !strings.HasPrefix(k, "pk_") {
				t.Errorf("public key %q lacks pk_", k)
			}
		}
		for _, k := range []string{e.company.Production.SecretKey, e.company.Test.SecretKey} {
			if !strings.HasPrefix(k, "sk_") || len(k) < 40 {
				t.Errorf("secret key %q is not a long sk_ key", k)
			}
		}
		// Secrets are stored only as hashes.
		rows, err := e.app.DB.Query(context.Background(), "SELECT secret_hash FROM api_keys")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var h string
			rows.Scan(&h)
			if h == e.company.Production.SecretKey || h == e.company.Test.SecretKey || len(h) != 64 {
				t.Errorf("stored secret is not a SHA-256 hash: %q", h)
			}
		}
	})
}

func TestTestKeysCreateTestObjects(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		p := e.must("POST", "/api/v2/partnerships", e.test, map[string]any{"email": "t@partner.test"}).data()
		if p["test"] != true {
			t.Fatalf("partnership made with test keys is not test: %v", p)
		}
		c := e.must("POST", "/api/v2/customers", e.test, map[string]any{"customer_key": "tc", "email": "tc@x.test", "partner_key": "gstest"}).data()
		if c["test"] != true {
			t.Fatalf("customer made with test keys is not test: %v", c)
		}
		tx := e.must("POST", "/api/v2/transactions", e.test, map[string]any{"customer_key": "tc", "amount": 500, "currency": "USD", "key": "test-tx-1"}).data()
		if tx["test"] != true {
			t.Fatalf("transaction made with test keys is not test: %v", tx)
		}
		// Test keys may only attribute to test partners.
		e.partnership("real@partner.test", "real")
		e.fails(400, "test partner", "POST", "/api/v2/customers", e.test, map[string]any{"customer_key": "x1", "email": "x1@x.test", "partner_key": "real"})
		// Production keys with the test partner make a test customer.
		c2 := e.must("POST", "/api/v2/customers", e.prod, map[string]any{"customer_key": "pc", "email": "pc@x.test", "partner_key": "gstest"}).data()
		if c2["test"] != true {
			t.Fatalf("customer of gstest is not test: %v", c2)
		}
		// Test keys cannot record money against a production customer.
		e.customer("prodcus", "p@x.test", "real")
		e.fails(400, "test customers", "POST", "/api/v2/transactions", e.test, map[string]any{"customer_key": "prodcus", "amount": 1, "currency": "USD"})
		prodTx := e.must("POST", "/api/v2/transactions", e.prod, map[string]any{"customer_key": "prodcus", "amount": 1, "currency": "USD"}).data()
		if prodTx["test"] != false {
			t.Fatalf("production transaction marked test: %v", prodTx)
		}
	})
}
