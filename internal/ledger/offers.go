package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/big"

	"github.com/partnerd/partnerd/internal/errs"
	"github.com/partnerd/partnerd/internal/money"
	"github.com/partnerd/partnerd/internal/program"
	"github.com/partnerd/partnerd/internal/secret"
	"github.com/partnerd/partnerd/internal/store"
)

// Offer triggers and types.
const (
	TriggerCustomer    = "customer"
	TriggerTransaction = "transaction"
	TriggerAction      = "action"
	TriggerLead        = "lead_approved" // a lead became approved
	TriggerDeal        = "deal_won"      // a deal reached a won stage
	TypePercent        = "percent"
	TypeFlat           = "flat"
)

// Offer is a rule that turns a cause (a sign-up, a transaction, an action)
// into a reward.
type Offer struct {
	ID              int64
	Key             string
	Name            string
	Trigger         string
	Type            string
	Rate            *string // percent offers: a decimal string, "12.5"
	Amount          *int64  // flat offers: minor units of Currency
	Currency        *string
	DurationMonths  *int // transaction offers: nil lifetime, 0 first transaction only, N months from the first
	MaxTransactions *int // transaction offers: only the customer's first N positive transactions earn
	ProductKey      *string
	CategoryKey     *string
	ActionType      *string
	HoldDays        int
	GroupID         *int64
	GroupKey        *string
	Archived        bool
	CreatedAt       int64
	UpdatedAt       int64

	rate *big.Rat
}

const offerCols = `o.id, o.key, o.name, o.trigger_on, o.type, o.rate, o.amount, o.currency, o.duration_months, o.max_transactions,
	o.product_key, o.category_key, o.action_type, o.hold_days, o.group_id, g.key, o.archived, o.created_at, o.updated_at`

const offerFrom = "offers o LEFT JOIN groups g ON g.id = o.group_id"

func scanOffer(sc store.Scanner) (Offer, error) {
	var o Offer
	err := sc.Scan(&o.ID, &o.Key, &o.Name, &o.Trigger, &o.Type, &o.Rate, &o.Amount, &o.Currency, &o.DurationMonths,
		&o.MaxTransactions, &o.ProductKey, &o.CategoryKey, &o.ActionType, &o.HoldDays, &o.GroupID, &o.GroupKey, &o.Archived,
		&o.CreatedAt, &o.UpdatedAt)
	if err != nil {
		return o, fmt.Errorf("scan offer: %w", err)
	}
	if o.Rate != nil {
		if o.rate, err = money.Decimal("rate", *o.Rate, rateplaces); err != nil {
			return o, fmt.Errorf("stored offer %s has a bad rate: %w", o.Key, err)
		}
	}
	return o, nil
}

// rateplaces is how precise a percent rate may be ("12.3456").
const rateplaces = 4

// OfferInput is an offer to create, or the changes to one: Set names the
// fields the caller sent, so that PATCH can tell "absent" from "null".
type OfferInput struct {
	Set             map[string]bool
	Name            *string
	Trigger         *string
	Type            *string
	Rate            *string
	Amount          *int64
	Currency        *string
	DurationMonths  *int
	MaxTransactions *int
	ProductKey      *string
	CategoryKey     *string
	ActionType      *string
	HoldDays        *int
	GroupKey        *string
}

// apply copies the fields in sets onto o and checks the result as a whole.
func (in OfferInput) apply(ctx context.Context, q store.Querier, companyID int64, o *Offer) error {
	set := func(name string) bool { return in.Set[name] }
	if set("name") {
		o.Name = deref(in.Name)
	}
	if set("trigger") {
		o.Trigger = deref(in.Trigger)
	}
	if set("type") {
		o.Type = deref(in.Type)
	}
	if set("rate") {
		o.Rate = in.Rate
	}
	if set("amount") {
		o.Amount = in.Amount
	}
	if set("currency") {
		o.Currency = in.Currency
	}
	if set("duration_months") {
		o.DurationMonths = in.DurationMonths
	}
	if set("max_transactions") {
		o.MaxTransactions = in.MaxTransactions
	}
	if set("product_key") {
		o.ProductKey = in.ProductKey
	}
	if set("category_key") {
		o.CategoryKey = in.CategoryKey
	}
	if set("action_type") {
		o.ActionType = in.ActionType
	}
	if set("hold_days") && in.HoldDays != nil {
		o.HoldDays = *in.HoldDays
	}
	if set("group_key") {
		o.GroupID, o.GroupKey = nil, nil
		if in.GroupKey != nil {
			var id int64
			err := q.QueryRow(ctx, "SELECT id FROM groups WHERE company_id = ? AND key = ?", companyID, *in.GroupKey).Scan(&id)
			if errors.Is(err, sql.ErrNoRows) {
				return errs.E(errs.Invalid, "'group_key' does not match any group in this program: %s", *in.GroupKey)
			}
			if err != nil {
				return fmt.Errorf("find group: %w", err)
			}
			o.GroupID, o.GroupKey = &id, in.GroupKey
		}
	}
	return o.validate()
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// validate checks that an offer's fields make sense together.
func (o *Offer) validate() error {
	if o.Name == "" {
		return errs.E(errs.Invalid, "'name' is a required property")
	}
	switch o.Trigger {
	case TriggerCustomer, TriggerTransaction, TriggerAction, TriggerLead, TriggerDeal:
	default:
		return errs.E(errs.Invalid, "'trigger' must be one of customer, transaction, action, lead_approved, deal_won")
	}
	switch o.Type {
	case TypePercent:
		if o.Trigger != TriggerTransaction && o.Trigger != TriggerLead && o.Trigger != TriggerDeal {
			return errs.E(errs.Invalid, "'type' percent needs an amount to take a percentage of (a transaction's, a lead's or a deal's): use flat for %s offers", o.Trigger)
		}
		if o.Rate == nil {
			return errs.E(errs.Invalid, "'rate' is required for a percent offer")
		}
		r, err := money.Decimal("rate", *o.Rate, rateplaces)
		if err != nil {
			return err
		}
		if r.Sign() <= 0 || r.Cmp(big.NewRat(100, 1)) > 0 {
			return errs.E(errs.Invalid, "'rate' must be more than 0 and at most 100 (percent)")
		}
		if o.Amount != nil || o.Currency != nil {
			return errs.E(errs.Invalid, "'amount' and 'currency' are for flat offers; a percent offer pays in the currency of what it takes a percentage of")
		}
		o.rate = r
	case TypeFlat:
		if o.Amount == nil || o.Currency == nil {
			return errs.E(errs.Invalid, "'amount' and 'currency' are required for a flat offer")
		}
		if *o.Amount <= 0 || *o.Amount > money.MaxAmount {
			return errs.E(errs.Invalid, "'amount' must be a positive number of minor units (at most %d)", int64(money.MaxAmount))
		}
		cur, err := money.Currency("currency", *o.Currency)
		if err != nil {
			return err
		}
		o.Currency = &cur
		if o.Rate != nil {
			return errs.E(errs.Invalid, "'rate' is for percent offers")
		}
		o.rate = nil
	default:
		return errs.E(errs.Invalid, "'type' must be one of percent, flat")
	}
	if o.Trigger != TriggerTransaction {
		for name, set := range map[string]bool{"duration_months": o.DurationMonths != nil, "max_transactions": o.MaxTransactions != nil,
			"product_key": o.ProductKey != nil, "category_key": o.CategoryKey != nil} {
			if set {
				return errs.E(errs.Invalid, "'%s' only applies to transaction offers", name)
			}
		}
	}
	if o.Trigger != TriggerAction && o.ActionType != nil {
		return errs.E(errs.Invalid, "'action_type' only applies to action offers")
	}
	if o.DurationMonths != nil && (*o.DurationMonths < 0 || *o.DurationMonths > 1200) {
		return errs.E(errs.Invalid, "'duration_months' must be 0 (first transaction only), 1 to 1200, or null (lifetime)")
	}
	if o.MaxTransactions != nil && (*o.MaxTransactions < 1 || *o.MaxTransactions > 100000) {
		return errs.E(errs.Invalid, "'max_transactions' must be from 1 to 100000, or null (no cap)")
	}
	if o.HoldDays < 0 || o.HoldDays > 365 {
		return errs.E(errs.Invalid, "'hold_days' must be from 0 to 365")
	}
	return nil
}

// CreateOffer adds an offer. It applies to causes recorded from now on;
// `rewards recompute` applies it to earlier unpaid ones.
func (s *Service) CreateOffer(ctx context.Context, p program.Principal, in OfferInput) (Offer, error) {
	if p.Test {
		return Offer{}, errs.E(errs.Forbidden, "offers are program settings: use your production keys")
	}
	var out Offer
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		o := Offer{}
		if err := in.apply(ctx, tx, p.CompanyID, &o); err != nil {
			return err
		}
		now := s.now()
		key := secret.Key("offr")
		if _, err := tx.Exec(ctx, `INSERT INTO offers (key, company_id, name, trigger_on, type, rate, amount, currency,
			duration_months, max_transactions, product_key, category_key, action_type, hold_days, group_id, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, key, p.CompanyID, o.Name, o.Trigger, o.Type, o.Rate,
			o.Amount, o.Currency, o.DurationMonths, o.MaxTransactions, o.ProductKey, o.CategoryKey, o.ActionType, o.HoldDays,
			o.GroupID, now, now); err != nil {
			return fmt.Errorf("insert offer: %w", err)
		}
		if err := bumpOffers(ctx, tx, p.CompanyID); err != nil {
			return err
		}
		var err error
		out, err = s.offerBy(ctx, tx, p, "o.key = ?", key)
		return err
	})
	return out, err
}

func (s *Service) offerBy(ctx context.Context, q store.Querier, p program.Principal, cond string, args ...any) (Offer, error) {
	return store.One(ctx, q, "offer", scanOffer, "SELECT "+offerCols+" FROM "+offerFrom+" WHERE o.company_id = ? AND "+cond,
		append([]any{p.CompanyID}, args...)...)
}

// GetOffer finds an offer by key.
func (s *Service) GetOffer(ctx context.Context, p program.Principal, key string) (Offer, error) {
	return s.offerBy(ctx, s.db, p, "o.key = ?", key)
}

// UpdateOffer changes an offer; the change applies to causes recorded from
// now on (and to unpaid rewards at the next recompute).
func (s *Service) UpdateOffer(ctx context.Context, p program.Principal, key string, in OfferInput) (Offer, error) {
	if p.Test {
		return Offer{}, errs.E(errs.Forbidden, "offers are program settings: use your production keys")
	}
	var out Offer
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		o, err := s.offerBy(ctx, tx, p, "o.key = ?", key)
		if err != nil {
			return err
		}
		if o.Archived {
			return errs.E(errs.Conflict, "offer %s is archived and cannot change", key)
		}
		if err := in.apply(ctx, tx, p.CompanyID, &o); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE offers SET name = ?, trigger_on = ?, type = ?, rate = ?, amount = ?, currency = ?,
			duration_months = ?, max_transactions = ?, product_key = ?, category_key = ?, action_type = ?, hold_days = ?,
			group_id = ?, updated_at = ? WHERE id = ?`, o.Name, o.Trigger, o.Type, o.Rate, o.Amount, o.Currency, o.DurationMonths,
			o.MaxTransactions, o.ProductKey, o.CategoryKey, o.ActionType, o.HoldDays, o.GroupID, s.now(), o.ID); err != nil {
			return fmt.Errorf("update offer: %w", err)
		}
		if err := bumpOffers(ctx, tx, p.CompanyID); err != nil {
			return err
		}
		out, err = s.offerBy(ctx, tx, p, "o.id = ?", o.ID)
		return err
	})
	return out, err
}

// ArchiveOffer stops an offer from earning. Rewards it already made stay.
func (s *Service) ArchiveOffer(ctx context.Context, p program.Principal, key string) (Offer, error) {
	if p.Test {
		return Offer{}, errs.E(errs.Forbidden, "offers are program settings: use your production keys")
	}
	var out Offer
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		o, err := s.offerBy(ctx, tx, p, "o.key = ?", key)
		if err != nil {
			return err
		}
		if !o.Archived {
			if _, err := tx.Exec(ctx, "UPDATE offers SET archived = 1, updated_at = ? WHERE id = ?", s.now(), o.ID); err != nil {
				return fmt.Errorf("archive offer: %w", err)
			}
			if err := bumpOffers(ctx, tx, p.CompanyID); err != nil {
				return err
			}
		}
		out, err = s.offerBy(ctx, tx, p, "o.id = ?", o.ID)
		return err
	})
	return out, err
}

// ListOffers lists a company's offers.
func (s *Service) ListOffers(ctx context.Context, p program.Principal, includeArchived bool, page store.Page) ([]Offer, store.Result, error) {
	spec := p.List(offerCols, offerFrom, "o", "")
	if !includeArchived {
		spec.Where("o.archived = 0")
	}
	page.Apply(&spec, "o")
	return store.List(ctx, s.db, spec, scanOffer)
}
