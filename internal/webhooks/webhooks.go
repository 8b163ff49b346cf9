// Package webhooks sends a company's events to the URLs it subscribed:
// subscriptions, the fan-out from the outbox to a durable delivery queue,
// signed deliveries with exponential retries over 24 hours, and the
// delivery log.
package webhooks

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/partnerd/partnerd/internal/clock"
	"github.com/partnerd/partnerd/internal/errs"
	"github.com/partnerd/partnerd/internal/outbox"
	"github.com/partnerd/partnerd/internal/program"
	"github.com/partnerd/partnerd/internal/secret"
	"github.com/partnerd/partnerd/internal/store"
)

// Renderer turns an object into the JSON the API would return for it.
type Renderer func(ctx context.Context, companyID int64, kind, key string) (json.RawMessage, error)

// Service manages subscriptions and deliveries.
type Service struct {
	db     *store.DB
	clock  clock.Clock
	render Renderer
	client *http.Client
}

// New returns a Service. render is how event bodies are made; client sends
// them (nil for one with a 10-second timeout).
func New(db *store.DB, clk clock.Clock, render Renderer, client *http.Client) *Service {
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	return &Service{db: db, clock: clk, render: render, client: client}
}

func (s *Service) now() int64 { return clock.Millis(s.clock) }

// Webhook is a subscription: events sent to a URL.
type Webhook struct {
	ID        int64
	Key       string
	TargetURL string
	Events    []string // as subscribed: dotted or PartnerStack's older underscore names
	Secret    string
	Archived  bool
	CreatedAt int64
	UpdatedAt int64
}

const webhookCols = "w.id, w.key, w.target_url, w.events, w.secret, w.archived, w.created_at, w.updated_at"

func scanWebhook(sc store.Scanner) (Webhook, error) {
	var w Webhook
	var events string
	if err := sc.Scan(&w.ID, &w.Key, &w.TargetURL, &events, &w.Secret, &w.Archived, &w.CreatedAt, &w.UpdatedAt); err != nil {
		return w, fmt.Errorf("scan webhook: %w", err)
	}
	if err := json.Unmarshal([]byte(events), &w.Events); err != nil {
		return w, fmt.Errorf("decode webhook events: %w", err)
	}
	return w, nil
}

// canonical maps a subscribed name to the event it means: "customer_created"
// and "customer.created" are the same event.
func canonical(name string) (string, bool) {
	dotted := name
	if i := strings.Index(name, "_"); i > 0 && !strings.Contains(name, ".") {
		dotted = name[:i] + "." + name[i+1:]
	}
	return dotted, slices.Contains(outbox.Names, dotted)
}

// Input is a subscription to create or change; nil fields are unchanged.
type Input struct {
	TargetURL *string
	Events    []string
}

func checkInput(in Input) error {
	if in.TargetURL != nil {
		u, err := url.Parse(*in.TargetURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			return errs.E(errs.Invalid, "'target_url' must be an http or https URL without credentials: %q", *in.TargetURL)
		}
	}
	if in.Events != nil {
		if len(in.Events) == 0 {
			return errs.E(errs.Invalid, "'events' must name at least one event")
		}
		for _, e := range in.Events {
			if _, ok := canonical(e); !ok {
				return errs.E(errs.Invalid, "'events' names an unknown event %q; known events: %s", e, strings.Join(outbox.Names, ", "))
			}
		}
	}
	return nil
}

// Create subscribes a URL to events. The signing secret is returned with it.
func (s *Service) Create(ctx context.Context, p program.Principal, in Input) (Webhook, error) {
	if in.TargetURL == nil || in.Events == nil {
		return Webhook{}, errs.E(errs.Invalid, "'target_url' (or 'target') and 'events' (or 'event') are required")
	}
	if err := checkInput(in); err != nil {
		return Webhook{}, err
	}
	if p.Test {
		return Webhook{}, errs.E(errs.Forbidden, "webhooks are program settings: use your production keys")
	}
	events, _ := json.Marshal(in.Events)
	now := s.now()
	key := secret.Key("whk")
	if _, err := s.db.Exec(ctx, `INSERT INTO webhooks (key, company_id, target_url, events, secret, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, key, p.CompanyID, *in.TargetURL, string(events), secret.Token("whsec"), now, now); err != nil {
		return Webhook{}, fmt.Errorf("insert webhook: %w", err)
	}
	return s.Get(ctx, p, key)
}

// Get finds a webhook by key.
func (s *Service) Get(ctx context.Context, p program.Principal, key string) (Webhook, error) {
	return store.One(ctx, s.db, "webhook", scanWebhook, "SELECT "+webhookCols+" FROM webhooks w WHERE w.company_id = ? AND w.key = ?", p.CompanyID, key)
}

// Update changes a webhook's URL or events.
func (s *Service) Update(ctx context.Context, p program.Principal, key string, in Input) (Webhook, error) {
	if err := checkInput(in); err != nil {
		return Webhook{}, err
	}
	w, err := s.Get(ctx, p, key)
	if err != nil {
		return w, err
	}
	if w.Archived {
		return w, errs.E(errs.Conflict, "webhook %s is archived", key)
	}
	if in.TargetURL != nil {
		w.TargetURL = *in.TargetURL
	}
	if in.Events != nil {
		w.Events = in.Events
	}
	events, _ := json.Marshal(w.Events)
	if _, err := s.db.Exec(ctx, "UPDATE webhooks SET target_url = ?, events = ?, updated_at = ? WHERE id = ?",
		w.TargetURL, string(events), s.now(), w.ID); err != nil {
		return w, fmt.Errorf("update webhook: %w", err)
	}
	return s.Get(ctx, p, key)
}

// Archive stops deliveries to a webhook, including queued retries.
func (s *Service) Archive(ctx context.Context, p program.Principal, key string) (Webhook, error) {
	w, err := s.Get(ctx, p, key)
	if err != nil {
		return w, err
	}
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		now := s.now()
		if _, err := tx.Exec(ctx, "UPDATE webhooks SET archived = 1, updated_at = ? WHERE id = ?", now, w.ID); err != nil {
			return fmt.Errorf("archive webhook: %w", err)
		}
		if _, err := tx.Exec(ctx, "UPDATE deliveries SET status = ?, last_error = ?, updated_at = ? WHERE webhook_id = ? AND status = ?",
			StatusFailed, "webhook archived", now, w.ID, StatusPending); err != nil {
			return fmt.Errorf("cancel deliveries: %w", err)
		}
		return nil
	})
	if err != nil {
		return w, err
	}
	return s.Get(ctx, p, key)
}

// List lists a company's webhooks.
func (s *Service) List(ctx context.Context, p program.Principal, includeArchived bool, page store.Page) ([]Webhook, store.Result, error) {
	spec := p.List(webhookCols, "webhooks w", "w", "")
	if !includeArchived {
		spec.Where("w.archived = 0")
	}
	page.Apply(&spec, "w")
	return store.List(ctx, s.db, spec, scanWebhook)
}
