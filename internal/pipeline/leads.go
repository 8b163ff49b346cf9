package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/partnerd/partnerd/internal/errs"
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
	var id int64
	err = store.RetryUnique(func() error {
		return s.db.Tx(ctx, func(tx *store.Tx) error {
			id, replayed, err = s.createLead(ctx, tx, p, in, actorOf(p), nil)
			return err
		})
	})
	if err != nil {
		return l, false, err
	}
	// Read back after the commit: the write transaction (on SQLite, the
	// one write lock) is held no longer than the write needs.
	l, err = s.leadBy(ctx, s.db, program.Principal{CompanyID: p.CompanyID}, "l.id = ?", id)
	return l, replayed, err
}

// createLead writes a new lead inside tx; imp, when set, is what an import
// row adds (its key, time, history, link and archived flag).
// It returns the lead's id, and whether its external_key found a stored one.
func (s *Service) createLead(ctx context.Context, tx *store.Tx, p program.Principal, in LeadInput, actor string, imp *imported) (int64, bool, error) {
	pt, err := findPartnership(ctx, tx, p, in.PartnerKey, true)
	if err != nil {
		return 0, false, err
	}
	if in.GroupKey != nil && *in.GroupKey != pt.groupKey {
		return 0, false, errs.E(errs.Invalid, "'group_key' must be the partnership's group (%s): %s", pt.groupKey, *in.GroupKey)
	}
	if id, found, err := registered(ctx, tx, leadKind, p.CompanyID, in.ExternalKey, &pt.id); found || err != nil {
		return id, found, err
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
		return 0, false, fmt.Errorf("insert lead: %w", err) // a unique violation is retried by the caller
	}
	history := imp.history
	if history == nil {
		history = []Change{{Field: "status", To: &status}, {Field: "approved", To: ptr(boolText(approved))}}
	}
	if err := record(ctx, tx, p.CompanyID, leadKind.name, id, actor, created, history); err != nil {
		return 0, false, err
	}
	return id, false, s.changed(ctx, tx, leadKind, p.CompanyID, leadKind.created, id, now, !imp.noRewards)
}

func (s *Service) leadBy(ctx context.Context, q store.Querier, p program.Principal, cond string, args ...any) (Lead, error) {
	query, all := p.Scoped("SELECT "+leadCols+" FROM "+leadFrom, "l.company_id", "l.partnership_id", cond, args...)
	l, err := store.One(ctx, q, "lead", scanLead, query, all...)
	if err != nil {
		return l, err
	}
	h, err := histories(ctx, q, leadKind.name, []int64{l.ID})
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
	var id int64
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		cur, err := s.leadBy(ctx, tx, p, leadIdent, ident, ident)
		if err != nil {
			return err
		}
		id = cur.ID
		_, err = s.updateLead(ctx, tx, p, cur, in, actorOf(p), true)
		return err
	})
	if store.IsUniqueViolation(err) {
		return Lead{}, errs.E(errs.Conflict, "'external_key' is already used by another lead in this program: %s", deref(in.ExternalKey))
	}
	if err != nil {
		return Lead{}, err
	}
	return s.leadBy(ctx, s.db, p, "l.id = ?", id)
}

func (s *Service) updateLead(ctx context.Context, tx *store.Tx, p program.Principal, cur Lead, in LeadInput, actor string, settle bool) (bool, error) {
	if cur.Archived {
		return false, errs.E(errs.Conflict, "lead %s is archived and cannot change", cur.Key)
	}
	if in.PartnerKey != nil && *in.PartnerKey != cur.PartnerKey {
		return false, errs.E(errs.Invalid, "'partner_key' cannot change: a lead stays with the partnership that registered it")
	}
	if in.GroupKey != nil && *in.GroupKey != cur.GroupKey {
		return false, errs.E(errs.Invalid, "'group_key' cannot change: a lead stays in the group it was registered in")
	}
	now := s.now()
	u := &update{}
	if in.Status != nil {
		if c := change("status", &cur.Status, *in.Status); c != nil {
			u.set("status", *in.Status)
			u.changes = append(u.changes, *c)
		}
	}
	if in.Approved != nil && *in.Approved != cur.Approved {
		u.set("approved", store.Bool(*in.Approved))
		if *in.Approved {
			u.set("approved_at", now)
			u.sets = append(u.sets, "approvals = approvals + 1")
		}
		u.changes = append(u.changes, *change("approved", ptr(boolText(cur.Approved)), boolText(*in.Approved)))
	}
	u.setShared(shared{in.Amount, in.Currency, in.ExternalKey, in.Fields, in.Meta},
		shared{cur.Amount, &cur.Currency, cur.ExternalKey, cur.Fields, cur.Meta})
	return s.save(ctx, tx, p, leadKind, cur.ID, u, actor, now, settle)
}

// ArchiveLead archives a lead; its rewards are reversed.
func (s *Service) ArchiveLead(ctx context.Context, p program.Principal, ident string) (Lead, error) {
	id, err := s.archive(ctx, p, leadKind, s.leadRef(ctx, p, ident))
	if err != nil {
		return Lead{}, err
	}
	return s.leadBy(ctx, s.db, p, "l.id = ?", id)
}

// ConvertLead turns a lead into a customer attributed to the lead's
// partnership (sign-up rewards and all), and links the two. Converting
// again returns the same customer (replayed is true).
func (s *Service) ConvertLead(ctx context.Context, p program.Principal, ident string, in ConvertInput) (program.Customer, bool, error) {
	return s.convertOne(ctx, p, leadKind, program.SourceLead, in, s.leadRef(ctx, p, ident))
}

func (s *Service) leadRef(ctx context.Context, p program.Principal, ident string) func(q store.Querier) (ref, error) {
	return func(q store.Querier) (ref, error) {
		l, err := s.leadBy(ctx, q, p, leadIdent, ident, ident)
		return ref{id: l.ID, key: l.Key, archived: l.Archived, partnerKey: &l.PartnerKey, customerID: l.CustomerID}, err
	}
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
	h, err := histories(ctx, s.db, leadKind.name, ids)
	for i := range items {
		items[i].History = h[items[i].ID]
	}
	return items, res, err
}
