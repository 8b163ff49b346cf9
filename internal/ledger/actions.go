package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/partnerd/partnerd/internal/errs"
	"github.com/partnerd/partnerd/internal/program"
	"github.com/partnerd/partnerd/internal/secret"
	"github.com/partnerd/partnerd/internal/store"
)

// Action is something a referred customer or a partner did that a program
// rewards (a demo booked, a seat added), counted by Value.
type Action struct {
	ID             int64
	Key            string
	Type           string
	Value          int64
	ExternalKey    *string
	Test           bool
	Archived       bool
	CreatedAt      int64
	UpdatedAt      int64
	PartnershipKey string
	PartnerKey     string
	CustomerKey    *string
	CustomerSubIDs *string
	Company        program.CompanyRef
}

const actionCols = `a.id, a.key, a.type, a.value, a.external_key, a.test, a.archived, a.created_at, a.updated_at,
	p.key, p.partner_key, cu.key, cu.sub_ids, c.key, c.name`

const actionFrom = `actions a JOIN partnerships p ON p.id = a.partnership_id LEFT JOIN customers cu ON cu.id = a.customer_id
	JOIN companies c ON c.id = a.company_id`

func scanAction(sc store.Scanner) (Action, error) {
	var a Action
	err := sc.Scan(&a.ID, &a.Key, &a.Type, &a.Value, &a.ExternalKey, &a.Test, &a.Archived, &a.CreatedAt, &a.UpdatedAt,
		&a.PartnershipKey, &a.PartnerKey, &a.CustomerKey, &a.CustomerSubIDs, &a.Company.Key, &a.Company.Name)
	if err != nil {
		return a, fmt.Errorf("scan action: %w", err)
	}
	return a, nil
}

// ActionInput is an action to record.
type ActionInput struct {
	Type        string
	Value       int64
	TargetType  string // customer or partnership
	TargetKey   string // a customer key, or the partnership's partner_key
	ExternalKey *string
}

// maxActionValue bounds an action's count so that value × a flat reward
// stays far inside int64.
const maxActionValue = 1_000_000

// RecordAction stores an action and the rewards it earns, in one
// transaction. An external_key makes the call idempotent: sending it again
// returns the stored action (replayed is true).
func (s *Service) RecordAction(ctx context.Context, p program.Principal, in ActionInput) (a Action, replayed bool, err error) {
	if in.Value < 1 || in.Value > maxActionValue {
		return a, false, errs.E(errs.Invalid, "'value' must be an integer from 1 to %d", maxActionValue)
	}
	err = store.RetryUnique(func() error {
		a, replayed, err = s.recordActionOnce(ctx, p, in)
		return err
	})
	return a, replayed, err
}

func (s *Service) recordActionOnce(ctx context.Context, p program.Principal, in ActionInput) (a Action, replayed bool, err error) {
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		if in.ExternalKey != nil {
			existing, err := s.actionBy(ctx, tx, p, "a.external_key = ?", *in.ExternalKey)
			if err == nil {
				a, replayed = existing, true
				return nil
			}
			if errs.CodeOf(err) != errs.NotFound {
				return err
			}
		}
		now := s.now()
		c := cause{kind: TriggerAction, createdAt: now, actionType: in.Type, value: in.Value}
		switch in.TargetType {
		case "customer":
			cu, err := s.program.ResolveCustomer(ctx, tx, p, program.CustomerRef{Key: in.TargetKey})
			if err != nil {
				return errs.E(errs.Invalid, "'target_key' does not match any customer in this program: %s", in.TargetKey)
			}
			if cu.Archived {
				return errs.E(errs.Invalid, "the customer %s is archived and takes no new actions", cu.Key)
			}
			cid := cu.ID
			c.partnershipID, c.customerID, c.groupID, c.test = cu.PartnershipID, &cid, cu.GroupID, cu.Test
			c.partnerGone, c.customerEmail, c.partnerEmail = cu.PartnershipArchived, cu.Email, cu.PartnerEmail
		case "partnership":
			err := tx.QueryRow(ctx, "SELECT id, group_id, test, archived FROM partnerships WHERE company_id = ? AND partner_key = ?",
				p.CompanyID, in.TargetKey).Scan(&c.partnershipID, &c.groupID, &c.test, &c.partnerGone)
			if errors.Is(err, sql.ErrNoRows) {
				return errs.E(errs.Invalid, "'target_key' does not match the partner_key of any partnership in this program: %s", in.TargetKey)
			}
			if err != nil {
				return fmt.Errorf("find partnership: %w", err)
			}
		default:
			return errs.E(errs.Invalid, "'target_type' must be one of customer, partnership")
		}
		if p.Test && !c.test {
			return errs.E(errs.Invalid, "test keys can only record actions for test customers and test partners")
		}
		c.test = c.test || p.Test
		key := secret.Key("actn")
		err := tx.QueryRow(ctx, `INSERT INTO actions (key, company_id, partnership_id, customer_id, group_id, type, value,
			external_key, test, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			key, p.CompanyID, c.partnershipID, c.customerID, c.groupID, in.Type, in.Value, in.ExternalKey, store.Bool(c.test),
			now, now).Scan(&c.id)
		if err != nil {
			return fmt.Errorf("insert action: %w", err)
		}
		if err := s.earn(ctx, tx, p.CompanyID, c); err != nil {
			return err
		}
		a, err = s.actionBy(ctx, tx, p, "a.id = ?", c.id)
		return err
	})
	return a, replayed, err
}

func (s *Service) actionBy(ctx context.Context, q store.Querier, p program.Principal, cond string, args ...any) (Action, error) {
	query, all := p.Scoped("SELECT "+actionCols+" FROM "+actionFrom, "a.company_id", "a.partnership_id", cond, args...)
	return store.One(ctx, q, "action", scanAction, query, all...)
}

// ArchiveAction archives an action and reverses its rewards, as PartnerStack
// archives an action's rewards with it.
func (s *Service) ArchiveAction(ctx context.Context, p program.Principal, key string) (Action, error) {
	var out Action
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		a, err := s.actionBy(ctx, tx, p, "a.key = ?", key)
		if err != nil {
			return err
		}
		if !a.Archived {
			if _, err := tx.Exec(ctx, "UPDATE actions SET archived = 1, updated_at = ? WHERE id = ?", s.now(), a.ID); err != nil {
				return fmt.Errorf("archive action: %w", err)
			}
			if err := s.reverse(ctx, tx, p.CompanyID, "action_id", a.ID, "action "+a.Key+" was deleted"); err != nil {
				return err
			}
		}
		out, err = s.actionBy(ctx, tx, p, "a.id = ?", a.ID)
		return err
	})
	return out, err
}

// ActionFilter narrows an action list.
type ActionFilter struct {
	PartnershipKey  string
	CustomerKey     string
	ActionType      string
	IncludeArchived bool
}

// ListActions lists actions the principal may see.
func (s *Service) ListActions(ctx context.Context, p program.Principal, f ActionFilter, page store.Page) ([]Action, store.Result, error) {
	spec := p.List(actionCols, actionFrom, "a", "a.partnership_id")
	spec.WhereSet("p.key = ?", f.PartnershipKey)
	if f.CustomerKey != "" {
		spec.Where("(cu.key = ? OR cu.customer_key = ?)", f.CustomerKey, f.CustomerKey)
	}
	spec.WhereSet("a.type = ?", f.ActionType)
	if !f.IncludeArchived {
		spec.Where("a.archived = 0")
	}
	page.Apply(&spec, "a")
	return store.List(ctx, s.db, spec, scanAction)
}
