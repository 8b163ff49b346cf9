package api

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/partnerd/partnerd/internal/errs"
	"github.com/partnerd/partnerd/internal/pipeline"
)

// UsePipeline sets the leads-and-deals service.
func (s *Server) UsePipeline(p *pipeline.Service) { s.pipeline = p }

// Request body schemas of leads and deals (PartnerStack's names; mold_key
// is accepted for compatibility and ignored, as partnerd has no form
// templates).
var (
	leadFields = []field{
		{name: "partner_key", kind: kString, nullable: true, max: 255},
		{name: "group_key", kind: kString, nullable: true, max: 255},
		{name: "mold_key", kind: kString, nullable: true, max: 255},
		{name: "external_key", kind: kString, nullable: true, max: 255},
		{name: "amount", kind: kInteger, min: 0, max: 50_000_000_000},
		{name: "currency", kind: kString, min: 3, max: 3},
		{name: "approved", kind: kBoolean},
		{name: "status", kind: kString, max: 20},
		{name: "fields", kind: kArray, nullable: true},
		{name: "field_data", kind: kObject, nullable: true},
		{name: "meta", kind: kObject, nullable: true},
	}
	createLeadSchema = schema{strict: true, fields: leadFields}
	updateLeadSchema = schema{strict: true, fields: leadFields}

	dealFields = []field{
		{name: "source", kind: kString, max: 20},
		{name: "partner_key", kind: kString, nullable: true, max: 255},
		{name: "group_key", kind: kString, nullable: true, max: 255},
		{name: "mold_key", kind: kString, nullable: true, max: 255},
		{name: "account_name", kind: kString, max: 255},
		{name: "amount", kind: kInteger, min: 0, max: 50_000_000_000},
		{name: "currency", kind: kString, min: 3, max: 3},
		{name: "close_date", kind: kString, nullable: true, max: 10},
		{name: "contact_first_name", kind: kString, max: 100},
		{name: "contact_last_name", kind: kString, max: 100},
		{name: "external_key", kind: kString, nullable: true, max: 255},
		{name: "stage", kind: kString, max: 100},
		{name: "lost_reason", kind: kString, nullable: true, max: 1000},
		{name: "fields", kind: kArray, nullable: true},
		{name: "field_data", kind: kObject, nullable: true},
		{name: "meta", kind: kObject, nullable: true},
	}
	createDealSchema = schema{strict: true, fields: dealFields}
	updateDealSchema = schema{strict: true, fields: dealFields}

	convertSchema = schema{strict: true, fields: []field{
		{name: "email", kind: kString, required: true, min: 4, max: 255},
		{name: "customer_key", kind: kString, nullable: true, max: 255},
		{name: "name", kind: kString, nullable: true, max: 100},
	}}

	dealStagesSchema = schema{strict: true, fields: []field{
		{name: "group_key", kind: kString, nullable: true, max: 255},
		{name: "stages", kind: kArray, required: true},
	}}
)

func leadInput(b body) pipeline.LeadInput {
	return pipeline.LeadInput{PartnerKey: b.str("partner_key"), GroupKey: b.str("group_key"), ExternalKey: b.str("external_key"),
		Amount: b.int("amount"), Currency: b.str("currency"), Approved: b.boolean("approved"), Status: b.str("status"),
		Fields: b.raw("fields"), Meta: meta(b)}
}

func dealInput(b body) pipeline.DealInput {
	return pipeline.DealInput{Source: b.str("source"), PartnerKey: b.str("partner_key"), GroupKey: b.str("group_key"),
		AccountName: b.str("account_name"), Amount: b.int("amount"), Currency: b.str("currency"), CloseDate: b.strOrClear("close_date"),
		ContactFirstName: b.str("contact_first_name"), ContactLastName: b.str("contact_last_name"), ExternalKey: b.str("external_key"),
		Stage: b.str("stage"), LostReason: b.strOrClear("lost_reason"), Fields: b.raw("fields"), Meta: meta(b)}
}

// replayed answers a create that may have found the stored object.
func replayed[T, J any](w http.ResponseWriter, v T, again bool, err error, render func(T) J, created, stored string) error {
	if err != nil {
		return err
	}
	if again {
		w.Header().Set("Idempotent-Replayed", "true")
		created = stored
	}
	writeData(w, render(v), created)
	return nil
}

func (s *Server) createLead(w http.ResponseWriter, r *http.Request) error {
	b, err := decodeBody(w, r, createLeadSchema)
	if err != nil {
		return err
	}
	l, again, err := s.pipeline.CreateLead(r.Context(), principalOf(r), leadInput(b))
	return replayed(w, l, again, err, renderLead, "Lead created", "Lead already exists with this external_key; returning the stored lead")
}

func (s *Server) getLead(w http.ResponseWriter, r *http.Request) error {
	l, err := s.pipeline.GetLead(r.Context(), principalOf(r), r.PathValue("key"))
	return reply(w, l, err, renderLead, "Lead retrieved")
}

func (s *Server) updateLead(w http.ResponseWriter, r *http.Request) error {
	b, err := decodeBody(w, r, updateLeadSchema)
	if err != nil {
		return err
	}
	l, err := s.pipeline.UpdateLead(r.Context(), principalOf(r), r.PathValue("key"), leadInput(b))
	return reply(w, l, err, renderLead, "Lead updated")
}

func (s *Server) archiveLead(w http.ResponseWriter, r *http.Request) error {
	l, err := s.pipeline.ArchiveLead(r.Context(), principalOf(r), r.PathValue("key"))
	return reply(w, l, err, renderLead, "Lead archived")
}

func convertInput(b body) pipeline.ConvertInput {
	return pipeline.ConvertInput{Email: *b.str("email"), CustomerKey: b.str("customer_key"), Name: b.str("name")}
}

func (s *Server) convertLead(w http.ResponseWriter, r *http.Request) error {
	b, err := decodeBody(w, r, convertSchema)
	if err != nil {
		return err
	}
	cu, again, err := s.pipeline.ConvertLead(r.Context(), principalOf(r), r.PathValue("key"), convertInput(b))
	return replayed(w, cu, again, err, renderCustomer, "Lead converted", "Lead already converted; returning its customer")
}

func (s *Server) listLeads(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	page, archived, err := listParams(q)
	if err != nil {
		return err
	}
	f := pipeline.LeadFilter{PartnerKey: q.Get("partner_key"), PartnershipKey: q.Get("partnership_key"), GroupKey: q.Get("group_key"),
		Group: q.Get("group"), Status: q.Get("status"), ExternalKey: q.Get("external_key"), CustomerKey: q.Get("customer_key"),
		IncludeArchived: archived}
	if q.Has("approved") {
		v, err := parseBool(q, "approved")
		if err != nil {
			return err
		}
		f.Approved = &v
	}
	items, res, err := s.pipeline.ListLeads(r.Context(), principalOf(r), f, page)
	return replyList(w, items, res, err, renderLead, "Leads retrieved")
}

func (s *Server) createDeal(w http.ResponseWriter, r *http.Request) error {
	b, err := decodeBody(w, r, createDealSchema)
	if err != nil {
		return err
	}
	d, again, err := s.pipeline.CreateDeal(r.Context(), principalOf(r), dealInput(b))
	return replayed(w, d, again, err, renderDeal, "Deal created", "Deal already exists with this external_key; returning the stored deal")
}

func (s *Server) getDeal(w http.ResponseWriter, r *http.Request) error {
	d, err := s.pipeline.GetDeal(r.Context(), principalOf(r), r.PathValue("key"))
	return reply(w, d, err, renderDeal, "Deal retrieved")
}

func (s *Server) updateDeal(w http.ResponseWriter, r *http.Request) error {
	b, err := decodeBody(w, r, updateDealSchema)
	if err != nil {
		return err
	}
	d, err := s.pipeline.UpdateDeal(r.Context(), principalOf(r), r.PathValue("key"), dealInput(b))
	return reply(w, d, err, renderDeal, "Deal updated")
}

func (s *Server) archiveDeal(w http.ResponseWriter, r *http.Request) error {
	d, err := s.pipeline.ArchiveDeal(r.Context(), principalOf(r), r.PathValue("key"))
	return reply(w, d, err, renderDeal, "Deal archived")
}

func (s *Server) convertDeal(w http.ResponseWriter, r *http.Request) error {
	b, err := decodeBody(w, r, convertSchema)
	if err != nil {
		return err
	}
	cu, again, err := s.pipeline.ConvertDeal(r.Context(), principalOf(r), r.PathValue("key"), convertInput(b))
	return replayed(w, cu, again, err, renderCustomer, "Deal converted", "Deal already converted; returning its customer")
}

func (s *Server) listDeals(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	page, archived, err := listParams(q)
	if err != nil {
		return err
	}
	f := pipeline.DealFilter{PartnerKey: q.Get("partner_key"), PartnershipKey: q.Get("partnership_key"), GroupKey: q.Get("group_key"),
		Group: q.Get("group"), Stage: q.Get("stage"), Outcome: q.Get("outcome"), Source: q.Get("source"),
		ExternalKey: q.Get("external_key"), CustomerKey: q.Get("customer_key"), IncludeArchived: archived}
	items, res, err := s.pipeline.ListDeals(r.Context(), principalOf(r), f, page)
	return replyList(w, items, res, err, renderDeal, "Deals retrieved")
}

type stageJSON struct {
	Name    string `json:"name"`
	Outcome string `json:"outcome"`
}

type dealStagesJSON struct {
	GroupKey  string      `json:"group_key"`
	GroupName string      `json:"group_name"`
	Custom    bool        `json:"custom"`
	Stages    []stageJSON `json:"stages"`
}

func renderStages(g pipeline.GroupStages) dealStagesJSON {
	out := dealStagesJSON{GroupKey: g.GroupKey, GroupName: g.GroupName, Custom: g.Custom, Stages: []stageJSON{}}
	for _, st := range g.Stages {
		out.Stages = append(out.Stages, stageJSON(st))
	}
	return out
}

func (s *Server) getDealStages(w http.ResponseWriter, r *http.Request) error {
	g, err := s.pipeline.DealStages(r.Context(), principalOf(r), r.URL.Query().Get("group_key"))
	return reply(w, g, err, renderStages, "Deal stages retrieved")
}

func (s *Server) setDealStages(w http.ResponseWriter, r *http.Request) error {
	b, err := decodeBody(w, r, dealStagesSchema)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b.raw("stages")))
	dec.DisallowUnknownFields()
	var in []stageJSON
	if err := dec.Decode(&in); err != nil {
		return errs.E(errs.Invalid, "'stages' must be an array of {\"name\": string, \"outcome\": \"open\"|\"won\"|\"lost\"}")
	}
	stages := make([]pipeline.Stage, len(in))
	for i, st := range in {
		stages[i] = pipeline.Stage(st)
	}
	var group string
	if g := b.str("group_key"); g != nil {
		group = *g
	}
	g, err := s.pipeline.SetDealStages(r.Context(), principalOf(r), group, stages)
	return reply(w, g, err, renderStages, "Deal stages saved")
}

type changeJSON struct {
	Field string  `json:"field"`
	From  *string `json:"from"`
	To    *string `json:"to"`
	At    int64   `json:"at"`
	Actor string  `json:"actor"`
}

func renderHistory(h []pipeline.Change) []changeJSON {
	return renderAll(h, func(c pipeline.Change) changeJSON {
		return changeJSON{Field: c.Field, From: c.From, To: c.To, At: c.At, Actor: c.Actor}
	})
}

type pipelineCustomerJSON struct {
	Key         string  `json:"key"`
	CustomerKey *string `json:"customer_key"`
}

func pipelineCustomer(key, ext *string) *pipelineCustomerJSON {
	if key == nil {
		return nil
	}
	return &pipelineCustomerJSON{Key: *key, CustomerKey: ext}
}

type leadJSON struct {
	Key            string                `json:"key"`
	CreatedAt      int64                 `json:"created_at"`
	UpdatedAt      int64                 `json:"updated_at"`
	PartnerKey     string                `json:"partner_key"`
	PartnershipKey string                `json:"partnership_key"`
	GroupKey       string                `json:"group_key"`
	MoldKey        *string               `json:"mold_key"`
	ExternalKey    *string               `json:"external_key"`
	Amount         *int64                `json:"amount"`
	Currency       string                `json:"currency"`
	Approved       bool                  `json:"approved"`
	ApprovedAt     *int64                `json:"approved_at"`
	Status         string                `json:"status"`
	Fields         json.RawMessage       `json:"fields"`
	FieldData      json.RawMessage       `json:"field_data"`
	MData          json.RawMessage       `json:"mdata"`
	Meta           struct{}              `json:"meta"`
	Customer       *pipelineCustomerJSON `json:"customer"`
	Source         string                `json:"source"`
	Test           bool                  `json:"test"`
	Archived       bool                  `json:"archived"`
	History        []changeJSON          `json:"history"`
	Company        companyJSON           `json:"company"`
}

func renderLead(l pipeline.Lead) leadJSON {
	return leadJSON{Key: l.Key, CreatedAt: l.CreatedAt, UpdatedAt: l.UpdatedAt, PartnerKey: l.PartnerKey, PartnershipKey: l.PartnershipKey,
		GroupKey: l.GroupKey, ExternalKey: l.ExternalKey, Amount: l.Amount, Currency: l.Currency, Approved: l.Approved,
		ApprovedAt: l.ApprovedAt, Status: l.Status, Fields: l.Fields, FieldData: l.Meta, MData: l.Meta,
		Customer: pipelineCustomer(l.CustomerKey, l.CustomerExtKey), Source: l.Source, Test: l.Test, Archived: l.Archived,
		History: renderHistory(l.History), Company: companyJSON{Key: l.Company.Key, Name: l.Company.Name}}
}

type dealJSON struct {
	Key              string                `json:"key"`
	CreatedAt        int64                 `json:"created_at"`
	UpdatedAt        int64                 `json:"updated_at"`
	Source           string                `json:"source"`
	PartnerKey       *string               `json:"partner_key"`
	PartnershipKey   *string               `json:"partnership_key"`
	GroupKey         string                `json:"group_key"`
	MoldKey          *string               `json:"mold_key"`
	AccountName      string                `json:"account_name"`
	Amount           *int64                `json:"amount"`
	Currency         string                `json:"currency"`
	CloseDate        *string               `json:"close_date"`
	ContactFirstName string                `json:"contact_first_name"`
	ContactLastName  string                `json:"contact_last_name"`
	ExternalKey      *string               `json:"external_key"`
	Stage            string                `json:"stage"`
	Outcome          string                `json:"outcome"`
	WonAt            *int64                `json:"won_at"`
	LostReason       *string               `json:"lost_reason"`
	Fields           json.RawMessage       `json:"fields"`
	FieldData        json.RawMessage       `json:"field_data"`
	MData            json.RawMessage       `json:"mdata"`
	Meta             struct{}              `json:"meta"`
	Team             *struct{}             `json:"team"`
	TeamMember       *struct{}             `json:"team_member"`
	Customer         *pipelineCustomerJSON `json:"customer"`
	Origin           string                `json:"origin"`
	Test             bool                  `json:"test"`
	Archived         bool                  `json:"archived"`
	History          []changeJSON          `json:"history"`
	Company          companyJSON           `json:"company"`
}

func renderDeal(d pipeline.Deal) dealJSON {
	return dealJSON{Key: d.Key, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt, Source: d.Source, PartnerKey: d.PartnerKey,
		PartnershipKey: d.PartnershipKey, GroupKey: d.GroupKey, AccountName: d.AccountName, Amount: d.Amount, Currency: d.Currency,
		CloseDate: d.CloseDate, ContactFirstName: d.ContactFirstName, ContactLastName: d.ContactLastName, ExternalKey: d.ExternalKey,
		Stage: d.Stage, Outcome: d.Outcome, WonAt: d.WonAt, LostReason: d.LostReason, Fields: d.Fields, FieldData: d.Meta, MData: d.Meta,
		Customer: pipelineCustomer(d.CustomerKey, d.CustomerExtKey), Origin: d.Origin, Test: d.Test, Archived: d.Archived,
		History: renderHistory(d.History), Company: companyJSON{Key: d.Company.Key, Name: d.Company.Name}}
}
