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
	"github.com/partnerd/partnerd/internal/store"
)

// paymentIn is a provider payment, whatever the provider.
type paymentIn struct {
	key      string              // the transaction key: "<provider>:<the provider's payment id>"
	customer program.CustomerRef // how the provider names the customer
	who      string              // the same, for reasons ("customer_key u1")
	waitFor  string              // what to wait for while that customer does not exist
	amount   int64               // minor units
	currency string
	at       int64    // epoch ms; 0 for now
	links    []string // other provider ids that name this payment (billing_links)
}

// payment records a provider payment as a transaction keyed by the
// provider's id, so a redelivery never adds money.
func (s *Service) payment(ctx context.Context, p program.Principal, in paymentIn) (outcome, error) {
	if in.who == "" {
		return ignored("the payment names no customer"), nil
	}
	if in.amount <= 0 {
		return ignored("a payment of %d earns nothing", in.amount), nil
	}
	if in.currency == "" {
		return ignored("the payment names no currency"), nil
	}
	// Links first: a refund or dispute naming the payment by another id
	// finds it even if this event has to wait for its customer.
	var provides []string
	for _, ref := range in.links {
		if err := s.link(ctx, p, ref, in.key); err != nil {
			return outcome{}, err
		}
		provides = append(provides, waitLink(ref))
	}
	tin := ledger.TransactionInput{Customer: in.customer, Amount: in.amount, Currency: strings.ToUpper(in.currency), Key: in.key}
	if in.at > 0 && in.at <= s.now() {
		tin.CreatedAt = &in.at
	}
	t, replayed, err := s.ledger.CreateTransaction(ctx, p, tin)
	if errors.Is(err, program.ErrNoCustomer) {
		return waiting(in.waitFor, "no customer with %s yet", in.who).provide(provides...), nil
	}
	if err != nil {
		return outcome{}, err
	}
	if replayed {
		return done("transaction %s was already recorded", t.Key).provide(append(provides, waitPayment(t.Key))...), nil
	}
	return done("transaction %s: %d %s for customer %s", t.Key, t.Amount, t.Currency, t.CustomerKey).provide(append(provides, waitPayment(t.Key))...), nil
}

// link records that a provider's secondary id (an invoice's charge, a
// Recurly invoice) names a payment transaction.
func (s *Service) link(ctx context.Context, p program.Principal, ref, paymentKey string) error {
	if _, err := s.db.Exec(ctx, `INSERT INTO billing_links (company_id, test, ref, payment_key) VALUES (?, ?, ?, ?)
		ON CONFLICT (company_id, test, ref) DO UPDATE SET payment_key = excluded.payment_key`,
		p.CompanyID, store.Bool(p.Test), ref, paymentKey); err != nil {
		return fmt.Errorf("link %s to payment %s: %w", ref, paymentKey, err)
	}
	return nil
}

// linked finds the payment a secondary id names, or "".
func (s *Service) linked(ctx context.Context, p program.Principal, ref string) (string, error) {
	var key string
	err := s.db.QueryRow(ctx, "SELECT payment_key FROM billing_links WHERE company_id = ? AND test = ? AND ref = ?",
		p.CompanyID, store.Bool(p.Test), ref).Scan(&key)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("find the payment %s names: %w", ref, err)
	}
	return key, nil
}

// refundIn is a refund of a recorded payment. Stripe reports the running
// refunded total on the charge (total >= 0); Chargebee, Chargify and Recurly
// send each refund as its own object with its own id and amount (total < 0,
// amount set). full says the provider reports the payment wholly reversed
// (a void, a lost dispute, a failed payment).
type refundIn struct {
	paymentKey string
	refundKey  string // the negative transaction's key; unique per refund
	total      int64  // the running refunded total, or -1
	amount     int64  // this refund's amount when total is -1
	full       bool
	what       string // "refund", "void", "lost dispute": for reasons
}

// refund reverses a payment. A partial refund records the increase as a
// negative transaction (its rewards are negative under percent offers); a
// refund that reaches the payment's amount, or a full reversal, deletes the
// payment (reversing its rewards, or clawing them back once paid) and the
// partial refunds recorded before it. A refund before its payment waits.
func (s *Service) refund(ctx context.Context, p program.Principal, in refundIn) (outcome, error) {
	pay, err := s.ledger.GetTransaction(ctx, p, in.paymentKey)
	if errs.CodeOf(err) == errs.NotFound {
		return waiting(waitPayment(in.paymentKey), "the payment %s (%s) has not arrived yet", in.paymentKey, in.what), nil
	}
	if err != nil {
		return outcome{}, err
	}
	if pay.Archived {
		return done("payment %s was already deleted", in.paymentKey), nil
	}
	before, keys, err := s.refundsSoFar(ctx, p.CompanyID, in.paymentKey)
	if err != nil {
		return outcome{}, err
	}
	for _, k := range keys {
		if k == in.refundKey {
			return done("%s %s was already recorded", in.what, in.refundKey), nil
		}
	}
	total := in.total
	if total < 0 {
		total = before + in.amount
	}
	if in.full || total >= pay.Amount {
		for _, k := range append(keys, in.paymentKey) {
			if _, err := s.ledger.DeleteTransaction(ctx, p, k); err != nil && errs.CodeOf(err) != errs.NotFound {
				return outcome{}, err
			}
		}
		if err := s.saveRefunds(ctx, p.CompanyID, in.paymentKey, pay.Amount, append(keys, in.refundKey)); err != nil {
			return outcome{}, err
		}
		return done("payment %s fully reversed (%s): deleted with its %d partial refunds", in.paymentKey, in.what, len(keys)), nil
	}
	delta := total - before
	if delta <= 0 {
		return done("refunds of %s already recorded up to %d", in.paymentKey, before), nil
	}
	tin := ledger.TransactionInput{Customer: program.CustomerRef{Key: pay.CustomerKey}, Amount: -delta, Currency: pay.Currency, Key: in.refundKey}
	if _, _, err := s.ledger.CreateTransaction(ctx, p, tin); err != nil {
		return outcome{}, err
	}
	if err := s.saveRefunds(ctx, p.CompanyID, in.paymentKey, total, append(keys, in.refundKey)); err != nil {
		return outcome{}, err
	}
	return done("partial %s of %s: %d more (%d in all)", in.what, in.paymentKey, delta, total), nil
}

func (s *Service) refundsSoFar(ctx context.Context, companyID int64, paymentKey string) (int64, []string, error) {
	var before int64
	var keys []string
	var keysJSON string
	err := s.db.QueryRow(ctx, "SELECT refunded, refund_keys FROM billing_refunds WHERE company_id = ? AND payment_key = ?",
		companyID, paymentKey).Scan(&before, &keysJSON)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, nil, fmt.Errorf("read refunds so far: %w", err)
	}
	if keysJSON != "" {
		if err := json.Unmarshal([]byte(keysJSON), &keys); err != nil {
			return 0, nil, fmt.Errorf("read refunds so far: %w", err)
		}
	}
	return before, keys, nil
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

// providerCustomer is a provider's customer event: the customer whose
// customer_key the provider carries gets provider_key = the provider's
// customer id. A customer partnerd does not have is created and attributed
// when the event also names a partner_key (PartnerStack does this for
// Stripe); otherwise the event waits for the customer (the snippet or the
// API may create it a moment later).
type providerCustomer struct {
	provider, id, customerKey, partnerKey, email, name string
}

func (s *Service) customer(ctx context.Context, p program.Principal, c providerCustomer) (outcome, error) {
	if c.customerKey == "" {
		return ignored("the %s customer carries no customer_key", c.provider), nil
	}
	key := c.customerKey
	provides := []string{waitCustomer(key)}
	var provider *string
	if c.id != "" {
		provider = &c.id
		provides = append(provides, waitProvider(c.id))
	}
	_, err := s.program.ResolveCustomer(ctx, s.db, p, program.CustomerRef{ExternalKey: key})
	switch {
	case err == nil:
		if provider == nil {
			return done("customer %s exists; the %s customer has no id to link", key, c.provider), nil
		}
		if _, err := s.program.UpdateCustomer(ctx, p, key, program.CustomerInput{ProviderKey: provider}); err != nil {
			return outcome{}, err
		}
		return done("customer %s linked to %s customer %s", key, c.provider, c.id).provide(provides...), nil
	case !errors.Is(err, program.ErrNoCustomer):
		return outcome{}, err
	}
	if c.partnerKey == "" {
		return waiting(waitCustomer(key), "no customer %q yet, and no partner_key to create one", key), nil
	}
	in := program.CustomerInput{CustomerKey: &key, PartnerKey: &c.partnerKey, ProviderKey: provider, Source: c.provider, EmailOptional: true}
	if c.email != "" {
		in.Email = &c.email
	}
	if c.name != "" {
		in.Name = &c.name
	}
	if _, _, err := s.program.CreateCustomer(ctx, p, in); err != nil {
		if errs.CodeOf(err) == errs.Internal {
			return outcome{}, err
		}
		return waiting(waitCustomer(key), "cannot create customer %q: %s", key, errs.MessageOf(err)), nil
	}
	return done("customer %s created for partner %s from %s customer %s", key, c.partnerKey, c.provider, c.id).provide(provides...), nil
}
