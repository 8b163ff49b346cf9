package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/partnerd/partnerd/internal/errs"
	"github.com/partnerd/partnerd/internal/program"
	"github.com/partnerd/partnerd/internal/store"
)

// Imports create or update one lead (deal) per row inside the importer's
// transaction, found again by its key or external_key, so importing the
// same file twice changes nothing. A new object keeps the key, the time and
// the history the file gives; a stored one is updated from the row's
// non-empty cells, as the API would, and never moves to another partner.

// imported is what an import adds to a new lead or deal.
type imported struct {
	key        string
	at         int64
	wonAt      *int64
	history    []Change // nil: record the creation as the API does
	customerID *int64
	archived   bool
	noRewards  bool
}

// orNew returns imp, or the defaults of an API write at now.
func (imp *imported) orNew(now int64) *imported {
	if imp == nil {
		return &imported{at: now}
	}
	if imp.at == 0 {
		imp.at = now
	}
	return imp
}

// sourceOf is how an object created by actor came in.
func sourceOf(actor string) string {
	switch actor {
	case ActorPartner:
		return SourcePartner
	case ActorImport:
		return SourceImport
	}
	return SourceAPI
}

// maxFuture is how far ahead of now an imported time may be.
const maxFuture = 86_400_000

func importTime(field string, at *int64, now int64) (int64, error) {
	if at == nil {
		return 0, nil
	}
	if *at < 0 || *at > now+maxFuture {
		return 0, errs.E(errs.Invalid, "'%s' must be between 1970 and one day from now", field)
	}
	return *at, nil
}

// parseHistory reads a history column: the JSON array the export writes
// (and the API shows), oldest change first.
func parseHistory(raw json.RawMessage) ([]Change, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var in []struct {
		Field string  `json:"field"`
		From  *string `json:"from"`
		To    *string `json:"to"`
		At    *int64  `json:"at"`
		Actor string  `json:"actor"`
	}
	bad := errs.E(errs.Invalid, "'history' must be a JSON array of {\"field\", \"from\", \"to\", \"at\" (epoch ms), \"actor\"}")
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return nil, bad
	}
	out := make([]Change, 0, len(in))
	for i, c := range in {
		if c.Field == "" || len(c.Field) > 50 || c.At == nil || *c.At < 0 {
			return nil, bad
		}
		switch c.Actor {
		case ActorVendor, ActorPartner, ActorImport:
		default:
			return nil, errs.E(errs.Invalid, "'history' entry %d: 'actor' must be one of vendor, partner, import", i)
		}
		out = append(out, Change{Field: c.Field, From: c.From, To: c.To, At: *c.At, Actor: c.Actor})
	}
	return out, nil
}

// HistoryJSON returns the history of every lead (kind "lead") or deal
// ("deal") of a company as the JSON array the import reads, by object id.
func HistoryJSON(ctx context.Context, q store.Querier, companyID int64, kind string) (map[int64]string, error) {
	rows, err := q.Query(ctx, `SELECT object_id, field, from_value, to_value, at, actor FROM pipeline_history
		WHERE company_id = ? AND object_kind = ? ORDER BY object_id, id`, companyID, kind)
	if err != nil {
		return nil, fmt.Errorf("load %s history: %w", kind, err)
	}
	defer rows.Close()
	type entry struct {
		Field string  `json:"field"`
		From  *string `json:"from"`
		To    *string `json:"to"`
		At    int64   `json:"at"`
		Actor string  `json:"actor"`
	}
	all := map[int64][]entry{}
	for rows.Next() {
		var id int64
		var e entry
		if err := rows.Scan(&id, &e.Field, &e.From, &e.To, &e.At, &e.Actor); err != nil {
			return nil, fmt.Errorf("scan %s history: %w", kind, err)
		}
		all[id] = append(all[id], e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load %s history: %w", kind, err)
	}
	out := make(map[int64]string, len(all))
	for id, h := range all {
		b, err := json.Marshal(h)
		if err != nil {
			return nil, fmt.Errorf("encode %s history: %w", kind, err)
		}
		out[id] = string(b)
	}
	return out, nil
}

// StagesJSON returns every group's own deal stages as the JSON array the
// group import reads, by group id (groups on the defaults have none).
func StagesJSON(ctx context.Context, q store.Querier, companyID int64) (map[int64]string, error) {
	rows, err := q.Query(ctx, "SELECT group_id, name, outcome FROM deal_stages WHERE company_id = ? ORDER BY group_id, position", companyID)
	if err != nil {
		return nil, fmt.Errorf("load deal stages: %w", err)
	}
	defer rows.Close()
	type stage struct {
		Name    string `json:"name"`
		Outcome string `json:"outcome"`
	}
	all := map[int64][]stage{}
	for rows.Next() {
		var id int64
		var st stage
		if err := rows.Scan(&id, &st.Name, &st.Outcome); err != nil {
			return nil, fmt.Errorf("scan deal stage: %w", err)
		}
		all[id] = append(all[id], st)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load deal stages: %w", err)
	}
	out := make(map[int64]string, len(all))
	for id, sts := range all {
		b, err := json.Marshal(sts)
		if err != nil {
			return nil, fmt.Errorf("encode deal stages: %w", err)
		}
		out[id] = string(b)
	}
	return out, nil
}

// ImportDealStages sets the deal stages a group row carries (a JSON array
// of {"name", "outcome"}) on the group with the row's key or, without one,
// the slug of its name. It reports whether they changed.
func (s *Service) ImportDealStages(ctx context.Context, tx *store.Tx, p program.Principal, groupKey, groupName string, raw json.RawMessage) (bool, error) {
	if len(raw) == 0 {
		return false, nil
	}
	var stages []Stage
	var in []stageRow
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return false, errs.E(errs.Invalid, "'deal_stages' must be a JSON array of {\"name\", \"outcome\"}")
	}
	for _, r := range in {
		stages = append(stages, Stage(r))
	}
	if err := checkStages(stages); err != nil {
		return false, errs.E(errs.Invalid, "'deal_stages': %s", strings.TrimPrefix(errs.MessageOf(err), "'stages"))
	}
	var groupID int64
	cond, arg := "key = ?", groupKey
	if groupKey == "" {
		cond, arg = "slug = ?", program.Slugify(groupName)
	}
	if err := tx.QueryRow(ctx, "SELECT id FROM groups WHERE company_id = ? AND "+cond, p.CompanyID, arg).Scan(&groupID); err != nil {
		return false, fmt.Errorf("find imported group: %w", err)
	}
	cur, custom, err := stagesOf(ctx, tx, groupID)
	if err != nil {
		return false, err
	}
	if custom && len(cur) == len(stages) {
		same := true
		for i := range cur {
			same = same && cur[i] == stages[i]
		}
		if same {
			return false, nil
		}
	}
	return true, replaceStages(ctx, tx, p.CompanyID, groupID, stages)
}

type stageRow struct {
	Name    string `json:"name"`
	Outcome string `json:"outcome"`
}

// importedCustomer resolves the customer a row says the object was
// converted into; it must be attributed to the object's partnership.
func (s *Service) importedCustomer(ctx context.Context, tx *store.Tx, p program.Principal, ident string, partnershipID *int64) (*int64, error) {
	if ident == "" {
		return nil, nil
	}
	cu, err := s.prog.ResolveCustomer(ctx, tx, program.Principal{CompanyID: p.CompanyID}, program.CustomerRef{Key: ident})
	if err != nil {
		return nil, errs.E(errs.Invalid, "'customer' does not match any customer in this program (import customers first): %s", ident)
	}
	if partnershipID == nil || cu.PartnershipID != *partnershipID {
		return nil, errs.E(errs.Invalid, "'customer' %s is attributed to another partner (%s)", ident, cu.PartnerKey)
	}
	return &cu.ID, nil
}

// findImported looks an object up by the row's key and external_key,
// which must not name two objects.
func findImported[T any](ctx context.Context, tx *store.Tx, p program.Principal, key, external string,
	by func(ctx context.Context, q store.Querier, p program.Principal, cond string, args ...any) (T, error),
	idOf func(T) int64, alias string) (*T, error) {
	scope := program.Principal{CompanyID: p.CompanyID}
	var found *T
	for _, f := range []struct{ field, val string }{{"key", key}, {"external_key", external}} {
		if f.val == "" {
			continue
		}
		got, err := by(ctx, tx, scope, alias+"."+f.field+" = ?", f.val)
		if errs.CodeOf(err) == errs.NotFound {
			continue
		}
		if err != nil {
			return nil, err
		}
		if found != nil && idOf(*found) != idOf(got) {
			return nil, errs.E(errs.Conflict, "'external_key' %s belongs to another object than the row's key %s", external, key)
		}
		found = &got
	}
	return found, nil
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

const keyRequired = "'key' is required: a %s needs a key or an external_key, which is what makes importing the same file twice safe"

// LeadImport is one row of a lead import.
type LeadImport struct {
	Key, ExternalKey, PartnerKey, GroupKey string
	Amount                                 *int64
	Currency                               string
	Approved                               *bool
	Status                                 string
	Fields, Meta                           json.RawMessage
	Customer                               string // the customer it was converted into: key or customer_key
	Archived                               *bool
	CreatedAt                              *int64
	History                                json.RawMessage
}

// ImportLead creates or updates the row's lead. rewards says whether it
// earns (a migration's history imports with --no-rewards, its rewards from
// their own file).
func (s *Service) ImportLead(ctx context.Context, tx *store.Tx, p program.Principal, in LeadImport, rewards bool) (program.Outcome, error) {
	if err := program.CheckImportKey("key", in.Key); err != nil {
		return "", err
	}
	if in.Key == "" && in.ExternalKey == "" {
		return "", errs.E(errs.Invalid, keyRequired, "lead")
	}
	lin := LeadInput{PartnerKey: nonEmpty(in.PartnerKey), GroupKey: nonEmpty(in.GroupKey), ExternalKey: nonEmpty(in.ExternalKey),
		Amount: in.Amount, Currency: nonEmpty(in.Currency), Approved: in.Approved, Status: nonEmpty(in.Status), Fields: in.Fields, Meta: in.Meta}
	if err := checkLead(program.Principal{CompanyID: p.CompanyID}, lin); err != nil {
		return "", err
	}
	cur, err := findImported(ctx, tx, p, in.Key, in.ExternalKey, s.leadBy, func(l Lead) int64 { return l.ID }, "l")
	if err != nil {
		return "", err
	}
	now := s.now()
	if cur == nil {
		if in.Key != "" {
			if err := program.KeyFree(ctx, tx, "leads", "lead", in.Key); err != nil {
				return "", err
			}
		}
		imp := &imported{key: in.Key, archived: in.Archived != nil && *in.Archived, noRewards: !rewards}
		if imp.at, err = importTime("created_at", in.CreatedAt, now); err != nil {
			return "", err
		}
		if imp.history, err = parseHistory(in.History); err != nil {
			return "", err
		}
		if in.Customer != "" {
			pt, err := findPartnership(ctx, tx, p, lin.PartnerKey, true)
			if err != nil {
				return "", err
			}
			if imp.customerID, err = s.importedCustomer(ctx, tx, p, in.Customer, &pt.id); err != nil {
				return "", err
			}
		}
		if _, _, err := s.createLead(ctx, tx, p, lin, ActorImport, imp); err != nil {
			return "", err
		}
		return program.Created, nil
	}
	if cur.Archived {
		return program.Unchanged, nil // an import does not change an archived lead
	}
	if in.PartnerKey != "" && in.PartnerKey != cur.PartnerKey {
		return "", errs.E(errs.Conflict, "'partner_key' %s differs from the partner lead %s was registered by (%s); it does not change",
			in.PartnerKey, cur.Key, cur.PartnerKey)
	}
	lin.PartnerKey = nil
	out := *cur
	changed, err := s.updateLead(ctx, tx, p, *cur, lin, ActorImport, rewards)
	if err != nil {
		return "", err
	}
	if in.Customer != "" && out.CustomerID == nil {
		id, err := s.importedCustomer(ctx, tx, p, in.Customer, &out.PartnershipID)
		if err != nil {
			return "", err
		}
		if _, err := tx.Exec(ctx, "UPDATE leads SET customer_id = ?, updated_at = ? WHERE id = ?", *id, now, out.ID); err != nil {
			return "", fmt.Errorf("link lead to customer: %w", err)
		}
		changed = true
	}
	if in.Archived != nil && *in.Archived {
		if _, err := tx.Exec(ctx, "UPDATE leads SET archived = 1, updated_at = ? WHERE id = ?", now, out.ID); err != nil {
			return "", fmt.Errorf("archive lead: %w", err)
		}
		if err := s.changed(ctx, tx, leadKind, p.CompanyID, leadKind.updated, out.ID, now, rewards); err != nil {
			return "", err
		}
		changed = true
	}
	if !changed {
		return program.Unchanged, nil
	}
	return program.Updated, nil
}

// DealImport is one row of a deal import.
type DealImport struct {
	Key, ExternalKey, Source, PartnerKey, GroupKey string
	AccountName, ContactFirstName, ContactLastName string
	Amount                                         *int64
	Currency, CloseDate, Stage, LostReason         string
	Fields, Meta                                   json.RawMessage
	Customer                                       string
	Archived                                       *bool
	CreatedAt, WonAt                               *int64
	History                                        json.RawMessage
}

// ImportDeal creates or updates the row's deal, as ImportLead does.
func (s *Service) ImportDeal(ctx context.Context, tx *store.Tx, p program.Principal, in DealImport, rewards bool) (program.Outcome, error) {
	if err := program.CheckImportKey("key", in.Key); err != nil {
		return "", err
	}
	if in.Key == "" && in.ExternalKey == "" {
		return "", errs.E(errs.Invalid, keyRequired, "deal")
	}
	din := DealInput{Source: nonEmpty(in.Source), PartnerKey: nonEmpty(in.PartnerKey), GroupKey: nonEmpty(in.GroupKey),
		AccountName: nonEmpty(in.AccountName), Amount: in.Amount, Currency: nonEmpty(in.Currency), CloseDate: nonEmpty(in.CloseDate),
		ContactFirstName: nonEmpty(in.ContactFirstName), ContactLastName: nonEmpty(in.ContactLastName),
		ExternalKey: nonEmpty(in.ExternalKey), Stage: nonEmpty(in.Stage), LostReason: nonEmpty(in.LostReason), Fields: in.Fields, Meta: in.Meta}
	if err := checkDeal(din); err != nil {
		return "", err
	}
	cur, err := findImported(ctx, tx, p, in.Key, in.ExternalKey, s.dealBy, func(d Deal) int64 { return d.ID }, "d")
	if err != nil {
		return "", err
	}
	now := s.now()
	if cur == nil {
		if in.Key != "" {
			if err := program.KeyFree(ctx, tx, "deals", "deal", in.Key); err != nil {
				return "", err
			}
		}
		imp := &imported{key: in.Key, archived: in.Archived != nil && *in.Archived, noRewards: !rewards}
		if imp.at, err = importTime("created_at", in.CreatedAt, now); err != nil {
			return "", err
		}
		if in.WonAt != nil {
			at, err := importTime("won_at", in.WonAt, now)
			if err != nil {
				return "", err
			}
			imp.wonAt = &at
		}
		if imp.history, err = parseHistory(in.History); err != nil {
			return "", err
		}
		if in.Customer != "" {
			pt, err := findPartnership(ctx, tx, p, din.PartnerKey, false)
			if err != nil {
				return "", err
			}
			var pid *int64
			if pt != nil {
				pid = &pt.id
			}
			if imp.customerID, err = s.importedCustomer(ctx, tx, p, in.Customer, pid); err != nil {
				return "", err
			}
		}
		if _, _, err := s.createDeal(ctx, tx, p, din, ActorImport, imp); err != nil {
			return "", err
		}
		return program.Created, nil
	}
	if cur.Archived {
		return program.Unchanged, nil // an import does not change an archived deal
	}
	changed, err := s.updateDeal(ctx, tx, p, *cur, din, ActorImport, rewards)
	if err != nil {
		return "", err
	}
	out := *cur
	if in.Customer != "" && out.CustomerID == nil {
		// The row may have given the deal its partner: read it again.
		if out, err = s.dealBy(ctx, tx, program.Principal{CompanyID: p.CompanyID}, "d.id = ?", cur.ID); err != nil {
			return "", err
		}
		id, err := s.importedCustomer(ctx, tx, p, in.Customer, out.PartnershipID)
		if err != nil {
			return "", err
		}
		if _, err := tx.Exec(ctx, "UPDATE deals SET customer_id = ?, updated_at = ? WHERE id = ?", *id, now, out.ID); err != nil {
			return "", fmt.Errorf("link deal to customer: %w", err)
		}
		changed = true
	}
	if in.Archived != nil && *in.Archived {
		if _, err := tx.Exec(ctx, "UPDATE deals SET archived = 1, updated_at = ? WHERE id = ?", now, out.ID); err != nil {
			return "", fmt.Errorf("archive deal: %w", err)
		}
		if err := s.changed(ctx, tx, dealKind, p.CompanyID, dealKind.updated, out.ID, now, rewards); err != nil {
			return "", err
		}
		changed = true
	}
	if !changed {
		return program.Unchanged, nil
	}
	return program.Updated, nil
}
