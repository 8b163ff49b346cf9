package billing

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/partnerd/partnerd/internal/errs"
	"github.com/partnerd/partnerd/internal/program"
)

// stripeEvent is the part of a Stripe event partnerd reads.
type stripeEvent struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Livemode bool   `json:"livemode"`
	Data     struct {
		Object json.RawMessage `json:"object"`
	} `json:"data"`
}

type stripeCustomer struct {
	ID       string            `json:"id"`
	Email    string            `json:"email"`
	Name     string            `json:"name"`
	Metadata map[string]string `json:"metadata"`
}

type stripeCharge struct {
	ID             string `json:"id"`
	Amount         int64  `json:"amount"`
	AmountRefunded int64  `json:"amount_refunded"`
	Refunded       bool   `json:"refunded"`
	Currency       string `json:"currency"`
	Customer       string `json:"customer"`
	Invoice        string `json:"invoice"`
	Created        int64  `json:"created"`
}

type stripeInvoice struct {
	ID       string `json:"id"`
	Charge   string `json:"charge"`
	Subtotal int64  `json:"subtotal"`
	Currency string `json:"currency"`
	Customer string `json:"customer"`
	Created  int64  `json:"created"`
}

type stripeDispute struct {
	ID       string `json:"id"`
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
	Charge   string `json:"charge"`
	Reason   string `json:"reason"`
	Status   string `json:"status"`
}

func stripePayment(key, customer string, amount int64, currency string, created int64) paymentIn {
	return paymentIn{key: key, customer: program.CustomerRef{ProviderKey: customer}, who: "provider_key " + customer,
		waitFor: waitProvider(customer), amount: amount, currency: currency, at: created * 1000}
}

// handleStripe maps a Stripe event the way PartnerStack does.
func (s *Service) handleStripe(ctx context.Context, p program.Principal, e Event) (outcome, error) {
	var ev stripeEvent
	if err := json.Unmarshal(e.Body, &ev); err != nil {
		return ignored("not a Stripe event: %v", err), nil
	}
	if ev.Livemode == e.Test {
		return ignored("livemode is %t on the %s endpoint", ev.Livemode, map[bool]string{true: "test", false: "production"}[e.Test]), nil
	}
	cfg, _, err := s.config(ctx, e.CompanyID, Stripe, e.Test)
	if err != nil {
		return outcome{}, err
	}
	switch ev.Type {
	case "customer.created", "customer.updated":
		var c stripeCustomer
		if err := json.Unmarshal(ev.Data.Object, &c); err != nil {
			return ignored("the customer object is malformed: %v", err), nil
		}
		key := c.Metadata["customer_key"]
		if key == "" {
			key = c.Metadata["customer_id"]
		}
		return s.customer(ctx, p, providerCustomer{provider: Stripe, id: c.ID, customerKey: key, partnerKey: c.Metadata["partner_key"],
			email: c.Email, name: c.Name})
	case "charge.succeeded", "invoice.payment_succeeded":
		want := map[string]string{"charge.succeeded": FromCharge, "invoice.payment_succeeded": FromInvoice}[ev.Type]
		if cfg.PaymentsFrom != want {
			ref, err := s.linkInvoiceCharge(ctx, p, ev)
			if err != nil {
				return outcome{}, err
			}
			return ignored("payments are counted from %s events (the payments_from setting)", map[string]string{FromCharge: "charge.succeeded",
				FromInvoice: "invoice.payment_succeeded"}[cfg.PaymentsFrom]).provide(ref...), nil
		}
		if ev.Type == "charge.succeeded" {
			var c stripeCharge
			if err := json.Unmarshal(ev.Data.Object, &c); err != nil || c.ID == "" {
				return ignored("the charge object is malformed"), nil
			}
			return s.payment(ctx, p, stripePayment("stripe:"+c.ID, c.Customer, c.Amount, c.Currency, c.Created))
		}
		var inv stripeInvoice
		if err := json.Unmarshal(ev.Data.Object, &inv); err != nil || inv.ID == "" {
			return ignored("the invoice object is malformed"), nil
		}
		// PartnerStack counts an invoice's subtotal (before tax and discounts on the total).
		in := stripePayment("stripe:"+inv.ID, inv.Customer, inv.Subtotal, inv.Currency, inv.Created)
		if inv.Charge != "" {
			in.links = []string{"stripe:charge:" + inv.Charge} // disputes name the charge
		}
		return s.payment(ctx, p, in)
	case "charge.refunded":
		var c stripeCharge
		if err := json.Unmarshal(ev.Data.Object, &c); err != nil || c.ID == "" {
			return ignored("the charge object is malformed"), nil
		}
		key := "stripe:" + c.ID
		if cfg.PaymentsFrom == FromInvoice {
			if c.Invoice == "" {
				return ignored("the refunded charge names no invoice, and payments are counted from invoices"), nil
			}
			key = "stripe:" + c.Invoice
		}
		return s.refund(ctx, p, refundIn{paymentKey: key, refundKey: fmt.Sprintf("%s:refunded:%d", key, c.AmountRefunded),
			total: c.AmountRefunded, full: c.Refunded || c.AmountRefunded >= c.Amount, what: "refund"})
	case "charge.dispute.created", "charge.dispute.closed":
		var d stripeDispute
		if err := json.Unmarshal(ev.Data.Object, &d); err != nil || d.ID == "" || d.Charge == "" {
			return ignored("the dispute object is malformed"), nil
		}
		return s.stripeDispute(ctx, p, cfg, ev.Type, d)
	}
	return ignored("partnerd does not use %s events", ev.Type), nil
}

// linkInvoiceCharge remembers, from the payment event of the mode that is
// not counted, which invoice a charge paid: disputes name only the charge.
func (s *Service) linkInvoiceCharge(ctx context.Context, p program.Principal, ev stripeEvent) ([]string, error) {
	var charge, invoice string
	switch ev.Type {
	case "charge.succeeded":
		var c stripeCharge
		if json.Unmarshal(ev.Data.Object, &c) == nil {
			charge, invoice = c.ID, c.Invoice
		}
	case "invoice.payment_succeeded":
		var inv stripeInvoice
		if json.Unmarshal(ev.Data.Object, &inv) == nil {
			charge, invoice = inv.Charge, inv.ID
		}
	}
	if charge == "" || invoice == "" {
		return nil, nil
	}
	ref := "stripe:charge:" + charge
	return []string{waitLink(ref)}, s.link(ctx, p, ref, "stripe:"+invoice)
}

// stripeDispute holds a disputed payment's rewards while the dispute is
// open, releases them when it is won (or closed as a warning), and reverses
// the payment when it is lost: a dispute for less than the payment is a
// partial refund of the disputed amount.
func (s *Service) stripeDispute(ctx context.Context, p program.Principal, cfg Config, typ string, d stripeDispute) (outcome, error) {
	key := "stripe:" + d.Charge
	if cfg.PaymentsFrom == FromInvoice {
		k, err := s.linked(ctx, p, "stripe:charge:"+d.Charge)
		if err != nil {
			return outcome{}, err
		}
		if k == "" {
			return waiting(waitLink("stripe:charge:"+d.Charge), "the invoice charge %s was paid for is not known yet", d.Charge), nil
		}
		key = k
	}
	reason := "Stripe dispute " + d.ID
	closedRef := "stripe:dispute-closed:" + d.ID
	if typ == "charge.dispute.created" && d.Status != "won" && d.Status != "lost" && d.Status != "warning_closed" {
		// Deliveries come in any order: a dispute already closed is not
		// opened again by its late "created" event.
		if k, err := s.linked(ctx, p, closedRef); err != nil || k != "" {
			if err != nil {
				return outcome{}, err
			}
			return done("dispute %s was already closed", d.ID), nil
		}
		n, err := s.ledger.HoldTransaction(ctx, p, key, reason)
		if errs.CodeOf(err) == errs.NotFound {
			return waiting(waitPayment(key), "the disputed payment %s has not arrived yet", key), nil
		}
		if err != nil {
			return outcome{}, err
		}
		return done("dispute %s (%s) on %s: %d rewards on hold", d.ID, d.Reason, key, n), nil
	}
	switch d.Status {
	case "lost", "won", "warning_closed":
	default:
		return ignored("dispute %s has status %q, which changes nothing", d.ID, d.Status), nil
	}
	o := done("dispute %s closed %s", d.ID, d.Status)
	if d.Status == "lost" {
		var err error
		o, err = s.refund(ctx, p, refundIn{paymentKey: key, refundKey: "stripe:" + d.ID, total: -1, amount: d.Amount, what: "lost dispute"})
		if err != nil || o.status != StatusDone {
			return o, err
		}
	}
	if err := s.link(ctx, p, closedRef, key); err != nil {
		return outcome{}, err
	}
	// What a partial loss left of the payment, or all of a won one, is
	// no longer in doubt.
	n, err := s.ledger.ReleaseTransaction(ctx, p, key, reason)
	if err != nil && errs.CodeOf(err) != errs.NotFound {
		return outcome{}, err
	}
	o.reason += fmt.Sprintf("; %d held rewards released", n)
	return o, nil
}
