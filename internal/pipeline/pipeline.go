// Package pipeline owns the B2B partner pipeline: leads a partner
// registers, deals a partner and the vendor work on through a group's
// stages, their history, and their conversion into customers. It knows
// nothing of HTTP; rewards are the ledger's, reached through the hooks set
// with OnChange.
package pipeline

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/partnerd/partnerd/internal/clock"
	"github.com/partnerd/partnerd/internal/errs"
	"github.com/partnerd/partnerd/internal/money"
	"github.com/partnerd/partnerd/internal/outbox"
	"github.com/partnerd/partnerd/internal/program"
	"github.com/partnerd/partnerd/internal/store"
)

// Hook runs inside the transaction that changes a lead (or deal) with the
// object's id; an error rolls the change back. The reward engine uses it.
type Hook func(ctx context.Context, q store.Querier, companyID, id int64) error

// Service is the pipeline.
type Service struct {
	db         *store.DB
	clock      clock.Clock
	prog       *program.Service
	settleLead Hook
	settleDeal Hook
}

// New returns a Service over db.
func New(db *store.DB, clk clock.Clock, prog *program.Service) *Service {
	return &Service{db: db, clock: clk, prog: prog}
}

// OnChange sets the hooks run after every change to a lead and to a deal.
// They are set once at start-up, before the service is used.
func (s *Service) OnChange(lead, deal Hook) { s.settleLead, s.settleDeal = lead, deal }

func (s *Service) now() int64 { return clock.Millis(s.clock) }

// Who made a change, as history records it.
const (
	ActorVendor  = "vendor"
	ActorPartner = "partner"
	ActorImport  = "import"
)

func actorOf(p program.Principal) string {
	if p.IsPartner() {
		return ActorPartner
	}
	return ActorVendor
}

// Change is one entry of an object's history: a field that changed, from
// what to what, when and by whom. Creation is recorded as a change from
// nothing (From is nil).
type Change struct {
	Field string
	From  *string
	To    *string
	At    int64
	Actor string
}

// Kinds of object in pipeline_history.
const (
	kindLead = "lead"
	kindDeal = "deal"
)

// record appends changes to an object's history.
func record(ctx context.Context, q store.Querier, companyID int64, kind string, id int64, actor string, at int64, changes []Change) error {
	if len(changes) == 0 {
		return nil
	}
	args := make([]any, 0, 8*len(changes))
	for _, c := range changes {
		// An imported change keeps its own time and author.
		who, when := actor, at
		if c.Actor != "" {
			who = c.Actor
		}
		if c.At != 0 {
			when = c.At
		}
		args = append(args, companyID, kind, id, c.Field, c.From, c.To, who, when)
	}
	query := "INSERT INTO pipeline_history (company_id, object_kind, object_id, field, from_value, to_value, actor, at) VALUES " +
		strings.Repeat("(?, ?, ?, ?, ?, ?, ?, ?), ", len(changes)-1) + "(?, ?, ?, ?, ?, ?, ?, ?)"
	if _, err := q.Exec(ctx, query, args...); err != nil {
		return fmt.Errorf("record %s history: %w", kind, err)
	}
	return nil
}

// histories loads the history of the objects with the given ids, oldest
// change first, in one query.
func histories(ctx context.Context, q store.Querier, kind string, ids []int64) (map[int64][]Change, error) {
	out := map[int64][]Change{}
	if len(ids) == 0 {
		return out, nil
	}
	args := []any{kind}
	for _, id := range ids {
		args = append(args, id)
	}
	rows, err := q.Query(ctx, "SELECT object_id, field, from_value, to_value, at, actor FROM pipeline_history WHERE object_kind = ? AND object_id IN ("+
		strings.TrimSuffix(strings.Repeat("?, ", len(ids)), ", ")+") ORDER BY id", args...)
	if err != nil {
		return nil, fmt.Errorf("load %s history: %w", kind, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var c Change
		if err := rows.Scan(&id, &c.Field, &c.From, &c.To, &c.At, &c.Actor); err != nil {
			return nil, fmt.Errorf("scan %s history: %w", kind, err)
		}
		out[id] = append(out[id], c)
	}
	return out, rows.Err()
}

// change describes a field moving from one value to another; nil when
// the value did not move.
func change(field string, from *string, to string) *Change {
	if from != nil && *from == to {
		return nil
	}
	return &Change{Field: field, From: from, To: &to}
}

func ptr[T any](v T) *T { return &v }

func boolText(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// partnership is what a lead or deal needs of the partnership it names.
type partnership struct {
	id, groupID     int64
	key, partnerKey string
	groupKey        string
	test, archived  bool
}

// findPartnership resolves the partnership a lead or deal is for: the
// partner_key a vendor names, or a partner token's own partnership (which
// may name itself, and nothing else).
func findPartnership(ctx context.Context, q store.Querier, p program.Principal, partnerKey *string, required bool) (*partnership, error) {
	query := `SELECT p.id, p.group_id, p.key, p.partner_key, g.key, p.test, p.archived FROM partnerships p
		JOIN groups g ON g.id = p.group_id WHERE p.company_id = ? AND `
	var args []any
	switch {
	case p.IsPartner():
		query += "p.id = ?"
		args = []any{p.CompanyID, p.PartnershipID}
	case partnerKey != nil && *partnerKey != "":
		query += "p.partner_key = ?"
		args = []any{p.CompanyID, *partnerKey}
	case required:
		return nil, errs.E(errs.Invalid, "'partner_key' is a required property")
	default:
		return nil, nil
	}
	var pt partnership
	err := q.QueryRow(ctx, query, args...).Scan(&pt.id, &pt.groupID, &pt.key, &pt.partnerKey, &pt.groupKey, &pt.test, &pt.archived)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errs.E(errs.Invalid, "'partner_key' does not match any partnership in this program: %s", deref(partnerKey))
	}
	if err != nil {
		return nil, fmt.Errorf("find partnership: %w", err)
	}
	if p.IsPartner() && partnerKey != nil && *partnerKey != "" && *partnerKey != pt.partnerKey {
		return nil, errs.E(errs.Forbidden, "'partner_key' must be your own (%s): a partner token submits only for its own partnership", pt.partnerKey)
	}
	if pt.archived {
		return nil, errs.E(errs.Invalid, "'partner_key' names an archived partnership: %s", pt.partnerKey)
	}
	if p.Test && !pt.test {
		return nil, errs.E(errs.Invalid, "'partner_key' must name a test partner (such as %s) when using test keys", program.TestPartnerKey)
	}
	return &pt, nil
}

// checkAmount checks an optional amount and its currency (default USD).
func checkAmount(amount *int64, currency *string, current string) (string, error) {
	if amount != nil && (*amount < 0 || *amount > money.MaxAmount) {
		return "", errs.E(errs.Invalid, "'amount' must be from 0 to %d (minor units)", int64(money.MaxAmount))
	}
	cur := current
	if currency != nil {
		c, err := money.Currency("currency", *currency)
		if err != nil {
			return "", err
		}
		cur = c
	}
	if cur == "" {
		cur = "USD"
	}
	return cur, nil
}

// checkFields checks custom fields: fields[] must hold objects, meta must
// be an object.
func checkFields(fields, meta json.RawMessage) error {
	if len(fields) > 0 && string(fields) != "null" {
		var arr []map[string]json.RawMessage
		if json.Unmarshal(fields, &arr) != nil {
			return errs.E(errs.Invalid, "'fields' must be an array of objects")
		}
	}
	if len(meta) > 0 && string(meta) != "null" {
		var obj map[string]json.RawMessage
		if json.Unmarshal(meta, &obj) != nil {
			return errs.E(errs.Invalid, "'meta' must be an object")
		}
	}
	return nil
}

func rawOr(r json.RawMessage, def string) string {
	if len(r) == 0 || string(r) == "null" {
		return def
	}
	return string(r)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// checkDate checks a YYYY-MM-DD date.
func checkDate(name, v string) error {
	if _, err := time.Parse("2006-01-02", v); err != nil {
		return errs.E(errs.Invalid, "'%s' must be a date as YYYY-MM-DD: %q", name, v)
	}
	return nil
}

// ConvertInput names the customer a lead or deal becomes.
type ConvertInput struct {
	Email       string
	CustomerKey *string
	Name        *string
}

// convert creates (or finds) the customer a lead or deal becomes, attributed
// to its partnership, inside tx. A second conversion returns the customer
// of the first, unless it names another customer_key.
func (s *Service) convert(ctx context.Context, tx *store.Tx, p program.Principal, partnerKey string, source string,
	convertedID *int64, in ConvertInput) (program.Customer, bool, error) {
	if strings.TrimSpace(in.Email) == "" {
		return program.Customer{}, false, errs.E(errs.Invalid, "'email' is a required property")
	}
	if convertedID != nil {
		cu, err := s.prog.CustomerByID(ctx, tx, p.CompanyID, *convertedID)
		if err != nil {
			return cu, false, err
		}
		if in.CustomerKey != nil && (cu.CustomerKey == nil || *cu.CustomerKey != *in.CustomerKey) {
			return cu, false, errs.E(errs.Conflict, "already converted into customer %s; 'customer_key' %s names another", cu.Key, *in.CustomerKey)
		}
		return cu, false, nil
	}
	cp := program.Principal{CompanyID: p.CompanyID, CompanyKey: p.CompanyKey, CompanyName: p.CompanyName, Test: p.Test}
	return s.prog.CreateCustomerIn(ctx, tx, cp, program.CustomerInput{CustomerKey: in.CustomerKey, Email: &in.Email, Name: in.Name,
		PartnerKey: &partnerKey, Source: source})
}

// emit records an event for an object.
func emit(ctx context.Context, q store.Querier, companyID int64, name, kind string, id, at int64) error {
	return outbox.Emit(ctx, q, companyID, name, kind, id, at)
}

// retry runs fn again once when it fails on a unique index: two requests
// racing with one new external_key (or customer_key), where the loser's
// second attempt finds the winner's row.
func retry(fn func() error) error {
	err := fn()
	if store.IsUniqueViolation(err) {
		err = fn()
	}
	if store.IsUniqueViolation(err) {
		return errs.E(errs.Conflict, "a concurrent request wrote the same key; retry")
	}
	return err
}
