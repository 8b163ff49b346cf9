package api

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/partnerd/partnerd/internal/billing"
	"github.com/partnerd/partnerd/internal/errs"
)

// UseBilling sets the billing inbox.
func (s *Server) UseBilling(b *billing.Service) { s.billing = b }

// receiveBilling is a provider's webhook: verified on the raw body, stored,
// acknowledged. Test-mode endpoints end in /test.
func (s *Server) receiveBilling(test bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		body, err := readBody(w, r) // raw: signatures are over the bytes as sent
		if err != nil {
			return err
		}
		id, dup, err := s.billing.Receive(r.Context(), r.PathValue("provider"), r.PathValue("company"), test, r.Header, body)
		if err != nil {
			return err
		}
		msg := "Event received"
		if dup {
			msg = "Event already received"
		}
		writeData(w, map[string]any{"id": id, "duplicate": dup}, msg)
		return nil
	}
}

var billingConfigSchema = schema{strict: true, fields: []field{
	{name: "secret", kind: kString, min: 1, max: 500},
	{name: "payments_from", kind: kString, min: 1, max: 20},
	{name: "currency", kind: kString, min: 3, max: 3},
}}

type billingConfigJSON struct {
	Provider     string  `json:"provider"`
	Test         bool    `json:"test"`
	PaymentsFrom *string `json:"payments_from"`
	Currency     *string `json:"currency"`
	WebhookPath  string  `json:"webhook_path"`
	CreatedAt    int64   `json:"created_at"`
	UpdatedAt    int64   `json:"updated_at"`
}

// configureBilling stores a provider's secret for the mode of the keys used.
func (s *Server) configureBilling(w http.ResponseWriter, r *http.Request) error {
	b, err := decodeBody(w, r, billingConfigSchema)
	if err != nil {
		return err
	}
	p := principalOf(r)
	in := billing.ConfigInput{Provider: r.PathValue("provider"), Test: p.Test}
	if v := b.str("secret"); v != nil {
		in.Secret = *v
	} else {
		return errs.E(errs.Invalid, "'secret' is a required property")
	}
	if v := b.str("payments_from"); v != nil {
		in.PaymentsFrom = *v
	}
	if v := b.str("currency"); v != nil {
		in.Currency = *v
	}
	c, err := s.billing.Configure(r.Context(), p.CompanyID, in)
	if err != nil {
		return err
	}
	co, err := s.program.CompanyByID(r.Context(), p.CompanyID)
	if err != nil {
		return err
	}
	out := billingConfigJSON{Provider: c.Provider, Test: c.Test, WebhookPath: billing.WebhookPath(c.Provider, co.Key, c.Test),
		CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
	if c.PaymentsFrom != "" {
		out.PaymentsFrom = &c.PaymentsFrom
	}
	if c.Currency != "" {
		out.Currency = &c.Currency
	}
	writeData(w, out, "Billing provider configured")
	return nil
}

type billingEventJSON struct {
	ID          int64   `json:"id"`
	Provider    string  `json:"provider"`
	Test        bool    `json:"test"`
	EventID     string  `json:"event_id"`
	EventType   string  `json:"event_type"`
	Status      string  `json:"status"`
	Reason      *string `json:"reason"`
	Attempts    int     `json:"attempts"`
	NextAt      *int64  `json:"next_at"` // null once parked
	ReceivedAt  int64   `json:"received_at"`
	ProcessedAt *int64  `json:"processed_at"`
}

func renderBillingEvent(e billing.Event) billingEventJSON {
	return billingEventJSON{ID: e.ID, Provider: e.Provider, Test: e.Test, EventID: e.EventID, EventType: e.Type, Status: e.Status,
		Reason: e.Reason, Attempts: e.Attempts, NextAt: e.NextAtOrNil(), ReceivedAt: e.ReceivedAt, ProcessedAt: e.ProcessedAt}
}

// listBillingEvents lists the inbox for the mode of the keys used, newest
// first; starting_after is an event id.
func (s *Server) listBillingEvents(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	page, err := parsePage(url.Values{"limit": q["limit"]})
	if err != nil {
		return err
	}
	f := billing.EventFilter{Status: q.Get("status"), Provider: q.Get("provider")}
	if v := q.Get("starting_after"); v != "" {
		if f.BeforeID, err = strconv.ParseInt(v, 10, 64); err != nil || f.BeforeID <= 0 {
			return errs.E(errs.Invalid, "'starting_after' must be an event id")
		}
	}
	p := principalOf(r)
	items, more, err := s.billing.ListEvents(r.Context(), p.CompanyID, p.Test, f, page.Limit)
	if err != nil {
		return err
	}
	writeData(w, list{HasMore: more, Items: renderAll(items, renderBillingEvent), Total: len(items)}, "Billing events retrieved")
	return nil
}

type subscriptionJSON struct {
	Provider       string `json:"provider"`
	SubscriptionID string `json:"subscription_id"`
	CustomerKey    string `json:"customer_key"`
	Status         string `json:"status"`
	Plan           string `json:"plan"`
	EventType      string `json:"event_type"`
	EventAt        int64  `json:"event_at"`
	UpdatedAt      int64  `json:"updated_at"`
}

// listSubscriptions lists the subscription states billing providers
// reported (our extension), newest first, optionally for one customer_key.
func (s *Server) listSubscriptions(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	page, err := parsePage(url.Values{"limit": q["limit"]})
	if err != nil {
		return err
	}
	p := principalOf(r)
	items, err := s.billing.ListSubscriptions(r.Context(), p.CompanyID, p.Test, q.Get("customer_key"), page.Limit)
	if err != nil {
		return err
	}
	writeData(w, list{Items: renderAll(items, func(x billing.Subscription) subscriptionJSON {
		return subscriptionJSON{Provider: x.Provider, SubscriptionID: x.SubscriptionID, CustomerKey: x.CustomerKey, Status: x.Status,
			Plan: x.Plan, EventType: x.EventType, EventAt: x.EventAt, UpdatedAt: x.UpdatedAt}
	}), Total: len(items)}, "Subscriptions retrieved")
	return nil
}
