package billing

import (
	"net/http"
	"testing"
	"time"
)

// FuzzParseEnvelope feeds any body to every provider's envelope parser and
// to verification: nothing may panic, and a parsed envelope always has an
// id and a type.
func FuzzParseEnvelope(f *testing.F) {
	for _, seed := range []string{
		`{"id":"evt_1","type":"charge.succeeded","data":{"object":{}}}`,
		`{"id":"ev_1","event_type":"payment_succeeded","content":{}}`,
		"id=1&event=payment_success&payload[subscription][customer][reference]=u1",
		`{"id":"x","object_type":"payment","event_type":"succeeded"}`,
		`<?xml version="1.0"?><successful_payment_notification><account><account_code>u1</account_code></account></successful_payment_notification>`,
		"", "{", "<", "%zz", "\x00\xff",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		for _, p := range Providers {
			env, err := parseEnvelope(p, "", []byte(body))
			if err == nil && (env.id == "" || env.typ == "") {
				t.Fatalf("%s: parsed %q without an id or a type: %+v", p, body, env)
			}
			h := http.Header{}
			h.Set("Stripe-Signature", body)
			h.Set("Recurly-Signature", body)
			h.Set("X-Chargify-Webhook-Signature-Hmac-Sha-256", body)
			h.Set("Authorization", body)
			if err := Verify(p, h, []byte(body), "k7Qz-unguessable-2f9c4a1d0e8b", time.Unix(1767225600, 0)); err == nil {
				t.Fatalf("%s: a random header verified: %q", p, body)
			}
		}
	})
}
