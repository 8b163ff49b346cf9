package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/partnerd/partnerd/internal/errs"
	"github.com/partnerd/partnerd/internal/program"
	"github.com/partnerd/partnerd/internal/secret"
	"github.com/partnerd/partnerd/internal/store"
)

// Deal sources, PartnerStack's: who brought the deal.
const (
	DealFromPartner = "partner"
	DealFromVendor  = "vendor"
)

// Deal is an opportunity a partner and the vendor work on together.
type Deal struct {
	ID               int64
	Key              string
	Source           string // partner or vendor
	AccountName      string
	Amount           *int64
	Currency         string
	CloseDate        *string
	ContactFirstName string
	ContactLastName  string
	ExternalKey      *string
	Stage            string
	Outcome          string // the stage's outcome when the deal reached it
	WonAt            *int64
	LostReason       *string
	Fields           json.RawMessage
	Meta             json.RawMessage
	Origin           string // api, partner or import
	Test             bool
	Archived         bool
	CreatedAt        int64
	UpdatedAt        int64

	PartnershipID  *int64
	PartnershipKey *string
	PartnerKey     *string
	GroupID        int64
	GroupKey       string
	CustomerID     *int64
	CustomerKey    *string
	CustomerExtKey *string
	Company        program.CompanyRef
	History        []Change
}

const dealCols = `d.id, d.key, d.source, d.account_name, d.amount, d.currency, d.close_date, d.contact_first_name,
	d.contact_last_name, d.external_key, d.stage, d.outcome, d.won_at, d.lost_reason, d.fields, d.meta, d.origin, d.test,
	d.archived, d.created_at, d.updated_at, d.partnership_id, p.key, p.partner_key, d.group_id, g.key, d.customer_id, cu.key,
	cu.customer_key, c.key, c.name`

const dealFrom = `deals d LEFT JOIN partnerships p ON p.id = d.partnership_id JOIN groups g ON g.id = d.group_id
	LEFT JOIN customers cu ON cu.id = d.customer_id JOIN companies c ON c.id = d.company_id`

func scanDeal(sc store.Scanner) (Deal, error) {
	var d Deal
	var fields, meta string
	err := sc.Scan(&d.ID, &d.Key, &d.Source, &d.AccountName, &d.Amount, &d.Currency, &d.CloseDate, &d.ContactFirstName,
		&d.ContactLastName, &d.ExternalKey, &d.Stage, &d.Outcome, &d.WonAt, &d.LostReason, &fields, &meta, &d.Origin, &d.Test,
		&d.Archived, &d.CreatedAt, &d.UpdatedAt, &d.PartnershipID, &d.PartnershipKey, &d.PartnerKey, &d.GroupID, &d.GroupKey,
		&d.CustomerID, &d.CustomerKey, &d.CustomerExtKey, &d.Company.Key, &d.Company.Name)
	if err != nil {
		return d, fmt.Errorf("scan deal: %w", err)
	}
	d.Fields, d.Meta = json.RawMessage(fields), json.RawMessage(meta)
	return d, nil
}

// DealInput is a deal to create, or the changes to one (nil: unchanged;
// for CloseDate and LostReason, "" clears).
type DealInput struct {
	Source           *string
	PartnerKey       *string
	GroupKey         *string
	AccountName      *string
	Amount           *int64
	Currency         *string
	CloseDate        *string
	ContactFirstName *string
	ContactLastName  *string
	ExternalKey      *string
	Stage            *string
	LostReason       *string
	Fields           json.RawMessage
	Meta             json.RawMessage
}

func checkDeal(in DealInput) error {
	if in.Source != nil && *in.Source != DealFromPartner && *in.Source != DealFromVendor {
		return errs.E(errs.Invalid, "'source' must be one of partner, vendor")
	}
	if in.CloseDate != nil && *in.CloseDate != "" {
		if err := checkDate("close_date", *in.CloseDate); err != nil {
			return err
		}
	}
	if in.ExternalKey != nil && strings.TrimSpace(*in.ExternalKey) == "" {
		return errs.E(errs.Invalid, "'external_key' must not be empty")
	}
	if in.Stage != nil && strings.TrimSpace(*in.Stage) == "" {
		return errs.E(errs.Invalid, "'stage' must not be empty")
	}
	if _, err := checkAmount(in.Amount, in.Currency, ""); err != nil {
		return err
	}
	return checkFields(in.Fields, in.Meta)
}

// CreateDeal records a deal. A partner deal (the default source) needs the
// partner_key of its partnership and sits in that partnership's group; a
// vendor deal needs a group_key, and may name a partner who works on it.
// A partner token creates partner deals for itself only, at an open stage.
// An external_key makes the call idempotent, as for leads.
func (s *Service) CreateDeal(ctx context.Context, p program.Principal, in DealInput) (d Deal, replayed bool, err error) {
	if err := checkDeal(in); err != nil {
		return d, false, err
	}
	var id int64
	err = store.RetryUnique(func() error {
		return s.db.Tx(ctx, func(tx *store.Tx) error {
			id, replayed, err = s.createDeal(ctx, tx, p, in, actorOf(p), nil)
			return err
		})
	})
	if err != nil {
		return d, false, err
	}
	d, err = s.dealBy(ctx, s.db, program.Principal{CompanyID: p.CompanyID}, "d.id = ?", id)
	return d, replayed, err
}

func (s *Service) createDeal(ctx context.Context, tx *store.Tx, p program.Principal, in DealInput, actor string, imp *imported) (int64, bool, error) {
	source := DealFromPartner
	if in.Source != nil {
		source = *in.Source
	}
	if p.IsPartner() && source != DealFromPartner {
		return 0, false, errs.E(errs.Forbidden, "a partner token submits partner deals only ('source' partner)")
	}
	if source == DealFromVendor && (in.GroupKey == nil || *in.GroupKey == "") {
		return 0, false, errs.E(errs.Invalid, "'group_key' is required when 'source' is vendor")
	}
	pt, err := findPartnership(ctx, tx, p, in.PartnerKey, source == DealFromPartner)
	if err != nil {
		if source == DealFromPartner && errs.CodeOf(err) == errs.Invalid && in.PartnerKey == nil {
			return 0, false, errs.E(errs.Invalid, "'partner_key' is required when 'source' is partner")
		}
		return 0, false, err
	}
	var groupID int64
	var partnershipID *int64
	test := p.Test
	switch {
	case pt != nil:
		if in.GroupKey != nil && *in.GroupKey != pt.groupKey {
			return 0, false, errs.E(errs.Invalid, "'group_key' must be the partnership's group (%s): %s", pt.groupKey, *in.GroupKey)
		}
		groupID, partnershipID, test = pt.groupID, &pt.id, test || pt.test
	default:
		if groupID, _, _, err = groupOrDefault(ctx, tx, p.CompanyID, *in.GroupKey); err != nil {
			return 0, false, err
		}
	}
	if id, found, err := registered(ctx, tx, dealKind, p.CompanyID, in.ExternalKey, partnershipID); found || err != nil {
		return id, found, err
	}
	stages, _, err := stagesOf(ctx, tx, groupID)
	if err != nil {
		return 0, false, err
	}
	stage := firstOpen(stages)
	if in.Stage != nil {
		if stage, err = findStage(stages, *in.Stage); err != nil {
			return 0, false, err
		}
	}
	if p.IsPartner() && stage.Outcome != OutcomeOpen {
		return 0, false, errs.E(errs.Forbidden, "a partner token submits deals at an open stage; %q is %s", stage.Name, stage.Outcome)
	}
	currency, _ := checkAmount(in.Amount, in.Currency, "")
	now := s.now()
	imp = imp.orNew(now)
	created := imp.at
	closeDate := emptyToNil(in.CloseDate)
	var wonAt any
	wins := 0
	if stage.Outcome == OutcomeWon {
		wonAt, wins = created, 1
		if closeDate == nil {
			closeDate = time.UnixMilli(created).UTC().Format("2006-01-02")
		}
	}
	if imp.wonAt != nil {
		// An imported deal won where it came from (and maybe lost since).
		wonAt, wins = *imp.wonAt, 1
	}
	if imp.key == "" {
		imp.key = secret.Key("deal")
	}
	var id int64
	err = tx.QueryRow(ctx, `INSERT INTO deals (key, company_id, partnership_id, group_id, source, account_name, amount, currency,
		close_date, contact_first_name, contact_last_name, external_key, stage, outcome, wins, won_at, lost_reason, fields, meta,
		customer_id, origin, test, archived, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		imp.key, p.CompanyID, partnershipID, groupID, source, deref(in.AccountName), in.Amount, currency, closeDate,
		deref(in.ContactFirstName), deref(in.ContactLastName), in.ExternalKey, stage.Name, stage.Outcome, wins, wonAt,
		emptyToNil(in.LostReason), rawOr(in.Fields, "[]"), rawOr(in.Meta, "{}"), imp.customerID, sourceOf(actor), store.Bool(test),
		store.Bool(imp.archived), created, created).Scan(&id)
	if err != nil {
		return 0, false, fmt.Errorf("insert deal: %w", err) // a unique violation is retried by the caller
	}
	history := imp.history
	if history == nil {
		history = []Change{{Field: "stage", To: &stage.Name}}
	}
	if err := record(ctx, tx, p.CompanyID, dealKind.name, id, actor, created, history); err != nil {
		return 0, false, err
	}
	return id, false, s.changed(ctx, tx, dealKind, p.CompanyID, dealKind.created, id, now, !imp.noRewards)
}

func emptyToNil(s *string) any {
	if s == nil || *s == "" {
		return nil
	}
	return *s
}

func (s *Service) dealBy(ctx context.Context, q store.Querier, p program.Principal, cond string, args ...any) (Deal, error) {
	query, all := p.Scoped("SELECT "+dealCols+" FROM "+dealFrom, "d.company_id", "d.partnership_id", cond, args...)
	d, err := store.One(ctx, q, "deal", scanDeal, query, all...)
	if err != nil {
		return d, err
	}
	h, err := histories(ctx, q, dealKind.name, []int64{d.ID})
	d.History = h[d.ID]
	return d, err
}

const dealIdent = "(d.key = ? OR d.external_key = ?)"

// GetDeal finds a deal by its key or its external_key.
func (s *Service) GetDeal(ctx context.Context, p program.Principal, ident string) (Deal, error) {
	return s.dealBy(ctx, s.db, p, dealIdent, ident, ident)
}

// UpdateDeal changes a deal. Moving it to a won stage earns its deal_won
// rewards; moving it out of one reverses them. A deal without a partner may
// be given one (in its group); a partnership, group and source never change.
func (s *Service) UpdateDeal(ctx context.Context, p program.Principal, ident string, in DealInput) (Deal, error) {
	if p.IsPartner() {
		return Deal{}, errs.E(errs.Forbidden, "a partner token cannot change a deal once submitted")
	}
	if err := checkDeal(in); err != nil {
		return Deal{}, err
	}
	var id int64
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		cur, err := s.dealBy(ctx, tx, p, dealIdent, ident, ident)
		if err != nil {
			return err
		}
		id = cur.ID
		_, err = s.updateDeal(ctx, tx, p, cur, in, actorOf(p), true)
		return err
	})
	if store.IsUniqueViolation(err) {
		return Deal{}, errs.E(errs.Conflict, "'external_key' is already used by another deal in this program: %s", deref(in.ExternalKey))
	}
	if err != nil {
		return Deal{}, err
	}
	return s.dealBy(ctx, s.db, p, "d.id = ?", id)
}

func (s *Service) updateDeal(ctx context.Context, tx *store.Tx, p program.Principal, cur Deal, in DealInput, actor string, settle bool) (bool, error) {
	if cur.Archived {
		return false, errs.E(errs.Conflict, "deal %s is archived and cannot change", cur.Key)
	}
	if in.Source != nil && *in.Source != cur.Source {
		return false, errs.E(errs.Invalid, "'source' cannot change")
	}
	if in.GroupKey != nil && *in.GroupKey != cur.GroupKey {
		return false, errs.E(errs.Invalid, "'group_key' cannot change: a deal's stages are its group's")
	}
	now := s.now()
	u := &update{}
	if in.PartnerKey != nil && (cur.PartnerKey == nil || *cur.PartnerKey != *in.PartnerKey) {
		if cur.PartnershipID != nil {
			return false, errs.E(errs.Invalid, "'partner_key' cannot change: a deal stays with the partnership it was registered for")
		}
		pt, err := findPartnership(ctx, tx, p, in.PartnerKey, true)
		if err != nil {
			return false, err
		}
		if pt.groupID != cur.GroupID {
			return false, errs.E(errs.Invalid, "'partner_key' must name a partnership in the deal's group (%s)", cur.GroupKey)
		}
		if pt.test != cur.Test {
			return false, errs.E(errs.Invalid, "'partner_key' must name a test partner for a test deal, and a live one for a live deal")
		}
		u.set("partnership_id", pt.id)
		u.changes = append(u.changes, *change("partner_key", nil, pt.partnerKey))
	}
	closeDate := cur.CloseDate
	if in.CloseDate != nil {
		closeDate = in.CloseDate
		if *in.CloseDate == "" {
			closeDate = nil
		}
	}
	if in.Stage != nil {
		stages, _, err := stagesOf(ctx, tx, cur.GroupID)
		if err != nil {
			return false, err
		}
		st, err := findStage(stages, *in.Stage)
		if err != nil {
			return false, err
		}
		if c := change("stage", &cur.Stage, st.Name); c != nil {
			u.set("stage", st.Name)
			u.set("outcome", st.Outcome)
			u.changes = append(u.changes, *c)
			if st.Outcome == OutcomeWon && cur.Outcome != OutcomeWon {
				u.set("won_at", now)
				u.sets = append(u.sets, "wins = wins + 1")
				if closeDate == nil {
					closeDate = ptr(time.UnixMilli(now).UTC().Format("2006-01-02"))
				}
			}
		}
	}
	if deref(closeDate) != deref(cur.CloseDate) {
		u.set("close_date", emptyToNil(closeDate))
	}
	if in.LostReason != nil && *in.LostReason != deref(cur.LostReason) {
		u.set("lost_reason", emptyToNil(in.LostReason))
	}
	if in.AccountName != nil && *in.AccountName != cur.AccountName {
		u.set("account_name", *in.AccountName)
	}
	if in.ContactFirstName != nil && *in.ContactFirstName != cur.ContactFirstName {
		u.set("contact_first_name", *in.ContactFirstName)
	}
	if in.ContactLastName != nil && *in.ContactLastName != cur.ContactLastName {
		u.set("contact_last_name", *in.ContactLastName)
	}
	u.setShared(shared{in.Amount, in.Currency, in.ExternalKey, in.Fields, in.Meta},
		shared{cur.Amount, &cur.Currency, cur.ExternalKey, cur.Fields, cur.Meta})
	return s.save(ctx, tx, p, dealKind, cur.ID, u, actor, now, settle)
}

// ArchiveDeal archives a deal; its rewards are reversed.
func (s *Service) ArchiveDeal(ctx context.Context, p program.Principal, ident string) (Deal, error) {
	id, err := s.archive(ctx, p, dealKind, s.dealRef(ctx, p, ident))
	if err != nil {
		return Deal{}, err
	}
	return s.dealBy(ctx, s.db, p, "d.id = ?", id)
}

// ConvertDeal turns a deal into a customer attributed to its partnership,
// and links the two. A deal without a partner cannot be attributed.
func (s *Service) ConvertDeal(ctx context.Context, p program.Principal, ident string, in ConvertInput) (program.Customer, bool, error) {
	return s.convertOne(ctx, p, dealKind, program.SourceDeal, in, s.dealRef(ctx, p, ident))
}

func (s *Service) dealRef(ctx context.Context, p program.Principal, ident string) func(q store.Querier) (ref, error) {
	return func(q store.Querier) (ref, error) {
		d, err := s.dealBy(ctx, q, p, dealIdent, ident, ident)
		return ref{id: d.ID, key: d.Key, archived: d.Archived, partnerKey: d.PartnerKey, customerID: d.CustomerID}, err
	}
}

// DealFilter narrows a deal list.
type DealFilter struct {
	PartnerKey      string
	PartnershipKey  string
	GroupKey        string
	Group           string
	Stage           string
	Outcome         string
	Source          string
	ExternalKey     string
	CustomerKey     string
	IncludeArchived bool
}

// ListDeals lists the deals the principal may see: a partner token its own.
func (s *Service) ListDeals(ctx context.Context, p program.Principal, f DealFilter, page store.Page) ([]Deal, store.Result, error) {
	switch f.Outcome {
	case "", OutcomeOpen, OutcomeWon, OutcomeLost:
	default:
		return nil, store.Result{}, errs.E(errs.Invalid, "'outcome' must be one of open, won, lost")
	}
	spec := p.List(dealCols, dealFrom, "d", "d.partnership_id")
	spec.WhereSet("p.partner_key = ?", f.PartnerKey)
	spec.WhereSet("p.key = ?", f.PartnershipKey)
	spec.WhereSet("g.key = ?", f.GroupKey)
	if f.Group != "" {
		spec.Where("g.slug = ?", program.Slugify(f.Group))
	}
	if f.Stage != "" {
		spec.Where("LOWER(d.stage) = ?", strings.ToLower(strings.TrimSpace(f.Stage)))
	}
	spec.WhereSet("d.outcome = ?", f.Outcome)
	spec.WhereSet("d.source = ?", f.Source)
	spec.WhereSet("d.external_key = ?", f.ExternalKey)
	if f.CustomerKey != "" {
		spec.Where("(cu.key = ? OR cu.customer_key = ?)", f.CustomerKey, f.CustomerKey)
	}
	if !f.IncludeArchived {
		spec.Where("d.archived = 0")
	}
	page.Apply(&spec, "d")
	items, res, err := store.List(ctx, s.db, spec, scanDeal)
	if err != nil {
		return nil, res, err
	}
	ids := make([]int64, len(items))
	for i, d := range items {
		ids[i] = d.ID
	}
	h, err := histories(ctx, s.db, dealKind.name, ids)
	for i := range items {
		items[i].History = h[items[i].ID]
	}
	return items, res, err
}
