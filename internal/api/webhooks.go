package api

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/partnerd/partnerd/internal/errs"
	"github.com/partnerd/partnerd/internal/outbox"
	"github.com/partnerd/partnerd/internal/program"
	"github.com/partnerd/partnerd/internal/webhooks"
)

// PartnerStack's clients send either spelling of both fields.
var webhookFields = []field{
	{name: "target_url", kind: kString, min: 1, max: 2000},
	{name: "target", kind: kString, min: 1, max: 2000},
	{name: "events", kind: kStringArray, max: 100},
	{name: "event", kind: kString, min: 1, max: 100},
}

var webhookSchema = schema{strict: true, fields: webhookFields}

func webhookInput(b body) (webhooks.Input, error) {
	var in webhooks.Input
	if b.has("target_url") && b.has("target") {
		return in, errs.E(errs.Invalid, "send one of 'target_url' or 'target', not both")
	}
	if b.has("events") && b.has("event") {
		return in, errs.E(errs.Invalid, "send one of 'events' or 'event', not both")
	}
	in.TargetURL = b.str("target_url")
	if in.TargetURL == nil {
		in.TargetURL = b.str("target")
	}
	if ev := b.strs("events"); ev != nil {
		in.Events = *ev
	} else if e := b.str("event"); e != nil {
		in.Events = []string{*e}
	}
	return in, nil
}

func (s *Server) createWebhook(w http.ResponseWriter, r *http.Request) error {
	b, err := decodeBody(w, r, webhookSchema)
	if err != nil {
		return err
	}
	in, err := webhookInput(b)
	if err != nil {
		return err
	}
	wh, err := s.webhooks.Create(r.Context(), principalOf(r), in)
	return reply(w, wh, err, renderWebhookWithSecret, "Webhook created")
}

func (s *Server) getWebhook(w http.ResponseWriter, r *http.Request) error {
	wh, err := s.webhooks.Get(r.Context(), principalOf(r), r.PathValue("key"))
	return reply(w, wh, err, renderWebhook, "Webhook retrieved")
}

func (s *Server) updateWebhook(w http.ResponseWriter, r *http.Request) error {
	b, err := decodeBody(w, r, webhookSchema)
	if err != nil {
		return err
	}
	in, err := webhookInput(b)
	if err != nil {
		return err
	}
	wh, err := s.webhooks.Update(r.Context(), principalOf(r), r.PathValue("key"), in)
	return reply(w, wh, err, renderWebhook, "Webhook updated")
}

func (s *Server) archiveWebhook(w http.ResponseWriter, r *http.Request) error {
	wh, err := s.webhooks.Archive(r.Context(), principalOf(r), r.PathValue("key"))
	return reply(w, wh, err, renderWebhook, "Webhook archived")
}

func (s *Server) listWebhooks(w http.ResponseWriter, r *http.Request) error {
	page, archived, err := listParams(r.URL.Query())
	if err != nil {
		return err
	}
	items, res, err := s.webhooks.List(r.Context(), principalOf(r), archived, page)
	return replyList(w, items, res, err, renderWebhook, "Webhooks retrieved")
}

func (s *Server) listDeliveries(w http.ResponseWriter, r *http.Request) error {
	page, err := parsePage(r.URL.Query())
	if err != nil {
		return err
	}
	items, err := s.webhooks.Deliveries(r.Context(), principalOf(r), r.PathValue("key"), page.Limit)
	return reply(w, items, err, func(ds []webhooks.Delivery) []deliveryJSON { return renderAll(ds, renderDelivery) }, "Deliveries retrieved")
}

type webhookJSON struct {
	Key       string   `json:"key"`
	CreatedAt int64    `json:"created_at"`
	UpdatedAt int64    `json:"updated_at"`
	TargetURL string   `json:"target_url"`
	Events    []string `json:"events"`
	Archived  bool     `json:"archived"`
	Secret    *string  `json:"secret,omitempty"`
}

func renderWebhook(w webhooks.Webhook) webhookJSON {
	return webhookJSON{Key: w.Key, CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt, TargetURL: w.TargetURL, Events: w.Events, Archived: w.Archived}
}

// renderWebhookWithSecret shows the signing secret, once, on creation.
func renderWebhookWithSecret(w webhooks.Webhook) webhookJSON {
	out := renderWebhook(w)
	out.Secret = &w.Secret
	return out
}

type deliveryJSON struct {
	ID         int64           `json:"id"`
	Event      string          `json:"event"`
	Status     string          `json:"status"`
	Attempts   int             `json:"attempts"`
	NextAt     int64           `json:"next_at"`
	LastStatus *int            `json:"last_status"`
	LastError  *string         `json:"last_error"`
	Body       json.RawMessage `json:"body"`
	CreatedAt  int64           `json:"created_at"`
	UpdatedAt  int64           `json:"updated_at"`
}

func renderDelivery(d webhooks.Delivery) deliveryJSON {
	return deliveryJSON{ID: d.ID, Event: d.Event, Status: d.Status, Attempts: d.Attempts, NextAt: d.NextAt, LastStatus: d.LastStatus,
		LastError: d.LastError, Body: json.RawMessage(d.Body), CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt}
}

// RenderEvent is the webhooks' Renderer: an event's body is the object as
// the API returns it.
func (s *Server) RenderEvent(ctx context.Context, companyID int64, kind, key string) (json.RawMessage, error) {
	p := program.Principal{CompanyID: companyID}
	var v any
	var err error
	switch kind {
	case outbox.KindPartnership:
		var x program.Partnership
		x, err = s.program.GetPartnership(ctx, p, key)
		v = renderPartnership(x)
	case outbox.KindCustomer:
		var x program.Customer
		x, err = s.program.GetCustomer(ctx, p, key)
		v = renderCustomer(x)
	case outbox.KindTransaction:
		x, e := s.ledger.GetTransaction(ctx, p, key)
		v, err = renderTransaction(x), e
	case outbox.KindReward:
		x, e := s.ledger.GetReward(ctx, p, key)
		v, err = renderReward(x), e
	case outbox.KindPayout:
		x, e := s.ledger.GetPayout(ctx, p, key)
		v, err = renderPayout(x), e
	case outbox.KindLead:
		x, e := s.pipeline.GetLead(ctx, p, key)
		v, err = renderLead(x), e
	case outbox.KindDeal:
		x, e := s.pipeline.GetDeal(ctx, p, key)
		v, err = renderDeal(x), e
	default:
		return nil, errs.E(errs.Internal, "no renderer for %s", kind)
	}
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}
