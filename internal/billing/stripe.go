package billing

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/partnerd/partnerd/internal/errs"
	"github.com/partnerd/partnerd/internal/ledger"
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
	Subtotal int64  `json:"subtotal"`
	Currency string `json:"currency"`
	Customer string `json:"customer"`
	Created  int64  `json:"created"`
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
		return s.stripeCustomer(ctx, p, c)
	case "charge.succeeded", "invoice.payment_succeeded":
		want := map[string]string{"charge.succeeded": FromCharge, "invoice.payment_succeeded": FromInvoice}[ev.Type]
		if cfg.PaymentsFrom != want {
			return ignored("payments are counted from %s events (the payments_from setting)", map[string]string{FromCharge: "charge.succeeded",
				FromInvoice: "invoice.payment_succeeded"}[cfg.PaymentsFrom]), nil
		}
		if ev.Type == "charge.succeeded" {
			var c stripeCharge
			if err := json.Unmarshal(ev.Data.Object, &c); err != nil || c.ID == "" {
				return ignored("the charge object is malformed"), nil
			}
			return s.payment(ctx, p, "stripe:"+c.ID, c.Customer, c.Amount, c.Currency, c.Created*1000)
		}
		var inv stripeInvoice
		if err := json.Unmarshal(ev.Data.Object, &inv); err != nil || inv.ID == "" {
			return ignored("the invoice object is malformed"), nil
		}
		// PartnerStack counts an invoice's subtotal (before tax and discounts on the total).
		return s.payment(ctx, p, "stripe:"+inv.ID, inv.Customer, inv.Subtotal, inv.Currency, inv.Created*1000)
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
		full := c.Refunded || c.AmountRefunded >= c.Amount
		return s.refund(ctx, p, key, c.AmountRefunded, full, c.Currency)
	}
	return ignored("partnerd does not use %s events", ev.Type), nil
}

// stripeCustomer links a Stripe customer to ours by metadata.customer_key
// (or customer_id) and stores its id as provider_key; with
// metadata.partner_key too, a customer partnerd does not have is created
// and attributed.
func (s *Service) stripeCustomer(ctx context.Context, p program.Principal, c stripeCustomer) (outcome, error) {
	key := c.Metadata["customer_key"]
	if key == "" {
		key = c.Metadata["customer_id"]
	}
	if key == "" || c.ID == "" {
		return ignored("the Stripe customer has no metadata.customer_key (or customer_id)"), nil
	}
	provider := c.ID
	_, err := s.program.ResolveCustomer(ctx, s.db, p, program.CustomerRef{ExternalKey: key})
	switch {
	case err == nil:
		if _, err := s.program.UpdateCustomer(ctx, p, key, program.CustomerInput{ProviderKey: &provider}); err != nil {
			return outcome{}, err
		}
		return done("customer %s linked to Stripe customer %s", key, c.ID), nil
	case !errors.Is(err, program.ErrNoCustomer):
		return outcome{}, err
	}
	partner := c.Metadata["partner_key"]
	if partner == "" {
		return waiting("no customer %q yet, and no metadata.partner_key to create one", key), nil
	}
	in := program.CustomerInput{CustomerKey: &key, PartnerKey: &partner, ProviderKey: &provider, Source: "stripe", EmailOptional: true}
	if c.Email != "" {
		in.Email = &c.Email
	}
	if c.Name != "" {
		in.Name = &c.Name
	}
	if _, _, err := s.program.CreateCustomer(ctx, p, in); err != nil {
		if errs.CodeOf(err) == errs.Internal {
			return outcome{}, err
		}
		return waiting("cannot create customer %q: %s", key, errs.MessageOf(err)), nil
	}
	return done("customer %s created for partner %s from Stripe customer %s", key, partner, c.ID), nil
}

// payment records a provider payment as a transaction keyed by the
// provider's id, so a redelivery never adds money.
func (s *Service) payment(ctx context.Context, p program.Principal, key, providerCustomer string, amount int64, currency string, at int64) (outcome, error) {
	if providerCustomer == "" {
		return ignored("the payment names no customer"), nil
	}
	if amount <= 0 {
		return ignored("a payment of %d earns nothing", amount), nil
	}
	in := ledger.TransactionInput{Customer: program.CustomerRef{ProviderKey: providerCustomer}, Amount: amount,
		Currency: strings.ToUpper(currency), Key: key}
	if at > 0 && at <= s.now() {
		in.CreatedAt = &at
	}
	t, replayed, err := s.ledger.CreateTransaction(ctx, p, in)
	if errors.Is(err, program.ErrNoCustomer) {
		return waiting("no customer has provider_key %s yet", providerCustomer), nil
	}
	if err != nil {
		return outcome{}, err
	}
	if replayed {
		return done("transaction %s was already recorded", t.Key), nil
	}
	return done("transaction %s: %d %s for customer %s", t.Key, t.Amount, t.Currency, t.CustomerKey), nil
}

// refund reverses a payment. Providers report the running refunded total:
// a partial refund records the increase as a negative transaction; a full
// refund deletes the payment (reversing its rewards, or clawing them back
// once paid) and the partial refunds recorded before it.
func (s *Service) refund(ctx context.Context, p program.Principal, paymentKey string, refundedTotal int64, full bool, currency string) (outcome, error) {
	pay, err := s.ledger.GetTransaction(ctx, p, paymentKey)
	if errs.CodeOf(err) == errs.NotFound {
		return waiting("the refunded payment %s has not arrived yet", paymentKey), nil
	}
	if err != nil {
		return outcome{}, err
	}
	var before int64
	var keys []string
	var keysJSON string
	err = s.db.QueryRow(ctx, "SELECT refunded, refund_keys FROM billing_refunds WHERE company_id = ? AND payment_key = ?",
		p.CompanyID, paymentKey).Scan(&before, &keysJSON)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return outcome{}, fmt.Errorf("read refunds so far: %w", err)
	}
	if keysJSON != "" {
		if err := json.Unmarshal([]byte(keysJSON), &keys); err != nil {
			return outcome{}, fmt.Errorf("read refunds so far: %w", err)
		}
	}
	if full {
		for _, k := range append(keys, paymentKey) {
			if _, err := s.ledger.DeleteTransaction(ctx, p, k); err != nil && errs.CodeOf(err) != errs.NotFound {
				return outcome{}, err
			}
		}
		if err := s.saveRefunds(ctx, p.CompanyID, paymentKey, pay.Amount, keys); err != nil {
			return outcome{}, err
		}
		return done("payment %s fully refunded: deleted with its %d partial refunds", paymentKey, len(keys)), nil
	}
	if pay.Archived {
		return done("payment %s was already deleted", paymentKey), nil
	}
	delta := refundedTotal - before
	if delta <= 0 {
		return done("refunds of %s already recorded up to %d", paymentKey, before), nil
	}
	key := fmt.Sprintf("%s:refunded:%d", paymentKey, refundedTotal)
	in := ledger.TransactionInput{Customer: program.CustomerRef{Key: pay.CustomerKey}, Amount: -delta, Currency: strings.ToUpper(currency), Key: key}
	if _, _, err := s.ledger.CreateTransaction(ctx, p, in); err != nil {
		return outcome{}, err
	}
	if err := s.saveRefunds(ctx, p.CompanyID, paymentKey, refundedTotal, append(keys, key)); err != nil {
		return outcome{}, err
	}
	return done("partial refund of %s: %d more (%d in all)", paymentKey, delta, refundedTotal), nil
}

func (s *Service) saveRefunds(ctx context.Context, companyID int64, paymentKey string, refunded int64, keys []string) error {
	b, _ := json.Marshal(keys)
	if _, err := s.db.Exec(ctx, `INSERT INTO billing_refunds (company_id, payment_key, refunded, refund_keys, updated_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (company_id, payment_key) DO UPDATE SET refunded = excluded.refunded, refund_keys = excluded.refund_keys,
		updated_at = excluded.updated_at`, companyID, paymentKey, refunded, string(b), s.now()); err != nil {
		return fmt.Errorf("record refunds: %w", err)
	}
	return nil
}
