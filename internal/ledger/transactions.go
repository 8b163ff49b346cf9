// Package ledger owns money: transactions now, and the offers, rewards and
// payouts computed from them. It knows nothing of HTTP.
package ledger

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/partnerd/partnerd/internal/clock"
	"github.com/partnerd/partnerd/internal/errs"
	"github.com/partnerd/partnerd/internal/money"
	"github.com/partnerd/partnerd/internal/outbox"
	"github.com/partnerd/partnerd/internal/program"
	"github.com/partnerd/partnerd/internal/secret"
	"github.com/partnerd/partnerd/internal/store"
)

// Service records transactions.
type Service struct {
	db      *store.DB
	clock   clock.Clock
	program *program.Service
	offers  *offerCache
}

// New returns a ledger over db.
func New(db *store.DB, clk clock.Clock, prog *program.Service) *Service {
	return &Service{db: db, clock: clk, program: prog, offers: &offerCache{m: map[int64]offerSet{}}}
}

// Transaction is a payment (or, with a negative amount, an adjustment) by a
// referred customer.
type Transaction struct {
	ID             int64
	Key            string
	Amount         int64
	Currency       string
	AmountUSD      *int64
	CategoryKey    *string
	ProductKey     *string
	Metadata       json.RawMessage
	Test           bool
	Archived       bool
	CreatedAt      int64
	UpdatedAt      int64
	CustomerKey    string  // the customer's internal key
	CustomerExtKey *string // the vendor's customer_key
	CustomerEmail  string
	PartnershipKey string
	PartnerKey     string
	Company        program.CompanyRef
	CustomerID     int64
	PartnershipID  int64
}

const txCols = `t.id, t.key, t.amount, t.currency, t.amount_usd, t.category_key, t.product_key, t.metadata, t.test, t.archived,
	t.created_at, t.updated_at, cu.key, cu.customer_key, cu.email, p.key, p.partner_key, c.key, c.name, t.customer_id, t.partnership_id`

const txFrom = `transactions t JOIN customers cu ON cu.id = t.customer_id JOIN partnerships p ON p.id = t.partnership_id
	JOIN companies c ON c.id = t.company_id`

func scanTx(sc store.Scanner) (Transaction, error) {
	var t Transaction
	var meta string
	err := sc.Scan(&t.ID, &t.Key, &t.Amount, &t.Currency, &t.AmountUSD, &t.CategoryKey, &t.ProductKey, &meta, &t.Test, &t.Archived,
		&t.CreatedAt, &t.UpdatedAt, &t.CustomerKey, &t.CustomerExtKey, &t.CustomerEmail, &t.PartnershipKey, &t.PartnerKey,
		&t.Company.Key, &t.Company.Name, &t.CustomerID, &t.PartnershipID)
	if err != nil {
		return t, fmt.Errorf("scan transaction: %w", err)
	}
	t.Metadata = json.RawMessage(meta)
	return t, nil
}

// TransactionInput is a transaction to record.
type TransactionInput struct {
	Customer    program.CustomerRef
	Amount      int64
	Currency    string
	Key         string // the caller's idempotency key; generated when empty
	CategoryKey *string
	ProductKey  *string
	Metadata    json.RawMessage
	CreatedAt   *int64 // backdating; now when nil
}

// maxFuture is how far ahead of the clock a backdated created_at may be,
// to absorb clock skew between the vendor's servers and ours.
const maxFuture = 24 * 60 * 60 * 1000

// CreateTransaction records a transaction. Its key is unique within the
// company: sending a key that is already stored returns the stored
// transaction and writes nothing (replayed is true), whatever the rest of
// the body says, so a retried request never records money twice.
func (s *Service) CreateTransaction(ctx context.Context, p program.Principal, in TransactionInput) (t Transaction, replayed bool, err error) {
	cur, err := money.Currency("currency", in.Currency)
	if err != nil {
		return t, false, err
	}
	if err := money.Amount("amount", in.Amount); err != nil {
		return t, false, err
	}
	now := clock.Millis(s.clock)
	created := now
	if in.CreatedAt != nil {
		if *in.CreatedAt < 0 || *in.CreatedAt > now+maxFuture {
			return t, false, errs.E(errs.Invalid, "'created_at' must be epoch milliseconds between 0 and one day from now")
		}
		created = *in.CreatedAt
	}
	key := in.Key
	if key == "" {
		key = secret.Key("tran")
	}
	// The customer is read through the read pool, so the single writer is
	// held only for the insert itself: that is what keeps ingest fast.
	cu, err := s.program.ResolveCustomer(ctx, s.db, p, in.Customer)
	if err != nil {
		return t, false, err
	}
	if cu.Archived {
		return t, false, errs.E(errs.Invalid, "the customer %s is archived and takes no new transactions", cu.Key)
	}
	if p.Test && !cu.Test {
		return t, false, errs.E(errs.Invalid, "test keys can only record transactions for test customers")
	}
	meta := metadataOrEmpty(in.Metadata)
	test := p.Test || cu.Test
	var id int64
	var amountUSD *int64
	taken := false
	err = s.db.Batched(ctx, func(q store.Querier) error {
		taken = false
		var err error
		if amountUSD, err = usdAmount(ctx, q, p.CompanyID, in.Amount, cur, created); err != nil {
			return err
		}
		id, err = outbox.Insert(ctx, q, `INSERT INTO transactions (key, company_id, customer_id, partnership_id, amount, currency,
			amount_usd, category_key, product_key, metadata, test, created_at, updated_at, group_id)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (company_id, key) DO NOTHING RETURNING id`,
			[]any{key, p.CompanyID, cu.ID, cu.PartnershipID, in.Amount, cur, amountUSD, in.CategoryKey, in.ProductKey,
				meta, store.Bool(test), created, now, cu.GroupID}, p.CompanyID, outbox.TransactionCreated, outbox.KindTransaction, now)
		if errors.Is(err, sql.ErrNoRows) {
			taken = true
			return nil
		}
		if err != nil {
			return err
		}
		c := transactionCause(cu, id, in.Amount, cur, in.ProductKey, in.CategoryKey, test, created)
		c.offersVersion = &cu.OffersVersion
		if err := firstPaid(ctx, q, cu, &c); err != nil {
			return err
		}
		// The rewards commit with the transaction or not at all.
		return s.earn(ctx, q, p.CompanyID, c)
	})
	if err == nil && taken {
		err = sql.ErrNoRows
	}
	if errors.Is(err, sql.ErrNoRows) {
		// The key is taken: this is a retry (or a race with one), and the
		// stored transaction is the answer.
		t, err = s.txBy(ctx, s.db, p, "t.key = ?", key)
		return t, err == nil, err
	}
	if err != nil {
		return t, false, fmt.Errorf("insert transaction: %w", err)
	}
	return Transaction{ID: id, Key: key, Amount: in.Amount, Currency: cur, AmountUSD: amountUSD, CategoryKey: in.CategoryKey,
		ProductKey: in.ProductKey, Metadata: json.RawMessage(meta), Test: test, CreatedAt: created, UpdatedAt: now,
		CustomerKey: cu.Key, CustomerExtKey: cu.CustomerKey, CustomerEmail: cu.Email, PartnershipKey: cu.PartnershipKey,
		PartnerKey: cu.PartnerKey, Company: cu.Company, CustomerID: cu.ID, PartnershipID: cu.PartnershipID}, false, nil
}

// firstPaid sets c's first positive transaction from the customer row,
// recording c there when c is it. The row was read before the write: a
// first transaction stamped since then is found by asking again inside it,
// which happens only until the customer has paid once.
func firstPaid(ctx context.Context, q store.Querier, cu program.Customer, c *cause) error {
	id, at := cu.FirstPaidID, cu.FirstPaidAt
	if id == nil {
		if c.amount > 0 {
			// "first_paid_id > ?" lets a lower id win a race between two
			// nodes, so the row converges on the first by arrival.
			res, err := q.Exec(ctx, `UPDATE customers SET first_paid_id = ?, first_paid_at = ?
				WHERE id = ? AND (first_paid_id IS NULL OR first_paid_id > ?)`, c.id, c.createdAt, cu.ID, c.id)
			if err != nil {
				return fmt.Errorf("record first transaction: %w", err)
			}
			if n, err := res.RowsAffected(); err != nil {
				return fmt.Errorf("record first transaction: %w", err)
			} else if n == 1 {
				c.firstID, c.firstAt, c.firstKnown = c.id, c.createdAt, true
				return nil
			}
		}
		if err := q.QueryRow(ctx, "SELECT first_paid_id, first_paid_at FROM customers WHERE id = ?", cu.ID).Scan(&id, &at); err != nil {
			return fmt.Errorf("read first transaction: %w", err)
		}
	}
	c.firstID, c.firstAt, c.firstKnown = c.id, c.createdAt, true
	if id != nil && at != nil {
		c.firstID, c.firstAt = *id, *at
	}
	return nil
}

// transactionCause describes a new transaction of cu to the engine. The
// group is the partnership's group now, which is also stored on the row.
func transactionCause(cu program.Customer, id, amount int64, currency string, product, category *string, test bool, at int64) cause {
	cid := cu.ID
	return cause{kind: TriggerTransaction, id: id, partnershipID: cu.PartnershipID, customerID: &cid, groupID: cu.GroupID, test: test,
		partnerGone: cu.PartnershipArchived, customerEmail: cu.Email, partnerEmail: cu.PartnerEmail, createdAt: at,
		amount: amount, currency: currency, productKey: product, categoryKey: category}
}

func metadataOrEmpty(m json.RawMessage) string {
	if len(m) == 0 || string(m) == "null" {
		return "{}"
	}
	return string(m)
}

func (s *Service) txBy(ctx context.Context, q store.Querier, p program.Principal, cond string, args ...any) (Transaction, error) {
	query, all := p.Scoped("SELECT "+txCols+" FROM "+txFrom, "t.company_id", "t.partnership_id", cond, args...)
	return store.One(ctx, q, "transaction", scanTx, query, all...)
}

// GetTransaction finds a transaction by its key.
func (s *Service) GetTransaction(ctx context.Context, p program.Principal, key string) (Transaction, error) {
	return s.txBy(ctx, s.db, p, "t.key = ?", key)
}

// DeleteTransaction removes a transaction from lists and totals, the way
// PartnerStack mirrors a refund. The row is kept, archived, so that its key
// stays taken: a retried create after a refund must not bring it back.
func (s *Service) DeleteTransaction(ctx context.Context, p program.Principal, key string) (Transaction, error) {
	var out Transaction
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		cur, err := s.txBy(ctx, tx, p, "t.key = ?", key)
		if err != nil {
			return err
		}
		if !cur.Archived {
			now := s.now()
			if _, err := tx.Exec(ctx, "UPDATE transactions SET archived = 1, updated_at = ? WHERE id = ?", now, cur.ID); err != nil {
				return fmt.Errorf("delete transaction: %w", err)
			}
			if err := s.reverse(ctx, tx, p.CompanyID, "transaction_id", cur.ID, "transaction "+cur.Key+" was deleted"); err != nil {
				return err
			}
			if err := outbox.Emit(ctx, tx, p.CompanyID, outbox.TransactionDeleted, outbox.KindTransaction, cur.ID, now); err != nil {
				return err
			}
		}
		out, err = s.txBy(ctx, tx, p, "t.id = ?", cur.ID)
		return err
	})
	return out, err
}

// TransactionFilter narrows a transaction list.
type TransactionFilter struct {
	CustomerKey     string // internal key or customer_key
	PartnerKey      string
	PartnershipKey  string
	Currency        string
	CategoryKey     string
	ProductKey      string
	IncludeArchived bool
}

// ListTransactions lists transactions the principal may see.
func (s *Service) ListTransactions(ctx context.Context, p program.Principal, f TransactionFilter, page store.Page) ([]Transaction, store.Result, error) {
	spec := p.List(txCols, txFrom, "t", "t.partnership_id")
	if f.CustomerKey != "" {
		spec.WhereRefAny("t.customer_id", "customers", []string{"key", "customer_key"}, p.CompanyID, f.CustomerKey)
	}
	spec.WhereRef("t.partnership_id", "partnerships", "partner_key", p.CompanyID, f.PartnerKey)
	spec.WhereRef("t.partnership_id", "partnerships", "key", p.CompanyID, f.PartnershipKey)
	if f.Currency != "" {
		spec.Where("t.currency = ?", strings.ToUpper(f.Currency))
	}
	spec.WhereSet("t.category_key = ?", f.CategoryKey)
	spec.WhereSet("t.product_key = ?", f.ProductKey)
	if !f.IncludeArchived {
		spec.Where("t.archived = 0")
	}
	page.Apply(&spec, "t")
	return store.List(ctx, s.db, spec, scanTx)
}

func (s *Service) now() int64 { return clock.Millis(s.clock) }
