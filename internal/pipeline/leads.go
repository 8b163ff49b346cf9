package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/partnerd/partnerd/internal/errs"
	"github.com/partnerd/partnerd/internal/outbox"
	"github.com/partnerd/partnerd/internal/program"
	"github.com/partnerd/partnerd/internal/secret"
	"github.com/partnerd/partnerd/internal/store"
)

// Lead statuses, PartnerStack's.
var LeadStatuses = []string{"open", "closed", "dead", "closed won", "closed lost"}

// Lead is a prospect a partner registered with the vendor.
type Lead struct {
	ID          int64
	Key         string
	ExternalKey *string
	Amount      *int64
	Currency    string
	Approved    bool
	ApprovedAt  *int64
	Status      string
	Fields      json.RawMessage
	Meta        json.RawMessage
	Source      string // api, partner or import
	Test        bool
	Archived    bool
	CreatedAt   int64
	UpdatedAt   int64

	PartnershipID  int64
	PartnershipKey string
	PartnerKey     string
	GroupKey       string
	CustomerID     *int64
	CustomerKey    *string // the customer it was converted into
	CustomerExtKey *string
	Company        program.CompanyRef
	History        []Change
}

const leadCols = `l.id, l.key, l.external_key, l.amount, l.currency, l.approved, l.approved_at, l.status, l.fields, l.meta,
	l.source, l.test, l.archived, l.created_at, l.updated_at, p.id, p.key, p.partner_key, g.key, l.customer_id, cu.key,
	cu.customer_key, c.key, c.name`

const leadFrom = `leads l JOIN partnerships p ON p.id = l.partnership_id JOIN groups g ON g.id = l.group_id
	LEFT JOIN customers cu ON cu.id = l.customer_id JOIN companies c ON c.id = l.company_id`

func scanLead(sc store.Scanner) (Lead, error) {
	var l Lead
	var fields, meta string
	err := sc.Scan(&l.ID, &l.Key, &l.ExternalKey, &l.Amount, &l.Currency, &l.Approved, &l.ApprovedAt, &l.Status, &fields, &meta,
		&l.Source, &l.Test, &l.Archived, &l.CreatedAt, &l.UpdatedAt, &l.PartnershipID, &l.PartnershipKey, &l.PartnerKey, &l.GroupKey,
		&l.CustomerID, &l.CustomerKey, &l.CustomerExtKey, &l.Company.Key, &l.Company.Name)
	if err != nil {
		return l, fmt.Errorf("scan lead: %w", err)
	}
	l.Fields, l.Meta = json.RawMessage(fields), json.RawMessage(meta)
	return l, nil
}

// Sources of a lead or deal.
const (
	SourceAPI     = "api"
	SourcePartner = "partner"
	SourceImport  = "import"
)

// LeadInput is a lead to create, or the changes to one (nil: unchanged).
type LeadInput struct {
	PartnerKey  *string
	GroupKey    *string
	ExternalKey *string
	Amount      *int64
	Currency    *string
	Approved    *bool
	Status      *string
	Fields      json.RawMessage
	Meta        json.RawMessage
}

func checkLead(p program.Principal, in LeadInput) error {
	if in.Status != nil && !validStatus(*in.Status) {
		return errs.E(errs.Invalid, "'status' must be one of %s", strings.Join(LeadStatuses, ", "))
	}
	if p.IsPartner() && in.Approved != nil && *in.Approved {
		return errs.E(errs.Forbidden, "'approved' is the vendor's decision: a partner cannot approve its own lead")
	}
	if in.ExternalKey != nil && strings.TrimSpace(*in.ExternalKey) == "" {
		return errs.E(errs.Invalid, "'external_key' must not be empty")
	}
	if _, err := checkAmount(in.Amount, in.Currency, ""); err != nil {
		return err
	}
	return checkFields(in.Fields, in.Meta)
}

func validStatus(st string) bool {
	for _, s := range LeadStatuses {
		if s == st {
			return true
		}
	}
	return false
}

// CreateLead registers a lead for a partnership: the partner_key a vendor
// names, or a partner token's own. An external_key makes the call
// idempotent: sending it again for the same partnership returns the stored
// lead (replayed is true); for another partnership it is a conflict, which
// is how a program protects the partner who registered a prospect first.
func (s *Service) CreateLead(ctx context.Context, p program.Principal, in LeadInput) (l Lead, replayed bool, err error) {
	if err := checkLead(p, in); err != nil {
		return l, false, err
	}
	err = retry(func() error {
		return s.db.Tx(ctx, func(tx *store.Tx) error {
			l, replayed, err = s.createLead(ctx, tx, p, in, actorOf(p), nil)
			return err
		})
	})
	return l, replayed, err
}

// createLead writes a new lead inside tx; imp, when set, is what an import
// row adds (its key, time, history, link and archived flag).
func (s *Service) createLead(ctx context.Context, tx *store.Tx, p program.Principal, in LeadInput, actor string, imp *imported) (Lead, bool, error) {
	pt, err := findPartnership(ctx, tx, p, in.PartnerKey, true)
	if err != nil {
		return Lead{}, false, err
	}
	if in.GroupKey != nil && *in.GroupKey != pt.groupKey {
		return Lead{}, false, errs.E(errs.Invalid, "'group_key' must be the partnership's group (%s): %s", pt.groupKey, *in.GroupKey)
	}
	if in.ExternalKey != nil {
		existing, err := s.leadBy(ctx, tx, program.Principal{CompanyID: p.CompanyID}, "l.external_key = ?", *in.ExternalKey)
		if err == nil {
			if existing.PartnershipID != pt.id {
				return Lead{}, false, errs.E(errs.Conflict, "'external_key' %s is already registered as a lead by another partnership", *in.ExternalKey)
			}
			return existing, true, nil
		}
		if errs.CodeOf(err) != errs.NotFound {
			return Lead{}, false, err
		}
	}
	currency, _ := checkAmount(in.Amount, in.Currency, "")
	now := s.now()
	imp = imp.orNew(now)
	created := imp.at
	status := "open"
	if in.Status != nil {
		status = *in.Status
	}
	approved := in.Approved != nil && *in.Approved
	var approvedAt *int64
	approvals := 0
	if approved {
		approvedAt, approvals = &created, 1
	}
	if imp.key == "" {
		imp.key = secret.Key("lead")
	}
	var id int64
	err = tx.QueryRow(ctx, `INSERT INTO leads (key, company_id, partnership_id, group_id, external_key, amount, currency, approved,
		approvals, approved_at, status, fields, meta, customer_id, source, test, archived, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		imp.key, p.CompanyID, pt.id, pt.groupID, in.ExternalKey, in.Amount, currency, store.Bool(approved), approvals,
		approvedAt, status, rawOr(in.Fields, "[]"), rawOr(in.Meta, "{}"), imp.customerID, sourceOf(actor), store.Bool(p.Test || pt.test),
		store.Bool(imp.archived), created, created).Scan(&id)
	if err != nil {
		return Lead{}, false, fmt.Errorf("insert lead: %w", err) // a unique violation is retried by the caller
	}
	history := imp.history
	if history == nil {
		history = []Change{{Field: "status", To: &status}, {Field: "approved", To: ptr(boolText(approved))}}
	}
	if err := record(ctx, tx, p.CompanyID, kindLead, id, actor, created, history); err != nil {
		return Lead{}, false, err
	}
	if err := s.leadChanged(ctx, tx, p.CompanyID, outbox.LeadCreated, id, now, !imp.noRewards); err != nil {
		return Lead{}, false, err
	}
	l, err := s.leadBy(ctx, tx, program.Principal{CompanyID: p.CompanyID}, "l.id = ?", id)
	return l, false, err
}

// leadChanged emits the lead's event and, unless told not to (an import
// of history), settles its rewards.
func (s *Service) leadChanged(ctx context.Context, q store.Querier, companyID int64, event string, id, now int64, settle bool) error {
	if err := emit(ctx, q, companyID, event, outbox.KindLead, id, now); err != nil {
		return err
	}
	if settle && s.settleLead != nil {
		if err := s.settleLead(ctx, q, companyID, id); err != nil {
			return fmt.Errorf("settle lead rewards: %w", err)
		}
	}
	return nil
}

func (s *Service) leadBy(ctx context.Context, q store.Querier, p program.Principal, cond string, args ...any) (Lead, error) {
	query, all := p.Scoped("SELECT "+leadCols+" FROM "+leadFrom, "l.company_id", "l.partnership_id", cond, args...)
	l, err := store.One(ctx, q, "lead", scanLead, query, all...)
	if err != nil {
		return l, err
	}
	h, err := histories(ctx, q, kindLead, []int64{l.ID})
	l.History = h[l.ID]
	return l, err
}

const leadIdent = "(l.key = ? OR l.external_key = ?)"

// GetLead finds a lead by its key or its external_key.
func (s *Service) GetLead(ctx context.Context, p program.Principal, ident string) (Lead, error) {
	return s.leadBy(ctx, s.db, p, leadIdent, ident, ident)
}

// UpdateLead changes a lead. Its partnership does not change; approving it
// earns its lead_approved rewards, un-approving it reverses them.
func (s *Service) UpdateLead(ctx context.Context, p program.Principal, ident string, in LeadInput) (Lead, error) {
	if p.IsPartner() {
		return Lead{}, errs.E(errs.Forbidden, "a partner token cannot change a lead once submitted")
	}
	if err := checkLead(p, in); err != nil {
		return Lead{}, err
	}
	var out Lead
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		cur, err := s.leadBy(ctx, tx, p, leadIdent, ident, ident)
		if err != nil {
			return err
		}
		out, _, err = s.updateLead(ctx, tx, p, cur, in, actorOf(p), true)
		return err
	})
	if store.IsUniqueViolation(err) {
		return Lead{}, errs.E(errs.Conflict, "'external_key' is already used by another lead in this program: %s", deref(in.ExternalKey))
	}
	return out, err
}

func (s *Service) updateLead(ctx context.Context, tx *store.Tx, p program.Principal, cur Lead, in LeadInput, actor string, settle bool) (Lead, bool, error) {
	if cur.Archived {
		return cur, false, errs.E(errs.Conflict, "lead %s is archived and cannot change", cur.Key)
	}
	if in.PartnerKey != nil && *in.PartnerKey != cur.PartnerKey {
		return cur, false, errs.E(errs.Invalid, "'partner_key' cannot change: a lead stays with the partnership that registered it")
	}
	if in.GroupKey != nil && *in.GroupKey != cur.GroupKey {
		return cur, false, errs.E(errs.Invalid, "'group_key' cannot change: a lead stays in the group it was registered in")
	}
	now := s.now()
	var sets []string
	var args []any
	set := func(col string, v any) { sets = append(sets, col+" = ?"); args = append(args, v) }
	var changes []Change
	if in.Status != nil {
		if c := change("status", &cur.Status, *in.Status); c != nil {
			set("status", *in.Status)
			changes = append(changes, *c)
		}
	}
	if in.Approved != nil && *in.Approved != cur.Approved {
		set("approved", store.Bool(*in.Approved))
		if *in.Approved {
			set("approved_at", now)
			sets = append(sets, "approvals = approvals + 1")
		}
		changes = append(changes, *change("approved", ptr(boolText(cur.Approved)), boolText(*in.Approved)))
	}
	if in.Amount != nil && (cur.Amount == nil || *cur.Amount != *in.Amount) {
		set("amount", *in.Amount)
	}
	if in.Currency != nil {
		currency, _ := checkAmount(nil, in.Currency, cur.Currency)
		if currency != cur.Currency {
			set("currency", currency)
		}
	}
	if in.ExternalKey != nil && deref(cur.ExternalKey) != *in.ExternalKey {
		set("external_key", *in.ExternalKey)
	}
	if len(in.Fields) > 0 && rawOr(in.Fields, "[]") != string(cur.Fields) {
		set("fields", rawOr(in.Fields, "[]"))
	}
	if len(in.Meta) > 0 && rawOr(in.Meta, "{}") != string(cur.Meta) {
		set("meta", rawOr(in.Meta, "{}"))
	}
	if len(sets) == 0 {
		return cur, false, nil
	}
	set("updated_at", now)
	args = append(args, cur.ID)
	if _, err := tx.Exec(ctx, "UPDATE leads SET "+strings.Join(sets, ", ")+" WHERE id = ?", args...); err != nil {
		return cur, false, fmt.Errorf("update lead: %w", err)
	}
	if err := record(ctx, tx, p.CompanyID, kindLead, cur.ID, actor, now, changes); err != nil {
		return cur, false, err
	}
	if err := s.leadChanged(ctx, tx, p.CompanyID, outbox.LeadUpdated, cur.ID, now, settle); err != nil {
		return cur, false, err
	}
	out, err := s.leadBy(ctx, tx, program.Principal{CompanyID: p.CompanyID}, "l.id = ?", cur.ID)
	return out, true, err
}

// ArchiveLead archives a lead; its rewards are reversed.
func (s *Service) ArchiveLead(ctx context.Context, p program.Principal, ident string) (Lead, error) {
	if p.IsPartner() {
		return Lead{}, errs.E(errs.Forbidden, "a partner token cannot archive a lead")
	}
	var out Lead
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		cur, err := s.leadBy(ctx, tx, p, leadIdent, ident, ident)
		if err != nil {
			return err
		}
		if !cur.Archived {
			now := s.now()
			if _, err := tx.Exec(ctx, "UPDATE leads SET archived = 1, updated_at = ? WHERE id = ?", now, cur.ID); err != nil {
				return fmt.Errorf("archive lead: %w", err)
			}
			if err := record(ctx, tx, p.CompanyID, kindLead, cur.ID, actorOf(p), now, []Change{*change("archived", ptr("false"), "true")}); err != nil {
				return err
			}
			if err := s.leadChanged(ctx, tx, p.CompanyID, outbox.LeadUpdated, cur.ID, now, true); err != nil {
				return err
			}
		}
		out, err = s.leadBy(ctx, tx, p, "l.id = ?", cur.ID)
		return err
	})
	return out, err
}

// ConvertLead turns a lead into a customer attributed to the lead's
// partnership (sign-up rewards and all), and links the two. Converting
// again returns the same customer (replayed is true).
func (s *Service) ConvertLead(ctx context.Context, p program.Principal, ident string, in ConvertInput) (cu program.Customer, replayed bool, err error) {
	if p.IsPartner() {
		return cu, false, errs.E(errs.Forbidden, "a partner token cannot convert a lead")
	}
	err = retry(func() error {
		return s.db.Tx(ctx, func(tx *store.Tx) error {
			l, err := s.leadBy(ctx, tx, p, leadIdent, ident, ident)
			if err != nil {
				return err
			}
			if l.Archived {
				return errs.E(errs.Conflict, "lead %s is archived and cannot be converted", l.Key)
			}
			replayed = l.CustomerID != nil
			cu, _, err = s.convert(ctx, tx, p, l.PartnerKey, program.SourceLead, l.CustomerID, in)
			if err != nil || replayed {
				return err
			}
			now := s.now()
			if _, err := tx.Exec(ctx, "UPDATE leads SET customer_id = ?, updated_at = ? WHERE id = ?", cu.ID, now, l.ID); err != nil {
				return fmt.Errorf("link lead to customer: %w", err)
			}
			if err := record(ctx, tx, p.CompanyID, kindLead, l.ID, actorOf(p), now, []Change{{Field: "converted", To: &cu.Key}}); err != nil {
				return err
			}
			return s.leadChanged(ctx, tx, p.CompanyID, outbox.LeadUpdated, l.ID, now, true)
		})
	})
	return cu, replayed, err
}

// LeadFilter narrows a lead list.
type LeadFilter struct {
	PartnerKey      string
	PartnershipKey  string
	GroupKey        string
	Group           string
	Status          string
	Approved        *bool
	ExternalKey     string
	CustomerKey     string
	IncludeArchived bool
}

// ListLeads lists the leads the principal may see: a partner token its own.
func (s *Service) ListLeads(ctx context.Context, p program.Principal, f LeadFilter, page store.Page) ([]Lead, store.Result, error) {
	if f.Status != "" && !validStatus(f.Status) {
		return nil, store.Result{}, errs.E(errs.Invalid, "'status' must be one of %s", strings.Join(LeadStatuses, ", "))
	}
	spec := p.List(leadCols, leadFrom, "l", "l.partnership_id")
	spec.WhereSet("p.partner_key = ?", f.PartnerKey)
	spec.WhereSet("p.key = ?", f.PartnershipKey)
	spec.WhereSet("g.key = ?", f.GroupKey)
	if f.Group != "" {
		spec.Where("g.slug = ?", program.Slugify(f.Group))
	}
	spec.WhereSet("l.status = ?", f.Status)
	if f.Approved != nil {
		spec.Where("l.approved = ?", store.Bool(*f.Approved))
	}
	spec.WhereSet("l.external_key = ?", f.ExternalKey)
	if f.CustomerKey != "" {
		spec.Where("(cu.key = ? OR cu.customer_key = ?)", f.CustomerKey, f.CustomerKey)
	}
	if !f.IncludeArchived {
		spec.Where("l.archived = 0")
	}
	page.Apply(&spec, "l")
	items, res, err := store.List(ctx, s.db, spec, scanLead)
	if err != nil {
		return nil, res, err
	}
	ids := make([]int64, len(items))
	for i, l := range items {
		ids[i] = l.ID
	}
	h, err := histories(ctx, s.db, kindLead, ids)
	for i := range items {
		items[i].History = h[items[i].ID]
	}
	return items, res, err
}
