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

// kind is what the code leads and deals share needs to know of one of them.
type kind struct {
	name    string // lead or deal: the outbox kind and pipeline_history's object_kind
	table   string
	created string // outbox events
	updated string
	settle  func(s *Service) Hook
}

var (
	leadKind = kind{name: outbox.KindLead, table: "leads", created: outbox.LeadCreated, updated: outbox.LeadUpdated,
		settle: func(s *Service) Hook { return s.settleLead }}
	dealKind = kind{name: outbox.KindDeal, table: "deals", created: outbox.DealCreated, updated: outbox.DealUpdated,
		settle: func(s *Service) Hook { return s.settleDeal }}
)

// changed emits an object's event and, unless told not to (an import of
// history), settles its rewards.
func (s *Service) changed(ctx context.Context, q store.Querier, k kind, companyID int64, event string, id, now int64, settle bool) error {
	if err := outbox.Emit(ctx, q, companyID, event, k.name, id, now); err != nil {
		return err
	}
	if hook := k.settle(s); settle && hook != nil {
		if err := hook(ctx, q, companyID, id); err != nil {
			return fmt.Errorf("settle %s rewards: %w", k.name, err)
		}
	}
	return nil
}

// update collects the columns an update changes.
type update struct {
	sets    []string
	args    []any
	changes []Change
}

func (u *update) set(col string, v any) {
	u.sets = append(u.sets, col+" = ?")
	u.args = append(u.args, v)
}

// shared are the fields leads and deals both have.
type shared struct {
	amount   *int64
	currency *string
	external *string
	fields   json.RawMessage
	meta     json.RawMessage
}

// setShared adds the shared fields in that differ from cur.
func (u *update) setShared(in shared, cur shared) {
	if in.amount != nil && (cur.amount == nil || *cur.amount != *in.amount) {
		u.set("amount", *in.amount)
	}
	if in.currency != nil {
		currency, _ := checkAmount(nil, in.currency, *cur.currency)
		if currency != *cur.currency {
			u.set("currency", currency)
		}
	}
	if in.external != nil && deref(cur.external) != *in.external {
		u.set("external_key", *in.external)
	}
	if len(in.fields) > 0 && rawOr(in.fields, "[]") != string(cur.fields) {
		u.set("fields", rawOr(in.fields, "[]"))
	}
	if len(in.meta) > 0 && rawOr(in.meta, "{}") != string(cur.meta) {
		u.set("meta", rawOr(in.meta, "{}"))
	}
}

// save writes an update of object id with its history, event and
// settlement; it reports whether there was anything to write.
func (s *Service) save(ctx context.Context, tx *store.Tx, p program.Principal, k kind, id int64, u *update, actor string, now int64, settle bool) (bool, error) {
	if len(u.sets) == 0 {
		return false, nil
	}
	u.set("updated_at", now)
	if _, err := tx.Exec(ctx, "UPDATE "+k.table+" SET "+strings.Join(u.sets, ", ")+" WHERE id = ?", append(u.args, id)...); err != nil {
		return false, fmt.Errorf("update %s: %w", k.name, err)
	}
	if err := record(ctx, tx, p.CompanyID, k.name, id, actor, now, u.changes); err != nil {
		return false, err
	}
	return true, s.changed(ctx, tx, k, p.CompanyID, k.updated, id, now, settle)
}

// registered finds the object a new one's external_key already names: the
// same partnership's is the one a retried create made (found is true);
// another partnership's is a conflict, which protects the partner who
// registered the prospect first.
func registered(ctx context.Context, q store.Querier, k kind, companyID int64, external *string, partnershipID *int64) (id int64, found bool, err error) {
	if external == nil {
		return 0, false, nil
	}
	var owner *int64
	err = q.QueryRow(ctx, "SELECT id, partnership_id FROM "+k.table+" WHERE company_id = ? AND external_key = ?", companyID, *external).
		Scan(&id, &owner)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, false, nil
	case err != nil:
		return 0, false, fmt.Errorf("find %s by external_key: %w", k.name, err)
	case (owner == nil) != (partnershipID == nil) || (owner != nil && *owner != *partnershipID):
		return 0, false, errs.E(errs.Conflict, "'external_key' %s is already registered as a %s by another partnership", *external, k.name)
	}
	return id, true, nil
}

// ref is what archiving and converting need of a lead or deal.
type ref struct {
	id         int64
	key        string
	archived   bool
	partnerKey *string
	customerID *int64
}

// archive archives the object find finds in its transaction; its rewards
// are reversed by the settlement.
func (s *Service) archive(ctx context.Context, p program.Principal, k kind, find func(q store.Querier) (ref, error)) (int64, error) {
	if p.IsPartner() {
		return 0, errs.E(errs.Forbidden, "a partner token cannot archive a %s", k.name)
	}
	var id int64
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		cur, err := find(tx)
		if err != nil || cur.archived {
			id = cur.id
			return err
		}
		id = cur.id
		u := &update{changes: []Change{*change("archived", ptr("false"), "true")}}
		u.set("archived", 1)
		_, err = s.save(ctx, tx, p, k, cur.id, u, actorOf(p), s.now(), true)
		return err
	})
	return id, err
}

// convertOne turns the object find finds into a customer attributed to its
// partnership (sign-up rewards and all) and links the two; converting
// again returns the same customer (replayed is true).
func (s *Service) convertOne(ctx context.Context, p program.Principal, k kind, source string, in ConvertInput,
	find func(q store.Querier) (ref, error)) (cu program.Customer, replayed bool, err error) {
	if p.IsPartner() {
		return cu, false, errs.E(errs.Forbidden, "a partner token cannot convert a %s", k.name)
	}
	err = store.RetryUnique(func() error {
		return s.db.Tx(ctx, func(tx *store.Tx) error {
			o, err := find(tx)
			if err != nil {
				return err
			}
			if o.archived {
				return errs.E(errs.Conflict, "%s %s is archived and cannot be converted", k.name, o.key)
			}
			if o.partnerKey == nil {
				return errs.E(errs.Invalid, "%s %s has no partner: set its 'partner_key' before converting it, since a customer is attributed to a partnership", k.name, o.key)
			}
			replayed = o.customerID != nil
			cu, _, err = s.convert(ctx, tx, p, *o.partnerKey, source, o.customerID, in)
			if err != nil || replayed {
				return err
			}
			u := &update{changes: []Change{{Field: "converted", To: &cu.Key}}}
			u.set("customer_id", cu.ID)
			_, err = s.save(ctx, tx, p, k, o.id, u, actorOf(p), s.now(), true)
			return err
		})
	})
	return cu, replayed, err
}

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
