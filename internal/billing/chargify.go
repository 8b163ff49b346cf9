package billing

import (
	"context"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/partnerd/partnerd/internal/program"
)

// chargifyStateEvents are recorded as subscription state, never money:
// a new subscription fires signup_success and payment_success both, and
// only payment_success counts (PartnerStack does the same).
var chargifyStateEvents = map[string]bool{
	"signup_success": true, "subscription_state_change": true, "subscription_product_change": true,
	"renewal_success": true, "renewal_failure": true, "component_allocation_change": true,
}

// chargifyTime reads Chargify's timestamps ("2016-11-08 16:22:20 -0500",
// the site's zone; or ISO 8601) as epoch ms, or 0.
func chargifyTime(v string) int64 {
	for _, layout := range []string{"2006-01-02 15:04:05 -0700", time.RFC3339Nano, "2006-01-02T15:04:05-07:00"} {
		if t, err := time.Parse(layout, strings.TrimSpace(v)); err == nil {
			return t.UnixMilli()
		}
	}
	return 0
}

// handleChargify maps a Chargify/Maxio Advanced Billing event (form-encoded
// with bracketed keys) the way PartnerStack does: the customer is the one
// whose customer_key is payload[subscription][customer][reference].
func (s *Service) handleChargify(ctx context.Context, p program.Principal, e Event) (outcome, error) {
	v, err := url.ParseQuery(string(e.Body))
	if err != nil {
		return ignored("not a Chargify event: %v", err), nil
	}
	event := v.Get("event")
	ref := strings.TrimSpace(v.Get("payload[subscription][customer][reference]"))
	switch {
	case event == "payment_success":
		id := v.Get("payload[transaction][id]")
		if id == "" {
			return ignored("the payment has no payload[transaction][id]"), nil
		}
		if ok := v.Get("payload[transaction][success]"); ok == "false" {
			return ignored("transaction %s did not succeed", id), nil
		}
		amount, err := strconv.ParseInt(v.Get("payload[transaction][amount_in_cents]"), 10, 64)
		if err != nil {
			return ignored("payload[transaction][amount_in_cents] is not a whole number: %q", v.Get("payload[transaction][amount_in_cents]")), nil
		}
		if ref == "" {
			return ignored("transaction %s: the Chargify customer has no reference (partnerd's customer_key)", id), nil
		}
		cur, err := s.siteCurrency(ctx, p, Chargify, v.Get("payload[subscription][currency]"), v.Get("payload[transaction][currency]"))
		if err != nil {
			return outcome{}, err
		}
		return s.payment(ctx, p, paymentIn{key: "chargify:" + id, customer: program.CustomerRef{ExternalKey: ref}, who: "customer_key " + ref,
			waitFor: waitCustomer(ref), amount: amount, currency: cur, at: chargifyTime(v.Get("payload[transaction][created_at]"))})
	case event == "refund_success":
		refundID, paymentID := v.Get("payload[refund_id]"), v.Get("payload[payment_id]")
		if refundID == "" || paymentID == "" {
			return ignored("the refund has no payload[refund_id] or payload[payment_id]"), nil
		}
		amount, err := strconv.ParseInt(v.Get("payload[amount_in_cents]"), 10, 64)
		if err != nil || amount <= 0 {
			return ignored("payload[amount_in_cents] is not a positive whole number: %q", v.Get("payload[amount_in_cents]")), nil
		}
		// Each refund has its own id: several partial refunds add up.
		return s.refund(ctx, p, refundIn{paymentKey: "chargify:" + paymentID, refundKey: "chargify:refund:" + refundID, total: -1,
			amount: amount, what: "refund"})
	case chargifyStateEvents[event]:
		id := v.Get("payload[subscription][id]")
		if ref == "" {
			return ignored("subscription %s: the Chargify customer has no reference (partnerd's customer_key)", id), nil
		}
		plan := v.Get("payload[subscription][product][handle]")
		if plan == "" {
			plan = v.Get("payload[subscription][product][name]")
		}
		return s.recordState(ctx, p, subscriptionState{provider: Chargify, id: id, customerKey: ref,
			status: v.Get("payload[subscription][state]"), plan: plan, eventType: event,
			at: chargifyTime(v.Get("payload[subscription][updated_at]"))})
	}
	return ignored("partnerd does not use %s events", event), nil
}

// siteCurrency is the first currency the payload names, or the one
// configured for the provider (Chargify and Recurly payloads may name none).
func (s *Service) siteCurrency(ctx context.Context, p program.Principal, provider string, named ...string) (string, error) {
	for _, c := range named {
		if c = strings.TrimSpace(c); c != "" {
			return c, nil
		}
	}
	cfg, _, err := s.config(ctx, p.CompanyID, provider, p.Test)
	if err != nil {
		return "", err
	}
	if cfg.Currency == "" {
		return "USD", nil
	}
	return cfg.Currency, nil
}
