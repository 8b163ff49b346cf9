// Package billing receives billing providers' webhooks (Stripe, Chargebee,
// Chargify/Maxio, Recurly): it verifies each delivery on its raw body,
// stores it in an inbox before acknowledging it, and turns it into
// customers, transactions and reversals with a durable worker.
package billing

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v82/webhook"
)

// The providers.
const (
	Stripe    = "stripe"
	Chargebee = "chargebee"
	Chargify  = "chargify"
	Recurly   = "recurly"
)

// Providers lists them.
var Providers = []string{Stripe, Chargebee, Chargify, Recurly}

// tolerance is how far a signed timestamp may be from now, either way
// (Stripe's and Recurly's libraries use five minutes).
const tolerance = 5 * time.Minute

// ErrUnverified is returned for a delivery whose signature or credentials
// are missing or wrong; it is answered 401 and not stored.
var ErrUnverified = errors.New("billing: the delivery is not verified")

func unverified(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrUnverified}, args...)...)
}

// Verify checks that a delivery comes from the provider, on the raw body
// exactly as received, with the company's secret for it.
func Verify(provider string, h http.Header, body []byte, secret string, now time.Time) error {
	switch provider {
	case Stripe:
		return verifyStripe(h.Get("Stripe-Signature"), body, secret, now)
	case Chargebee:
		return verifyBasic(h, secret)
	case Chargify:
		return verifyChargify(h.Get("X-Chargify-Webhook-Signature-Hmac-Sha-256"), body, secret)
	case Recurly:
		if sig := h.Get("Recurly-Signature"); sig != "" {
			return verifyRecurly(sig, body, secret, now)
		}
		// Recurly signs JSON notifications only; XML ones carry HTTP Basic
		// auth, whose password must be the same endpoint key (decided).
		return verifyBasic(h, secret)
	}
	return fmt.Errorf("billing: unknown provider %q", provider)
}

// verifyStripe checks Stripe-Signature with stripe-go (every v1 value, so
// a secret being rolled works) and the timestamp against our clock both
// ways; stripe-go itself only rejects old timestamps, by the system clock.
func verifyStripe(header string, body []byte, secret string, now time.Time) error {
	if header == "" {
		return unverified("no Stripe-Signature header")
	}
	var ts int64 = -1
	for _, part := range strings.Split(header, ",") {
		if k, v, ok := strings.Cut(strings.TrimSpace(part), "="); ok && k == "t" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return unverified("Stripe-Signature has a bad timestamp")
			}
			ts = n
		}
	}
	if ts < 0 {
		return unverified("Stripe-Signature has no timestamp")
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return unverified("the Stripe timestamp is %s from now, more than 5 minutes", d.Round(time.Second))
	}
	if err := webhook.ValidatePayloadIgnoringTolerance(body, header, secret); err != nil {
		return unverified("Stripe signature: %v", err)
	}
	return nil
}

// verifyBasic checks HTTP Basic credentials against secret, "user:password"
// (or just the password when secret has no colon).
func verifyBasic(h http.Header, secret string) error {
	r := http.Request{Header: h}
	user, pass, ok := r.BasicAuth()
	if !ok {
		return unverified("no HTTP Basic credentials")
	}
	wantUser, wantPass, hasUser := strings.Cut(secret, ":")
	if !hasUser {
		wantUser, wantPass = "", secret
	}
	userOK := !hasUser || subtle.ConstantTimeCompare([]byte(user), []byte(wantUser)) == 1
	if passOK := subtle.ConstantTimeCompare([]byte(pass), []byte(wantPass)) == 1; !userOK || !passOK {
		return unverified("wrong HTTP Basic credentials")
	}
	return nil
}

func hmacHex(secret string, parts ...[]byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	for _, p := range parts {
		m.Write(p)
	}
	return []byte(hex.EncodeToString(m.Sum(nil)))
}

// verifyChargify checks the hex HMAC-SHA256 of the body under the site's
// shared key. Nothing signed carries a time, so replays are stopped by the
// inbox's event-id dedupe.
func verifyChargify(sig string, body []byte, secret string) error {
	if sig == "" {
		return unverified("no X-Chargify-Webhook-Signature-Hmac-Sha-256 header")
	}
	if !hmac.Equal([]byte(strings.ToLower(strings.TrimSpace(sig))), hmacHex(secret, body)) {
		return unverified("Chargify signature does not match")
	}
	return nil
}

// verifyRecurly checks "timestamp,signature[,signature]": the timestamp in
// milliseconds (as documented) or seconds (as the docs' example shows),
// within five minutes, and any signature matching HMAC-SHA256 of
// "timestamp.body".
func verifyRecurly(header string, body []byte, secret string, now time.Time) error {
	parts := strings.Split(header, ",")
	if len(parts) < 2 {
		return unverified("recurly-signature needs a timestamp and a signature")
	}
	tsText := strings.TrimSpace(parts[0])
	n, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil || n <= 0 {
		return unverified("recurly-signature has a bad timestamp")
	}
	at := time.UnixMilli(n)
	if n < 1e11 { // ten digits: seconds
		at = time.Unix(n, 0)
	}
	if d := now.Sub(at); d > tolerance || d < -tolerance {
		return unverified("the Recurly timestamp is %s from now, more than 5 minutes", d.Round(time.Second))
	}
	want := hmacHex(secret, []byte(tsText), []byte("."), body)
	for _, sig := range parts[1:] {
		if hmac.Equal([]byte(strings.ToLower(strings.TrimSpace(sig))), want) {
			return nil
		}
	}
	return unverified("no Recurly signature matches")
}
