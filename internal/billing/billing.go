package billing

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/partnerd/partnerd/internal/clock"
	"github.com/partnerd/partnerd/internal/errs"
	"github.com/partnerd/partnerd/internal/ledger"
	"github.com/partnerd/partnerd/internal/money"
	"github.com/partnerd/partnerd/internal/program"
	"github.com/partnerd/partnerd/internal/secret"
	"github.com/partnerd/partnerd/internal/store"
)

// Event statuses in the inbox.
const (
	StatusPending = "pending" // to process
	StatusDone    = "done"
	StatusWaiting = "waiting" // for its customer or its payment; retried
	StatusFailed  = "failed"  // processing failed; retried with backoff
	StatusIgnored = "ignored" // nothing partnerd uses
)

// Stripe payment modes: PartnerStack counts either charges or invoices,
// never both (they give different amounts for one payment).
const (
	FromCharge  = "charge"
	FromInvoice = "invoice"
)

// Service is the billing inbox and its worker.
type Service struct {
	db      *store.DB
	clock   clock.Clock
	program *program.Service
	ledger  *ledger.Service
	box     *secret.Box // nil when the install has no encryption key

	mu        sync.Mutex
	endpoints map[endpointKey]endpointEntry
}

type endpointKey struct {
	provider, company string
	test              bool
}

type endpointEntry struct {
	companyID int64
	secret    string
	until     time.Time
}

// endpointTTL is how long a node keeps a company's id and provider secret
// for its webhook endpoint: a changed secret takes effect everywhere within
// it (Stripe keeps signing with both secrets while one is rolled).
const endpointTTL = 5 * time.Second

// endpoint finds the company and the provider secret a webhook path names,
// from a short-lived cache: intake is the hot path, and both rarely change.
// Misses are not cached, so a provider configured a moment ago works at once.
func (s *Service) endpoint(ctx context.Context, provider, companyKey string, test bool) (int64, string, error) {
	k := endpointKey{provider, companyKey, test}
	now := time.Now()
	s.mu.Lock()
	e, ok := s.endpoints[k]
	s.mu.Unlock()
	if ok && now.Before(e.until) {
		return e.companyID, e.secret, nil
	}
	co, err := s.program.CompanyByKey(ctx, companyKey)
	if err != nil {
		return 0, "", err
	}
	_, sealed, err := s.config(ctx, co.ID, provider, test)
	if err != nil {
		return 0, "", err
	}
	sec, err := s.openSecret(sealed)
	if err != nil {
		return 0, "", err
	}
	s.mu.Lock()
	if len(s.endpoints) > 10000 { // bounded: configured endpoints only, but never unbounded
		s.endpoints = map[endpointKey]endpointEntry{}
	}
	s.endpoints[k] = endpointEntry{companyID: co.ID, secret: sec, until: now.Add(endpointTTL)}
	s.mu.Unlock()
	return co.ID, sec, nil
}

// New returns the service. box may be nil: then no provider can be
// configured (its secret could not be stored encrypted).
func New(db *store.DB, clk clock.Clock, prog *program.Service, led *ledger.Service, box *secret.Box) *Service {
	return &Service{db: db, clock: clk, program: prog, ledger: led, box: box, endpoints: map[endpointKey]endpointEntry{}}
}

func (s *Service) now() int64 { return clock.Millis(s.clock) }

// Config is a company's settings for one provider and mode (never the
// secret, which is only written).
type Config struct {
	Provider     string
	Test         bool
	PaymentsFrom string
	Currency     string // Chargify and Recurly: for payments that name no currency
	CreatedAt    int64
	UpdatedAt    int64
}

// ConfigInput sets a provider up. Secret is the Stripe endpoint secret
// (whsec_…), Chargebee's "user:password", Chargify's site shared key or
// Recurly's endpoint key.
type ConfigInput struct {
	Provider     string
	Test         bool
	Secret       string
	PaymentsFrom string // Stripe: charge (default) or invoice
	Currency     string // Chargify, Recurly: the site's currency, for payloads that name none (default USD)
}

func validProvider(p string) error {
	for _, x := range Providers {
		if p == x {
			return nil
		}
	}
	return errs.E(errs.Invalid, "'provider' must be one of %s: %q", strings.Join(Providers, ", "), p)
}

// Configure stores a company's secret and settings for a provider and
// mode, replacing earlier ones.
func (s *Service) Configure(ctx context.Context, companyID int64, in ConfigInput) (Config, error) {
	if err := validProvider(in.Provider); err != nil {
		return Config{}, err
	}
	if in.Secret == "" || len(in.Secret) > 500 || strings.ContainsAny(in.Secret, "\x00\r\n") {
		return Config{}, errs.E(errs.Invalid, "'secret' is required: one line, at most 500 characters")
	}
	if in.Provider == Chargebee && !strings.Contains(in.Secret, ":") {
		return Config{}, errs.E(errs.Invalid, "'secret' for chargebee is the webhook's basic-auth \"username:password\"")
	}
	switch {
	case in.Provider != Stripe && in.PaymentsFrom != "":
		return Config{}, errs.E(errs.Invalid, "'payments_from' applies to stripe only")
	case in.Provider == Stripe && in.PaymentsFrom == "":
		in.PaymentsFrom = FromCharge
	case in.Provider == Stripe && in.PaymentsFrom != FromCharge && in.PaymentsFrom != FromInvoice:
		return Config{}, errs.E(errs.Invalid, "'payments_from' must be charge (charge.succeeded) or invoice (invoice.payment_succeeded)")
	}
	switch {
	case in.Currency != "" && in.Provider != Chargify && in.Provider != Recurly:
		return Config{}, errs.E(errs.Invalid, "'currency' applies to chargify and recurly only (the others name the currency in every payment)")
	case in.Provider == Chargify || in.Provider == Recurly:
		if in.Currency == "" {
			in.Currency = "USD"
		}
		cur, err := money.Currency("currency", in.Currency)
		if err != nil {
			return Config{}, err
		}
		in.Currency = cur
	}
	if s.box == nil {
		return Config{}, errs.E(errs.Invalid, "this install has no encryption key for provider secrets: set PARTNERD_SECRET_KEY "+
			"(the base64 of 32 random bytes, the same on every node)")
	}
	now := s.now()
	sealed := s.box.Seal(in.Secret)
	if _, err := s.db.Exec(ctx, `INSERT INTO billing_configs (company_id, provider, test, secret, payments_from, currency, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (company_id, provider, test)
		DO UPDATE SET secret = excluded.secret, payments_from = excluded.payments_from, currency = excluded.currency,
		updated_at = excluded.updated_at`,
		companyID, in.Provider, store.Bool(in.Test), sealed, in.PaymentsFrom, in.Currency, now, now); err != nil {
		return Config{}, fmt.Errorf("store billing settings: %w", err)
	}
	c, _, err := s.config(ctx, companyID, in.Provider, in.Test)
	s.mu.Lock()
	s.endpoints = map[endpointKey]endpointEntry{} // this node sees the change at once
	s.mu.Unlock()
	return c, err
}

// config reads a company's settings for a provider and mode, and its
// secret still sealed: only intake needs it opened (openSecret).
func (s *Service) config(ctx context.Context, companyID int64, provider string, test bool) (Config, string, error) {
	c := Config{Provider: provider, Test: test}
	var sealed string
	err := s.db.QueryRow(ctx, `SELECT secret, payments_from, currency, created_at, updated_at FROM billing_configs
		WHERE company_id = ? AND provider = ? AND test = ?`, companyID, provider, store.Bool(test)).
		Scan(&sealed, &c.PaymentsFrom, &c.Currency, &c.CreatedAt, &c.UpdatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		mode := "production"
		if test {
			mode = "test"
		}
		return c, "", errs.E(errs.NotFound, "%s webhooks are not set up for this company in %s mode (partnerd billing configure)", provider, mode)
	}
	if err != nil {
		return c, "", fmt.Errorf("read billing settings: %w", err)
	}
	return c, sealed, nil
}

// openSecret decrypts a stored provider secret.
func (s *Service) openSecret(sealed string) (string, error) {
	if s.box == nil {
		return "", errors.New("billing: a provider secret is stored but this install has no encryption key (PARTNERD_SECRET_KEY)")
	}
	plain, err := s.box.Open(sealed)
	if err != nil {
		return "", fmt.Errorf("billing: %w", err)
	}
	return plain, nil
}

// Receive verifies a delivery and stores it in the inbox. A delivery
// whose event id is already there is acknowledged and not stored again
// (dup). Nothing is processed here: the worker does that, so providers get
// their answer fast.
func (s *Service) Receive(ctx context.Context, provider, companyKey string, test bool, h http.Header, body []byte) (id int64, dup bool, err error) {
	if err := validProvider(provider); err != nil {
		return 0, false, errs.E(errs.NotFound, "no such billing provider: %q", provider)
	}
	companyID, sec, err := s.endpoint(ctx, provider, companyKey, test)
	if err != nil {
		return 0, false, err
	}
	if err := Verify(provider, h, body, sec, s.clock.Now()); err != nil {
		if errors.Is(err, ErrUnverified) {
			return 0, false, errs.E(errs.Unauthorized, "%s", strings.TrimPrefix(err.Error(), ErrUnverified.Error()+": "))
		}
		return 0, false, err
	}
	env, err := parseEnvelope(provider, h.Get("Content-Type"), body)
	if err != nil {
		return 0, false, err
	}
	const insert = `INSERT INTO billing_events (company_id, provider, test, event_id, event_type, content_type, body, status, next_at,
		received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (company_id, provider, test, event_id) DO NOTHING RETURNING id`
	now := s.now()
	args := []any{companyID, provider, store.Bool(test), env.id, env.typ, env.contentType, body, StatusPending, now, now}
	// Deliveries share commits on the intake lane, so they do not queue
	// behind the main writer's larger transactions where the engine can
	// commit in parallel.
	err = s.db.BatchedIntake(ctx, func(q store.Querier) error {
		// A duplicate is not an error: an error would make the whole
		// group commit roll back and re-run its writes one by one.
		err := q.QueryRow(ctx, insert, args...).Scan(&id)
		dup = errors.Is(err, sql.ErrNoRows)
		if dup {
			return nil
		}
		return err
	})
	if dup {
		return 0, true, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("store billing event: %w", err)
	}
	return id, dup, nil
}

// envelope is what the inbox needs of a delivery before processing it.
type envelope struct {
	id, typ, contentType string
}

// parseEnvelope reads the provider's event id and type. Recurly's XML
// notifications carry no id, so theirs is the body's SHA-256: an identical
// redelivery is a duplicate.
func parseEnvelope(provider, contentType string, body []byte) (envelope, error) {
	bad := func(format string, args ...any) (envelope, error) {
		return envelope{}, errs.E(errs.Invalid, "%s event: "+format, append([]any{provider}, args...)...)
	}
	switch provider {
	case Stripe, Chargebee:
		var e struct {
			ID        string `json:"id"`
			Type      string `json:"type"`
			EventType string `json:"event_type"`
		}
		if err := json.Unmarshal(body, &e); err != nil {
			return bad("the body is not JSON: %v", err)
		}
		typ := e.Type
		if provider == Chargebee {
			typ = e.EventType
		}
		if e.ID == "" || typ == "" {
			return bad("'id' and the event type are required")
		}
		return envelope{id: limit255(e.ID), typ: limit255(typ), contentType: "application/json"}, nil
	case Chargify:
		v, err := url.ParseQuery(string(body))
		if err != nil {
			return bad("the body is not form-encoded: %v", err)
		}
		if v.Get("id") == "" || v.Get("event") == "" {
			return bad("'id' and 'event' are required")
		}
		return envelope{id: limit255(v.Get("id")), typ: limit255(v.Get("event")), contentType: "application/x-www-form-urlencoded"}, nil
	case Recurly:
		trimmed := strings.TrimSpace(string(body))
		if strings.HasPrefix(trimmed, "<") {
			var root struct{ XMLName xml.Name }
			if err := xml.Unmarshal(body, &root); err != nil {
				return bad("the body is not XML: %v", err)
			}
			sum := sha256.Sum256(body)
			return envelope{id: "sha256:" + hex.EncodeToString(sum[:16]), typ: limit255(root.XMLName.Local), contentType: "application/xml"}, nil
		}
		var e struct {
			ID         string `json:"id"`
			ObjectType string `json:"object_type"`
			EventType  string `json:"event_type"`
		}
		if err := json.Unmarshal(body, &e); err != nil {
			return bad("the body is neither XML nor JSON: %v", err)
		}
		if e.ID == "" || e.ObjectType == "" || e.EventType == "" {
			return bad("'id', 'object_type' and 'event_type' are required")
		}
		return envelope{id: limit255(e.ID), typ: limit255(e.ObjectType + "." + e.EventType), contentType: "application/json"}, nil
	}
	return bad("unknown provider")
}

// EventFilter narrows ListEvents.
type EventFilter struct {
	Status   string // "" for all
	Provider string // "" for all
	Since    int64  // received at or after (epoch ms); 0 for all
	BeforeID int64  // a cursor: events older than this one; 0 for the newest
}

// ListEvents lists a company's inbox events in one mode, newest first, up
// to limit, and says whether there are more.
func (s *Service) ListEvents(ctx context.Context, companyID int64, test bool, f EventFilter, limit int) ([]Event, bool, error) {
	where := []string{"company_id = ?", "test = ?"}
	args := []any{companyID, store.Bool(test)}
	if f.Status != "" {
		switch f.Status {
		case StatusPending, StatusDone, StatusWaiting, StatusFailed, StatusIgnored:
		default:
			return nil, false, errs.E(errs.Invalid, "'status' must be pending, done, waiting, failed or ignored: %q", f.Status)
		}
		where, args = append(where, "status = ?"), append(args, f.Status)
	}
	if f.Provider != "" {
		if err := validProvider(f.Provider); err != nil {
			return nil, false, err
		}
		where, args = append(where, "provider = ?"), append(args, f.Provider)
	}
	if f.Since > 0 {
		where, args = append(where, "received_at >= ?"), append(args, f.Since)
	}
	if f.BeforeID > 0 {
		where, args = append(where, "id < ?"), append(args, f.BeforeID)
	}
	rows, err := s.db.Query(ctx, "SELECT "+eventCols+" FROM billing_events WHERE "+strings.Join(where, " AND ")+" ORDER BY id DESC LIMIT ?",
		append(args, limit+1)...)
	if err != nil {
		return nil, false, fmt.Errorf("list billing events: %w", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, false, err
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("list billing events: %w", err)
	}
	more := len(out) > limit
	if more {
		out = out[:limit]
	}
	return out, more, nil
}

// Replay makes events due again now: one by id, or every event of the
// company received since a time. It returns how many. Done and ignored
// events are re-run too (processing is idempotent: payments are keyed by
// the provider's id), which is how an operator applies an event again
// after fixing what it lacked.
func (s *Service) Replay(ctx context.Context, companyID int64, id int64, since int64) (int, error) {
	now := s.now()
	var res sql.Result
	var err error
	if id > 0 {
		res, err = s.db.Exec(ctx, "UPDATE billing_events SET status = ?, next_at = ?, lease_until = 0 WHERE company_id = ? AND id = ?",
			StatusPending, now, companyID, id)
	} else {
		res, err = s.db.Exec(ctx, "UPDATE billing_events SET status = ?, next_at = ?, lease_until = 0 WHERE company_id = ? AND received_at >= ?",
			StatusPending, now, companyID, since)
	}
	if err != nil {
		return 0, fmt.Errorf("replay billing events: %w", err)
	}
	n, _ := res.RowsAffected()
	if id > 0 && n == 0 {
		return 0, errs.E(errs.NotFound, "no billing event %d for this company", id)
	}
	return int(n), nil
}

// WebhookPath is where a company's provider posts its events.
func WebhookPath(provider, companyKey string, test bool) string {
	p := "/webhooks/" + provider + "/" + companyKey
	if test {
		p += "/test"
	}
	return p
}

// Configs lists a company's configured providers (never their secrets).
func (s *Service) Configs(ctx context.Context, companyID int64) ([]Config, error) {
	rows, err := s.db.Query(ctx, `SELECT provider, test, payments_from, created_at, updated_at FROM billing_configs
		WHERE company_id = ? ORDER BY provider, test`, companyID)
	if err != nil {
		return nil, fmt.Errorf("list billing configs: %w", err)
	}
	defer rows.Close()
	var out []Config
	for rows.Next() {
		var c Config
		if err := rows.Scan(&c.Provider, &c.Test, &c.PaymentsFrom, &c.CreatedAt, &c.UpdatedAt); err != nil {
			return nil, fmt.Errorf("scan billing config: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
