package app_test

import (
	"strings"
	"testing"
)

// TestBadInputChangesNothing sends every kind of bad request the API must
// refuse: each gets 400 with a message naming the field, and nothing is
// written.
func TestBadInputChangesNothing(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		e.partnership("p@p.test", "bp")
		e.customer("bc", "bc@x.test", "bp")
		e.must("POST", "/api/v2/transactions", e.prod, map[string]any{"customer_key": "bc", "amount": 1, "currency": "USD", "key": "existing"})

		tx := func(extra string) string {
			return `{"customer_key":"bc","amount":100,"currency":"USD"` + extra + `}`
		}
		huge := `{"customer_key":"bc","amount":100,"currency":"USD","metadata":{"x":"` + strings.Repeat("a", 2<<20) + `"}}`
		cases := []struct {
			name, method, path, body, want string
		}{
			{"malformed JSON", "POST", "/api/v2/transactions", `{"amount": 1,`, "malformed JSON"},
			{"trailing garbage", "POST", "/api/v2/transactions", tx("") + `{}`, "malformed JSON"},
			{"not an object", "POST", "/api/v2/transactions", `[1,2]`, "JSON object"},
			{"empty body", "POST", "/api/v2/transactions", ``, "'amount' is a required property"},
			{"oversized body", "POST", "/api/v2/transactions", huge, "too large"},
			{"unknown field", "POST", "/api/v2/transactions", tx(`,"amout":5`), "('amout' was unexpected)"},
			{"amount as string", "POST", "/api/v2/transactions", `{"customer_key":"bc","amount":"100","currency":"USD"}`, "'amount' is not of type 'integer'"},
			{"fractional amount", "POST", "/api/v2/transactions", `{"customer_key":"bc","amount":10.5,"currency":"USD"}`, "'amount' is not of type 'integer'"},
			{"exponent amount", "POST", "/api/v2/transactions", `{"customer_key":"bc","amount":1e3,"currency":"USD"}`, "'amount' is not of type 'integer'"},
			{"null amount", "POST", "/api/v2/transactions", `{"customer_key":"bc","amount":null,"currency":"USD"}`, "'amount' is not of type 'integer'"},
			{"amount too large", "POST", "/api/v2/transactions", `{"customer_key":"bc","amount":50000000001,"currency":"USD"}`, "'amount' must be between"},
			{"amount too small", "POST", "/api/v2/transactions", `{"customer_key":"bc","amount":-50000000001,"currency":"USD"}`, "'amount' must be between"},
			{"amount beyond int64", "POST", "/api/v2/transactions", `{"customer_key":"bc","amount":99999999999999999999,"currency":"USD"}`, "'amount' is out of range"},
			{"unknown currency", "POST", "/api/v2/transactions", `{"customer_key":"bc","amount":1,"currency":"ABC"}`, "'currency' is not a known ISO 4217"},
			{"currency too long", "POST", "/api/v2/transactions", `{"customer_key":"bc","amount":1,"currency":"USDD"}`, "'currency' is too long"},
			{"currency as number", "POST", "/api/v2/transactions", `{"customer_key":"bc","amount":1,"currency":840}`, "'currency' is not of type 'string'"},
			{"short key", "POST", "/api/v2/transactions", tx(`,"key":"abc"`), "'key' is too short"},
			{"metadata not object", "POST", "/api/v2/transactions", tx(`,"metadata":[1]`), "'metadata' is not of type 'object'"},
			{"metadata too many", "POST", "/api/v2/transactions", tx(`,"metadata":{` + manyAttrs(26) + `}`), "'metadata' has more than 25"},
			{"metadata long name", "POST", "/api/v2/transactions", tx(`,"metadata":{"` + strings.Repeat("n", 31) + `":1}`), "longer than 30"},
			{"metadata long value", "POST", "/api/v2/transactions", tx(`,"metadata":{"n":"` + strings.Repeat("v", 101) + `"}`), "'metadata.n' is longer than 100"},
			{"metadata nested", "POST", "/api/v2/transactions", tx(`,"metadata":{"n":{"a":1}}`), "'metadata.n' must be a string"},
			{"test not boolean", "POST", "/api/v2/transactions", tx(`,"test":"yes"`), "'test' is not of type 'boolean'"},
			{"missing email", "POST", "/api/v2/customers", `{"customer_key":"n1","partner_key":"bp"}`, "'email' is a required property"},
			{"missing customer_key", "POST", "/api/v2/customers", `{"email":"n1@x.test","partner_key":"bp"}`, "'customer_key' is a required property"},
			{"invalid email", "POST", "/api/v2/customers", `{"customer_key":"n1","email":"not-an-email","partner_key":"bp"}`, "'email' is not a valid email"},
			{"email with name", "POST", "/api/v2/customers", `{"customer_key":"n1","email":"Bob <bob@x.test>","partner_key":"bp"}`, "'email' is not a valid email"},
			{"email too short", "POST", "/api/v2/customers", `{"customer_key":"n1","email":"a@b","partner_key":"bp"}`, "'email' is too short"},
			{"name too long", "POST", "/api/v2/customers", `{"customer_key":"n1","email":"n1@x.test","partner_key":"bp","name":"` + strings.Repeat("x", 101) + `"}`, "'name' is too long"},
			{"member_key", "POST", "/api/v2/customers", `{"customer_key":"n1","email":"n1@x.test","partner_key":"bp","member_key":"m"}`, "'member_key'"},
			{"meta not object", "POST", "/api/v2/customers", `{"customer_key":"n1","email":"n1@x.test","partner_key":"bp","meta":"x"}`, "'meta' is not of type 'object'"},
			{"empty customer_key", "POST", "/api/v2/customers", `{"customer_key":"","email":"n1@x.test","partner_key":"bp"}`, "'customer_key' must not be empty"},
			{"partnership no email", "POST", "/api/v2/partnerships", `{"first_name":"x"}`, "'email' is a required property"},
			{"partnership bad email", "POST", "/api/v2/partnerships", `{"email":"nope"}`, "'email' is not a valid email"},
			{"first_name too long", "POST", "/api/v2/partnerships", `{"email":"n@x.test","first_name":"` + strings.Repeat("x", 51) + `"}`, "'first_name' is too long"},
			{"tags not strings", "POST", "/api/v2/partnerships", `{"email":"n@x.test","tags":[1]}`, "'tags'"},
			{"fields not objects", "POST", "/api/v2/partnerships", `{"email":"n@x.test","fields":[1]}`, "'fields' must be an array of objects"},
			{"bad manager email", "PATCH", "/api/v2/partnerships/bp", `{"manager_email":"not-an-email"}`, "'manager_email' is not a valid email"},
			{"patch unknown field", "PATCH", "/api/v2/customers/bc", `{"colour":"red"}`, "('colour' was unexpected)"},
			{"patch email null", "PATCH", "/api/v2/customers/bc", `{"email":null}`, "'email'"},
			{"group without name", "POST", "/api/v2/groups", `{}`, "'name' is a required property"},
			{"group empty name", "POST", "/api/v2/groups", `{"name":"  "}`, "'name'"},
			{"group symbols only", "POST", "/api/v2/groups", `{"name":"!!!"}`, "'name' must contain"},
			{"NUL in a string", "POST", "/api/v2/transactions", `{"customer_key":"bc\u0000","amount":1,"currency":"USD"}`, "'customer_key' must not contain NUL"},
			{"NUL in tags", "PATCH", "/api/v2/partnerships/bp", `{"tags":["a\u0000"]}`, "'tags' must not contain NUL"},
			{"NUL in path", "GET", "/api/v2/customers/bc%00", ``, "NUL or invalid UTF-8"},
			{"NUL in query", "GET", "/api/v2/customers?partner_key=%00", ``, "'partner_key' contains NUL"},
			{"invalid UTF-8 in query", "GET", "/api/v2/transactions?currency=%ff", ``, "'currency' contains NUL or invalid UTF-8"},
			{"bad query encoding", "GET", "/api/v2/transactions?currency=%zz", ``, "malformed"},
			{"v1 bad amount", "POST", "/v1/customers/bc/transactions", `{"amount":"5"}`, "'amount' is not of type 'integer'"},
			{"v1 bad currency", "POST", "/v1/customers/bc/transactions", `{"amount":5,"currency":"ZZZ"}`, "'currency' is not a known"},
		}
		snapshot := func() [4]int {
			return [4]int{
				e.count("/api/v2/partnerships?include_archived=true", e.prod),
				e.count("/api/v2/customers?include_archived=true", e.prod),
				e.count("/api/v2/transactions?include_archived=true", e.prod),
				e.count("/api/v2/groups", e.prod),
			}
		}
		before := snapshot()
		cust := e.must("GET", "/api/v2/customers/bc", e.prod, nil).raw
		part := e.must("GET", "/api/v2/partnerships/bp", e.prod, nil).raw
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				e.t = t
				e.fails(400, c.want, c.method, c.path, e.prod, []byte(c.body))
			})
		}
		e.t = t
		if after := snapshot(); after != before {
			t.Fatalf("bad requests wrote data: %v -> %v", before, after)
		}
		if got := e.must("GET", "/api/v2/customers/bc", e.prod, nil).raw; string(got) != string(cust) {
			t.Fatalf("bad PATCH changed the customer:\n%s\n%s", cust, got)
		}
		if got := e.must("GET", "/api/v2/partnerships/bp", e.prod, nil).raw; string(got) != string(part) {
			t.Fatalf("bad PATCH changed the partnership:\n%s\n%s", part, got)
		}
		// Unknown paths and methods answer in the envelope too.
		e.fails(404, "no such endpoint", "GET", "/api/v2/nothing", e.prod, nil)
		r := e.fails(405, "not allowed", "PUT", "/api/v2/transactions", e.prod, nil)
		if r.header.Get("Allow") != "GET, POST" {
			t.Fatalf("Allow: %q", r.header.Get("Allow"))
		}
	})
}

func manyAttrs(n int) string {
	var parts []string
	for i := 0; i < n; i++ {
		parts = append(parts, `"a`+strings.Repeat("x", i%5)+string(rune('a'+i%26))+`":1`)
	}
	return strings.Join(parts, ",")
}
