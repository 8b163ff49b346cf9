package api

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/partnerd/partnerd/internal/errs"
	"github.com/partnerd/partnerd/internal/ledger"
)

var (
	offerFields = []field{
		{name: "name", kind: kString, min: 1, max: 255},
		{name: "trigger", kind: kString, max: 20},
		{name: "type", kind: kString, max: 20},
		{name: "rate", kind: kString, nullable: true, max: 20},
		{name: "amount", kind: kInteger, nullable: true, min: 1, max: 50_000_000_000},
		{name: "currency", kind: kString, nullable: true, min: 3, max: 3},
		{name: "duration_months", kind: kInteger, nullable: true, min: 0, max: 1200},
		{name: "max_transactions", kind: kInteger, nullable: true, min: 1, max: 100000},
		{name: "product_key", kind: kString, nullable: true, min: 1, max: 255},
		{name: "category_key", kind: kString, nullable: true, min: 1, max: 255},
		{name: "action_type", kind: kString, nullable: true, min: 1, max: 255},
		{name: "hold_days", kind: kInteger, min: 0, max: 365},
		{name: "group_key", kind: kString, nullable: true, max: 255},
	}
	createOfferSchema = schema{strict: true, fields: withRequired(offerFields, "name", "trigger", "type")}
	updateOfferSchema = schema{strict: true, fields: offerFields}

	createRewardSchema = schema{strict: true, fields: []field{
		{name: "amount", kind: kInteger, required: true, min: -50_000_000_000, max: 50_000_000_000},
		{name: "currency", kind: kString, nullable: true, min: 3, max: 3},
		{name: "description", kind: kString, nullable: true, max: 255},
		{name: "target", kind: kObject, required: true},
	}}
	targetSchema = schema{strict: true, fields: []field{
		{name: "type", kind: kString, required: true, max: 20},
		{name: "key", kind: kString, required: true, min: 1, max: 255},
	}}
	declineSchema = schema{strict: true, fields: []field{{name: "reason", kind: kString, required: true, min: 1, max: 500}}}
	approveSchema = schema{strict: true}
	paidSchema    = schema{strict: true, fields: []field{{name: "external_reference", kind: kString, required: true, min: 1, max: 255}}}

	createActionSchema = schema{strict: true, fields: []field{
		{name: "type", kind: kString, required: true, min: 1, max: 255},
		{name: "value", kind: kInteger, required: true, min: 1, max: 1_000_000},
		{name: "target_type", kind: kString, required: true, max: 20},
		{name: "target_key", kind: kString, required: true, min: 1, max: 255},
		{name: "external_key", kind: kString, nullable: true, min: 1, max: 255},
	}}

	ratesSchema = schema{strict: true, fields: []field{{name: "rates", kind: kArray, required: true}}}
	rateSchema  = schema{strict: true, fields: []field{
		{name: "currency", kind: kString, required: true, min: 3, max: 3},
		{name: "date", kind: kString, required: true, min: 10, max: 10},
		{name: "usd_rate", kind: kString, required: true, min: 1, max: 30},
	}}
)

// nested validates a JSON object inside a body, naming errors after the
// outer field.
func nested(name string, raw json.RawMessage, sc schema) (body, error) {
	b, err := parseBody(raw, sc)
	if err != nil {
		return nil, errs.E(errs.Invalid, "'%s': %s", name, errs.MessageOf(err))
	}
	return b, nil
}

func offerInput(b body) ledger.OfferInput {
	in := ledger.OfferInput{Set: map[string]bool{}}
	for k := range b {
		in.Set[k] = true
	}
	in.Name, in.Trigger, in.Type, in.Rate = b.str("name"), b.str("trigger"), b.str("type"), b.str("rate")
	in.Amount, in.Currency = b.int("amount"), b.str("currency")
	in.ProductKey, in.CategoryKey, in.ActionType, in.GroupKey = b.str("product_key"), b.str("category_key"), b.str("action_type"), b.str("group_key")
	toInt := func(v *int64) *int {
		if v == nil {
			return nil
		}
		n := int(*v)
		return &n
	}
	in.DurationMonths, in.MaxTransactions, in.HoldDays = toInt(b.int("duration_months")), toInt(b.int("max_transactions")), toInt(b.int("hold_days"))
	return in
}

func (s *Server) createOffer(w http.ResponseWriter, r *http.Request) error {
	b, err := decodeBody(w, r, createOfferSchema)
	if err != nil {
		return err
	}
	o, err := s.ledger.CreateOffer(r.Context(), principalOf(r), offerInput(b))
	return reply(w, o, err, renderOffer, "Offer created")
}

func (s *Server) getOffer(w http.ResponseWriter, r *http.Request) error {
	o, err := s.ledger.GetOffer(r.Context(), principalOf(r), r.PathValue("key"))
	return reply(w, o, err, renderOffer, "Offer retrieved")
}

func (s *Server) updateOffer(w http.ResponseWriter, r *http.Request) error {
	b, err := decodeBody(w, r, updateOfferSchema)
	if err != nil {
		return err
	}
	o, err := s.ledger.UpdateOffer(r.Context(), principalOf(r), r.PathValue("key"), offerInput(b))
	return reply(w, o, err, renderOffer, "Offer updated")
}

func (s *Server) archiveOffer(w http.ResponseWriter, r *http.Request) error {
	o, err := s.ledger.ArchiveOffer(r.Context(), principalOf(r), r.PathValue("key"))
	return reply(w, o, err, renderOffer, "Offer archived")
}

func (s *Server) listOffers(w http.ResponseWriter, r *http.Request) error {
	page, archived, err := listParams(r.URL.Query())
	if err != nil {
		return err
	}
	items, res, err := s.ledger.ListOffers(r.Context(), principalOf(r), archived, page)
	return replyList(w, items, res, err, renderOffer, "Offers retrieved")
}

func (s *Server) listRewards(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	page, err := parsePage(q, "amount", "ready_at")
	if err != nil {
		return err
	}
	archived, err := parseBool(q, "include_archived")
	if err != nil {
		return err
	}
	f := ledger.RewardFilter{Status: q.Get("status"), CustomerKey: q.Get("customer_key"), GroupKey: q.Get("group_key"),
		PartnerKey: q.Get("partner_key"), PartnershipKey: q.Get("partnership_key"), TransactionKey: q.Get("transaction_key"),
		PayoutKey: q.Get("payout_key"), LeadKey: q.Get("lead_key"), DealKey: q.Get("deal_key"), IncludeArchived: archived}
	items, res, err := s.ledger.ListRewards(r.Context(), principalOf(r), f, page)
	return replyList(w, items, res, err, renderReward, "Rewards retrieved")
}

func (s *Server) getReward(w http.ResponseWriter, r *http.Request) error {
	rw, err := s.ledger.GetReward(r.Context(), principalOf(r), r.PathValue("key"))
	return reply(w, rw, err, renderReward, "Reward retrieved")
}

func (s *Server) createReward(w http.ResponseWriter, r *http.Request) error {
	b, err := decodeBody(w, r, createRewardSchema)
	if err != nil {
		return err
	}
	t, err := nested("target", b.raw("target"), targetSchema)
	if err != nil {
		return err
	}
	in := ledger.ManualReward{Amount: *b.int("amount"), Currency: "USD", TargetType: *t.str("type"), TargetKey: *t.str("key")}
	if c := b.str("currency"); c != nil {
		in.Currency = *c
	}
	if d := b.str("description"); d != nil {
		in.Description = *d
	}
	rw, err := s.ledger.CreateManualReward(r.Context(), principalOf(r), in)
	return reply(w, rw, err, renderReward, "Reward created")
}

func (s *Server) approveReward(w http.ResponseWriter, r *http.Request) error {
	if _, err := decodeBody(w, r, approveSchema); err != nil {
		return err
	}
	rw, err := s.ledger.SetRewardStatus(r.Context(), principalOf(r), r.PathValue("key"), ledger.StatusApproved, nil)
	return reply(w, rw, err, renderReward, "Reward approved")
}

func (s *Server) declineReward(w http.ResponseWriter, r *http.Request) error {
	b, err := decodeBody(w, r, declineSchema)
	if err != nil {
		return err
	}
	rw, err := s.ledger.SetRewardStatus(r.Context(), principalOf(r), r.PathValue("key"), ledger.StatusDeclined, b.str("reason"))
	return reply(w, rw, err, renderReward, "Reward declined")
}

func (s *Server) explainReward(w http.ResponseWriter, r *http.Request) error {
	rw, err := s.ledger.GetReward(r.Context(), principalOf(r), r.PathValue("key"))
	return reply(w, rw, err, func(rw ledger.Reward) rewardExplainJSON {
		return rewardExplainJSON{Reward: renderReward(rw), Explanation: rw.Explanation}
	}, "Reward explained")
}

func (s *Server) explainTransaction(w http.ResponseWriter, r *http.Request) error {
	e, err := s.ledger.ExplainTransaction(r.Context(), principalOf(r), r.PathValue("key"))
	return reply(w, e, err, renderTxExplanation, "Transaction explained")
}

func (s *Server) listPayouts(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	page, err := parsePage(q)
	if err != nil {
		return err
	}
	f := ledger.PayoutFilter{Period: q.Get("period"), Status: q.Get("status"), PartnershipKey: q.Get("partnership_key")}
	items, res, err := s.ledger.ListPayouts(r.Context(), principalOf(r), f, page)
	return replyList(w, items, res, err, renderPayout, "Payouts retrieved")
}

func (s *Server) getPayout(w http.ResponseWriter, r *http.Request) error {
	po, err := s.ledger.GetPayout(r.Context(), principalOf(r), r.PathValue("key"))
	return reply(w, po, err, renderPayout, "Payout retrieved")
}

func (s *Server) payoutPaid(w http.ResponseWriter, r *http.Request) error {
	b, err := decodeBody(w, r, paidSchema)
	if err != nil {
		return err
	}
	po, err := s.ledger.MarkPaid(r.Context(), principalOf(r), r.PathValue("key"), *b.str("external_reference"))
	return reply(w, po, err, renderPayout, "Payout marked paid")
}

func (s *Server) exportPayouts(w http.ResponseWriter, r *http.Request) error {
	period := r.URL.Query().Get("period")
	if period == "" {
		return errs.E(errs.Invalid, "'period' is required: the month to export, YYYY-MM")
	}
	if _, err := ledger.ParsePeriod(period); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="payouts-`+period+`.csv"`)
	return s.ledger.ExportPayouts(r.Context(), principalOf(r), period, w)
}

func (s *Server) createAction(w http.ResponseWriter, r *http.Request) error {
	b, err := decodeBody(w, r, createActionSchema)
	if err != nil {
		return err
	}
	in := ledger.ActionInput{Type: *b.str("type"), Value: *b.int("value"), TargetType: *b.str("target_type"),
		TargetKey: *b.str("target_key"), ExternalKey: b.str("external_key")}
	a, replayed, err := s.ledger.RecordAction(r.Context(), principalOf(r), in)
	if err != nil {
		return err
	}
	msg := "Action created"
	if replayed {
		w.Header().Set("Idempotent-Replayed", "true")
		msg = "Action already exists with this external_key; returning the stored action"
	}
	writeData(w, renderAction(a), msg)
	return nil
}

func (s *Server) listActions(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	page, archived, err := listParams(q)
	if err != nil {
		return err
	}
	f := ledger.ActionFilter{PartnershipKey: q.Get("partnership_key"), CustomerKey: q.Get("customer_key"),
		ActionType: q.Get("action_type"), IncludeArchived: archived}
	items, res, err := s.ledger.ListActions(r.Context(), principalOf(r), f, page)
	return replyList(w, items, res, err, renderAction, "Actions retrieved")
}

func (s *Server) archiveAction(w http.ResponseWriter, r *http.Request) error {
	a, err := s.ledger.ArchiveAction(r.Context(), principalOf(r), r.PathValue("key"))
	return reply(w, a, err, renderAction, "Action archived")
}

func (s *Server) loadRates(w http.ResponseWriter, r *http.Request) error {
	b, err := decodeBody(w, r, ratesSchema)
	if err != nil {
		return err
	}
	var items []json.RawMessage
	if err := json.Unmarshal(b.raw("rates"), &items); err != nil {
		return errs.E(errs.Invalid, "'rates' must be an array of objects")
	}
	if len(items) > 10000 {
		return errs.E(errs.Invalid, "'rates' may list at most 10000 rates per call")
	}
	rates := make([]ledger.Rate, 0, len(items))
	for i, raw := range items {
		rb, err := nested("rates["+strconv.Itoa(i)+"]", raw, rateSchema)
		if err != nil {
			return err
		}
		rates = append(rates, ledger.Rate{Currency: *rb.str("currency"), Day: *rb.str("date"), USDRate: *rb.str("usd_rate")})
	}
	n, err := s.ledger.LoadRates(r.Context(), principalOf(r), rates)
	if err != nil {
		return err
	}
	writeData(w, map[string]int{"loaded": n}, "Exchange rates loaded")
	return nil
}

// Wire shapes.

type offerJSON struct {
	Key             string  `json:"key"`
	CreatedAt       int64   `json:"created_at"`
	UpdatedAt       int64   `json:"updated_at"`
	Name            string  `json:"name"`
	Trigger         string  `json:"trigger"`
	Type            string  `json:"type"`
	Rate            *string `json:"rate"`
	Amount          *int64  `json:"amount"`
	Currency        *string `json:"currency"`
	DurationMonths  *int    `json:"duration_months"`
	MaxTransactions *int    `json:"max_transactions"`
	ProductKey      *string `json:"product_key"`
	CategoryKey     *string `json:"category_key"`
	ActionType      *string `json:"action_type"`
	HoldDays        int     `json:"hold_days"`
	GroupKey        *string `json:"group_key"`
	Archived        bool    `json:"archived"`
}

func renderOffer(o ledger.Offer) offerJSON {
	return offerJSON{Key: o.Key, CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt, Name: o.Name, Trigger: o.Trigger, Type: o.Type,
		Rate: o.Rate, Amount: o.Amount, Currency: o.Currency, DurationMonths: o.DurationMonths, MaxTransactions: o.MaxTransactions,
		ProductKey: o.ProductKey, CategoryKey: o.CategoryKey, ActionType: o.ActionType, HoldDays: o.HoldDays, GroupKey: o.GroupKey,
		Archived: o.Archived}
}

type keyDescJSON struct {
	Key         string `json:"key"`
	Description string `json:"description"`
}

type rewardCustomerJSON struct {
	Key         string  `json:"key"`
	Email       *string `json:"email"`
	Name        *string `json:"name"`
	ExternalKey *string `json:"external_key"`
}

type rewardTxJSON struct {
	Key      string `json:"key"`
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

type rewardActionJSON struct {
	Key   string `json:"key"`
	Type  string `json:"type"`
	Value int64  `json:"value"`
}

type rewardPartnershipJSON struct {
	Key        string      `json:"key"`
	PartnerKey string      `json:"partner_key"`
	Name       string      `json:"name"`
	Group      rewardGroup `json:"group"`
}

type rewardGroup struct {
	Key  string `json:"key"`
	Name string `json:"name"`
}

type rewardJSON struct {
	Key           string                `json:"key"`
	CreatedAt     int64                 `json:"created_at"`
	UpdatedAt     int64                 `json:"updated_at"`
	Amount        int64                 `json:"amount"`
	Currency      string                `json:"currency"`
	AmountUSD     *int64                `json:"amount_usd"`
	Description   string                `json:"description"`
	RewardStatus  string                `json:"reward_status"`
	DeclineReason *string               `json:"decline_reason"`
	HoldReason    *string               `json:"hold_reason"`
	ReadyAt       int64                 `json:"ready_at"`
	Source        string                `json:"source"`
	Offer         *keyDescJSON          `json:"offer"`
	Customer      *rewardCustomerJSON   `json:"customer"`
	Transaction   *rewardTxJSON         `json:"transaction"`
	Action        *rewardActionJSON     `json:"action"`
	Lead          *rewardLeadJSON       `json:"lead"`
	Deal          *rewardDealJSON       `json:"deal"`
	Partnership   rewardPartnershipJSON `json:"partnership"`
	PayoutKey     *string               `json:"payout_key"`
	Reverses      *string               `json:"reverses"`
	Test          bool                  `json:"test"`
	Archived      bool                  `json:"archived"`
}

type rewardLeadJSON struct {
	Key string `json:"key"`
}

type rewardDealJSON struct {
	Key         string `json:"key"`
	AccountName string `json:"account_name"`
}

func renderReward(r ledger.Reward) rewardJSON {
	out := rewardJSON{Key: r.Key, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, Amount: r.Amount, Currency: r.Currency,
		AmountUSD: r.AmountUSD, Description: r.Description, RewardStatus: r.Status, DeclineReason: r.DeclineReason,
		HoldReason: r.HoldReason, ReadyAt: r.ReadyAt, Source: r.Source, PayoutKey: r.PayoutKey, Reverses: r.ReversesKey,
		Test: r.Test, Archived: r.Archived,
		Partnership: rewardPartnershipJSON{Key: r.PartnershipKey, PartnerKey: r.PartnerKey, Name: r.PartnerName,
			Group: rewardGroup{Key: r.GroupKey, Name: r.GroupName}}}
	if r.OfferKey != nil {
		out.Offer = &keyDescJSON{Key: *r.OfferKey, Description: *r.OfferName}
	}
	if r.CustomerKey != nil {
		out.Customer = &rewardCustomerJSON{Key: *r.CustomerKey, Email: r.CustomerEmail, Name: r.CustomerName, ExternalKey: r.CustomerExtKey}
	}
	if r.LeadKey != nil {
		out.Lead = &rewardLeadJSON{Key: *r.LeadKey}
	}
	if r.DealKey != nil {
		out.Deal = &rewardDealJSON{Key: *r.DealKey, AccountName: *r.DealName}
	}
	if r.TxKey != nil {
		out.Transaction = &rewardTxJSON{Key: *r.TxKey, Amount: *r.TxAmount, Currency: *r.TxCurrency}
	}
	if r.ActionKey != nil {
		out.Action = &rewardActionJSON{Key: *r.ActionKey, Type: *r.ActionType, Value: *r.ActionValue}
	}
	return out
}

type rewardExplainJSON struct {
	Reward      rewardJSON      `json:"reward"`
	Explanation json.RawMessage `json:"explanation"`
}

type offerOutcomeJSON struct {
	OfferKey  string  `json:"offer_key"`
	OfferName string  `json:"offer_name"`
	Earns     bool    `json:"earns"`
	Amount    *int64  `json:"amount"`
	Currency  *string `json:"currency"`
	Reason    *string `json:"reason_code"`
	Message   *string `json:"reason"`
}

type txExplainJSON struct {
	Transaction transactionJSON    `json:"transaction"`
	Earns       bool               `json:"earns"`
	Reason      *string            `json:"reason_code"`
	Message     *string            `json:"reason"`
	Offers      []offerOutcomeJSON `json:"offers"`
	Rewards     []rewardJSON       `json:"rewards"`
}

func renderTxExplanation(e ledger.TxExplanation) txExplainJSON {
	out := txExplainJSON{Transaction: renderTransaction(e.Transaction), Offers: []offerOutcomeJSON{}, Rewards: renderAll(e.Rewards, renderReward)}
	if e.Blocked != "" {
		out.Reason, out.Message = &e.Blocked, &e.BlockedWhy
	}
	for _, o := range e.Offers {
		oo := offerOutcomeJSON{OfferKey: o.OfferKey, OfferName: o.OfferName, Earns: o.Earns}
		if o.Earns {
			amount, cur := o.Amount, o.Currency
			oo.Amount, oo.Currency = &amount, &cur
			out.Earns = true
		} else {
			code, msg := o.Code, o.Reason
			oo.Reason, oo.Message = &code, &msg
		}
		out.Offers = append(out.Offers, oo)
	}
	return out
}

type payoutJSON struct {
	Key               string  `json:"key"`
	CreatedAt         int64   `json:"created_at"`
	UpdatedAt         int64   `json:"updated_at"`
	Amount            int64   `json:"amount"`
	Currency          string  `json:"currency"`
	Status            string  `json:"status"`
	Period            string  `json:"period"`
	RewardCount       int     `json:"reward_count"`
	ExternalReference *string `json:"external_reference"`
	PaidAt            *int64  `json:"paid_at"`
	SentAt            *int64  `json:"sent_at"`
	PartnershipKey    string  `json:"partnership_key"`
	PartnerKey        string  `json:"partner_key"`
}

func renderPayout(p ledger.Payout) payoutJSON {
	return payoutJSON{Key: p.Key, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt, Amount: p.Amount, Currency: p.Currency,
		Status: p.Status, Period: p.Period, RewardCount: p.RewardCount, ExternalReference: p.ExternalReference, PaidAt: p.PaidAt,
		SentAt: p.PaidAt, PartnershipKey: p.PartnershipKey, PartnerKey: p.PartnerKey}
}

type actionCustomerJSON struct {
	Key    string          `json:"key"`
	SubIDs json.RawMessage `json:"sub_ids"`
}

type actionJSON struct {
	Key            string              `json:"key"`
	CreatedAt      int64               `json:"created_at"`
	UpdatedAt      int64               `json:"updated_at"`
	Type           string              `json:"type"`
	Value          int64               `json:"value"`
	ExternalKey    *string             `json:"external_key"`
	PartnershipKey string              `json:"partnership_key"`
	PartnerKey     string              `json:"partner_key"`
	Customer       *actionCustomerJSON `json:"customer"`
	Test           bool                `json:"test"`
	Archived       bool                `json:"archived"`
	Company        companyJSON         `json:"company"`
}

func renderAction(a ledger.Action) actionJSON {
	out := actionJSON{Key: a.Key, CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt, Type: a.Type, Value: a.Value,
		ExternalKey: a.ExternalKey, PartnershipKey: a.PartnershipKey, PartnerKey: a.PartnerKey, Test: a.Test, Archived: a.Archived,
		Company: companyJSON{Key: a.Company.Key, Name: a.Company.Name}}
	if a.CustomerKey != nil {
		out.Customer = &actionCustomerJSON{Key: *a.CustomerKey, SubIDs: json.RawMessage(*a.CustomerSubIDs)}
	}
	return out
}
