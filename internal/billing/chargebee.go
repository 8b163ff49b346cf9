package billing

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/partnerd/partnerd/internal/program"
)

// chargebeeEvent is the part of a Chargebee (v2) event partnerd reads.
type chargebeeEvent struct {
	ID         string `json:"id"`
	EventType  string `json:"event_type"`
	OccurredAt int64  `json:"occurred_at"` // unix seconds
	APIVersion string `json:"api_version"`
	Content    struct {
		Customer     *chargebeeCustomer     `json:"customer"`
		Transaction  *chargebeeTransaction  `json:"transaction"`
		Subscription *chargebeeSubscription `json:"subscription"`
	} `json:"content"`
}

type chargebeeCustomer struct {
	ID        string          `json:"id"`
	Email     string          `json:"email"`
	FirstName string          `json:"first_name"`
	LastName  string          `json:"last_name"`
	MetaData  json.RawMessage `json:"meta_data"`
}

type chargebeeTransaction struct {
	ID                     string `json:"id"`
	CustomerID             string `json:"customer_id"`
	Type                   string `json:"type"` // payment, refund, authorization, payment_reversal
	Status                 string `json:"status"`
	Amount                 int64  `json:"amount"` // minor units
	CurrencyCode           string `json:"currency_code"`
	Date                   int64  `json:"date"` // unix seconds
	RefundedTxnID          string `json:"refunded_txn_id"`
	ReferenceTransactionID string `json:"reference_transaction_id"`
}

type chargebeeSubscription struct {
	ID                string `json:"id"`
	CustomerID        string `json:"customer_id"`
	Status            string `json:"status"`
	PlanID            string `json:"plan_id"` // product catalog 1.0
	SubscriptionItems []struct {
		ItemPriceID string `json:"item_price_id"`
		ItemType    string `json:"item_type"`
	} `json:"subscription_items"` // product catalog 2.0
}

// meta reads a string from a Chargebee meta_data object (any JSON; the
// vendor writes it), or "".
func (c *chargebeeCustomer) meta(name string) string {
	if c == nil || len(c.MetaData) == 0 {
		return ""
	}
	var m map[string]any
	if json.Unmarshal(c.MetaData, &m) != nil {
		return ""
	}
	switch v := m[name].(type) {
	case string:
		return strings.TrimSpace(v)
	case float64:
		return fmt.Sprint(v)
	}
	return ""
}

func (c *chargebeeCustomer) name() string {
	if c == nil {
		return ""
	}
	return strings.TrimSpace(c.FirstName + " " + c.LastName)
}

// chargebeeSubscriptionEvents are recorded as subscription state
// (PartnerStack's "subscription records"); they never carry money.
var chargebeeSubscriptionEvents = map[string]bool{
	"subscription_created": true, "subscription_started": true, "subscription_activated": true, "subscription_renewed": true,
	"subscription_changed": true, "subscription_cancelled": true, "subscription_reactivated": true, "subscription_deleted": true,
	"subscription_paused": true, "subscription_resumed": true,
}

// handleChargebee maps a Chargebee event the way PartnerStack does: the
// customer is the one whose customer_key is customer.meta_data.customer_key.
func (s *Service) handleChargebee(ctx context.Context, p program.Principal, e Event) (outcome, error) {
	var ev chargebeeEvent
	if err := json.Unmarshal(e.Body, &ev); err != nil {
		return ignored("not a Chargebee event: %v", err), nil
	}
	if ev.APIVersion != "" && ev.APIVersion != "v2" {
		return ignored("Chargebee %s webhooks are not supported: set the webhook's API version to v2", ev.APIVersion), nil
	}
	cu := ev.Content.Customer
	key := cu.meta("customer_key")
	switch {
	case ev.EventType == "customer_created" || ev.EventType == "customer_changed":
		if cu == nil {
			return ignored("the event has no customer"), nil
		}
		return s.customer(ctx, p, providerCustomer{provider: Chargebee, id: cu.ID, customerKey: key, partnerKey: cu.meta("partner_key"),
			email: cu.Email, name: cu.name()})
	case ev.EventType == "payment_succeeded":
		t := ev.Content.Transaction
		if t == nil || t.ID == "" {
			return ignored("the event has no transaction"), nil
		}
		if t.Type != "" && t.Type != "payment" {
			return ignored("transaction %s is a %s, not a payment", t.ID, t.Type), nil
		}
		in := paymentIn{key: "chargebee:" + t.ID, amount: t.Amount, currency: t.CurrencyCode, at: t.Date * 1000}
		switch {
		case key != "":
			in.customer, in.who, in.waitFor = program.CustomerRef{ExternalKey: key}, "customer_key "+key, waitCustomer(key)
		case t.CustomerID != "":
			// No customer_key on the Chargebee customer: one linked by an
			// earlier customer event (or the API's provider_key) still matches.
			in.customer, in.who, in.waitFor = program.CustomerRef{ProviderKey: t.CustomerID}, "provider_key "+t.CustomerID, waitProvider(t.CustomerID)
		}
		return s.payment(ctx, p, in)
	case ev.EventType == "payment_refunded":
		t := ev.Content.Transaction
		if t == nil || t.ID == "" {
			return ignored("the event has no transaction"), nil
		}
		paid := t.RefundedTxnID
		if paid == "" {
			paid = t.ReferenceTransactionID
		}
		if paid == "" {
			return ignored("refund %s names no refunded payment (refunded_txn_id)", t.ID), nil
		}
		// Chargebee sends each refund as its own transaction.
		return s.refund(ctx, p, refundIn{paymentKey: "chargebee:" + paid, refundKey: "chargebee:" + t.ID, total: -1, amount: t.Amount, what: "refund"})
	case ev.EventType == "payment_failed":
		t := ev.Content.Transaction
		if t == nil || t.ID == "" {
			return ignored("the event has no transaction"), nil
		}
		// A card declined at once never had a payment_succeeded: there is
		// nothing to remove. A late failure (a direct debit bouncing days
		// after it was reported paid) removes the payment, as PartnerStack does.
		if t.Status != "late_failure" {
			return done("payment %s failed (%s); nothing was recorded for it", t.ID, t.Status), nil
		}
		return s.refund(ctx, p, refundIn{paymentKey: "chargebee:" + t.ID, refundKey: "chargebee:" + t.ID + ":failed", total: -1, full: true,
			what: "late payment failure"})
	case chargebeeSubscriptionEvents[ev.EventType]:
		sub := ev.Content.Subscription
		if sub == nil {
			return ignored("the event has no subscription"), nil
		}
		plan := sub.PlanID
		for _, it := range sub.SubscriptionItems {
			if plan == "" && (it.ItemType == "plan" || it.ItemType == "") {
				plan = it.ItemPriceID
			}
		}
		if key == "" {
			return ignored("subscription %s: the Chargebee customer has no meta_data.customer_key", sub.ID), nil
		}
		return s.recordState(ctx, p, subscriptionState{provider: Chargebee, id: sub.ID, customerKey: key, status: sub.Status, plan: plan,
			eventType: ev.EventType, at: ev.OccurredAt * 1000})
	}
	return ignored("partnerd does not use %s events", ev.EventType), nil
}
