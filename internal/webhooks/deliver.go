package webhooks

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/partnerd/partnerd/internal/program"
	"github.com/partnerd/partnerd/internal/store"
)

// Delivery statuses.
const (
	StatusPending   = "pending"
	StatusDelivered = "delivered"
	StatusFailed    = "failed"
)

// Retry policy: the first retry after 30 s, doubling up to 4 hours between
// tries, giving up 24 hours after the event.
const (
	firstRetry = 30 * time.Second
	maxBackoff = 4 * time.Hour
	giveUp     = 24 * time.Hour
	lease      = time.Minute
	batch      = 1000
	senders    = 8
)

// SignatureHeader carries "t=<unix seconds>,v1=<hex HMAC-SHA256 of
// "<t>.<body>" under the webhook's secret>".
const SignatureHeader = "X-Partnerd-Signature"

// Sign returns the signature header value for body at t.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts))
	mac.Write([]byte("."))
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

// Backoff is how long to wait before retry number n (1-based).
func Backoff(n int) time.Duration {
	d := firstRetry
	for i := 1; i < n && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}

// Run fans events out and sends deliveries until ctx ends.
func (s *Service) Run(ctx context.Context, log *slog.Logger, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		for {
			n, err := s.Fanout(ctx)
			if err != nil && ctx.Err() == nil {
				log.Error("webhook fan-out", slog.Any("err", err))
			}
			if err != nil || n < batch {
				break
			}
		}
		if _, err := s.Deliver(ctx); err != nil && ctx.Err() == nil {
			log.Error("webhook delivery", slog.Any("err", err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

type event struct {
	id, companyID, objectID, at int64
	name, kind                  string
}

type subscription struct {
	id        int64
	events    []string
	createdAt int64
}

// Fanout reads up to one batch of outbox events, turns them into one queued
// delivery per subscribed webhook (the body rendered once), then removes
// the events, and returns how many events it read. Several nodes may run
// it at once: a delivery is unique per webhook and event.
func (s *Service) Fanout(ctx context.Context) (int, error) {
	rows, err := s.db.Query(ctx, "SELECT id, company_id, name, kind, object_id, created_at FROM events ORDER BY id LIMIT ?", batch)
	if err != nil {
		return 0, fmt.Errorf("read events: %w", err)
	}
	var evs []event
	for rows.Next() {
		var e event
		if err := rows.Scan(&e.id, &e.companyID, &e.name, &e.kind, &e.objectID, &e.at); err != nil {
			rows.Close()
			return 0, fmt.Errorf("scan event: %w", err)
		}
		evs = append(evs, e)
	}
	rows.Close()
	if len(evs) == 0 {
		return 0, rows.Err()
	}
	read := len(evs)
	subs := map[int64][]subscription{}
	type queued struct {
		webhookID int64
		ev        event
		name      string
		body      string
	}
	var out []queued
	for _, e := range evs {
		list, ok := subs[e.companyID]
		if !ok {
			if list, err = s.subscriptions(ctx, e.companyID); err != nil {
				return 0, err
			}
			subs[e.companyID] = list
		}
		var obj json.RawMessage
		for _, sub := range list {
			name, ok := subscribedAs(sub.events, e.name)
			// A webhook hears of changes from its creation on, not of older
			// ones still waiting in the outbox (after a CLI recompute, say).
			if !ok || e.at < sub.createdAt {
				continue
			}
			if obj == nil {
				if obj, err = s.renderEvent(ctx, e); err != nil {
					return 0, err
				}
			}
			body, err := withEvent(obj, name)
			if err != nil {
				return 0, err
			}
			out = append(out, queued{webhookID: sub.id, ev: e, name: name, body: string(body)})
		}
	}
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		now := s.now()
		for _, q := range out {
			if _, err := tx.Exec(ctx, `INSERT INTO deliveries (webhook_id, event_id, event, body, status, next_at, created_at, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (webhook_id, event_id) DO NOTHING`,
				q.webhookID, q.ev.id, q.name, q.body, StatusPending, now, q.ev.at, now); err != nil {
				return fmt.Errorf("queue delivery: %w", err)
			}
		}
		ids := make([]string, len(evs))
		for i, e := range evs {
			ids[i] = strconv.FormatInt(e.id, 10)
		}
		// By id list, not a range: on PostgreSQL an event with a lower id
		// can commit after this batch was read.
		if _, err := tx.Exec(ctx, "DELETE FROM events WHERE id IN ("+strings.Join(ids, ",")+")"); err != nil {
			return fmt.Errorf("remove events: %w", err)
		}
		return nil
	})
	return read, err
}

func (s *Service) subscriptions(ctx context.Context, companyID int64) ([]subscription, error) {
	rows, err := s.db.Query(ctx, "SELECT id, events, created_at FROM webhooks WHERE company_id = ? AND archived = 0 ORDER BY id", companyID)
	if err != nil {
		return nil, fmt.Errorf("read webhooks: %w", err)
	}
	defer rows.Close()
	var out []subscription
	for rows.Next() {
		var sub subscription
		var events string
		if err := rows.Scan(&sub.id, &events, &sub.createdAt); err != nil {
			return nil, fmt.Errorf("scan webhook: %w", err)
		}
		if err := json.Unmarshal([]byte(events), &sub.events); err != nil {
			return nil, fmt.Errorf("decode webhook events: %w", err)
		}
		out = append(out, sub)
	}
	return out, rows.Err()
}

// subscribedAs returns the name a webhook subscribed to event under (the
// dotted or the underscore form), which is the name it is sent with.
func subscribedAs(events []string, event string) (string, bool) {
	for _, e := range events {
		if c, _ := canonical(e); c == event {
			return e, true
		}
	}
	return "", false
}

var tables = map[string]string{"partnership": "partnerships", "customer": "customers", "transaction": "transactions",
	"reward": "rewards", "payout": "payouts", "action": "actions", "lead": "leads", "deal": "deals"}

func (s *Service) renderEvent(ctx context.Context, e event) (json.RawMessage, error) {
	table, ok := tables[e.kind]
	if !ok {
		return nil, fmt.Errorf("event %d has unknown kind %q", e.id, e.kind)
	}
	var key string
	if err := s.db.QueryRow(ctx, "SELECT key FROM "+table+" WHERE id = ?", e.objectID).Scan(&key); err != nil {
		return nil, fmt.Errorf("find %s %d: %w", e.kind, e.objectID, err)
	}
	return s.render(ctx, e.companyID, e.kind, key)
}

// withEvent adds the event name to an object, as PartnerStack sends it: the
// object itself, flat, plus "event".
func withEvent(obj json.RawMessage, name string) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(obj, &m); err != nil {
		return nil, fmt.Errorf("event body is not an object: %w", err)
	}
	m["event"], _ = json.Marshal(name)
	return json.Marshal(m)
}

type due struct {
	id, webhookID, eventID, createdAt int64
	attempts                          int
	event, body, url, secret          string
}

// Deliver sends the deliveries that are due, each claimed with a lease so
// that two nodes never send one at the same time.
func (s *Service) Deliver(ctx context.Context) (int, error) {
	now := s.now()
	rows, err := s.db.Query(ctx, `SELECT d.id, d.webhook_id, d.event_id, d.created_at, d.attempts, d.event, d.body, w.target_url, w.secret
		FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id
		WHERE d.status = ? AND d.next_at <= ? AND d.lease_until < ? ORDER BY d.next_at, d.id LIMIT ?`, StatusPending, now, now, batch)
	if err != nil {
		return 0, fmt.Errorf("read deliveries: %w", err)
	}
	var list []due
	for rows.Next() {
		var d due
		if err := rows.Scan(&d.id, &d.webhookID, &d.eventID, &d.createdAt, &d.attempts, &d.event, &d.body, &d.url, &d.secret); err != nil {
			rows.Close()
			return 0, fmt.Errorf("scan delivery: %w", err)
		}
		list = append(list, d)
	}
	rows.Close()
	var wg sync.WaitGroup
	sem := make(chan struct{}, senders)
	sent := 0
	var mu sync.Mutex
	var firstErr error
	for _, d := range list {
		res, err := s.db.Exec(ctx, "UPDATE deliveries SET lease_until = ? WHERE id = ? AND status = ? AND lease_until < ?",
			now+lease.Milliseconds(), d.id, StatusPending, now)
		if err != nil {
			return sent, fmt.Errorf("claim delivery: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			continue // another node has it
		}
		wg.Add(1)
		sem <- struct{}{}
		go func(d due) {
			defer wg.Done()
			defer func() { <-sem }()
			if err := s.send(ctx, d); err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
			mu.Lock()
			sent++
			mu.Unlock()
		}(d)
	}
	wg.Wait()
	return sent, firstErr
}

// send makes one attempt and records its outcome.
func (s *Service) send(ctx context.Context, d due) error {
	status, sendErr := s.post(ctx, d)
	now := s.now()
	attempts := d.attempts + 1
	var errText *string
	if sendErr != nil {
		t := sendErr.Error()
		errText = &t
	}
	var code *int
	if status != 0 {
		code = &status
	}
	if sendErr == nil && status >= 200 && status < 300 {
		_, err := s.db.Exec(ctx, "UPDATE deliveries SET status = ?, attempts = ?, last_status = ?, last_error = NULL, lease_until = 0, updated_at = ? WHERE id = ?",
			StatusDelivered, attempts, code, now, d.id)
		return err
	}
	if errText == nil {
		t := fmt.Sprintf("the endpoint answered %d", status)
		errText = &t
	}
	next := now + Backoff(attempts).Milliseconds()
	newStatus := StatusPending
	if next > d.createdAt+giveUp.Milliseconds() {
		newStatus = StatusFailed
	}
	_, err := s.db.Exec(ctx, "UPDATE deliveries SET status = ?, attempts = ?, next_at = ?, last_status = ?, last_error = ?, lease_until = 0, updated_at = ? WHERE id = ?",
		newStatus, attempts, next, code, *errText, now, d.id)
	return err
}

func (s *Service) post(ctx context.Context, d due) (int, error) {
	body := []byte(d.body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "partnerd-webhooks")
	req.Header.Set("X-Partnerd-Event", d.event)
	req.Header.Set("X-Partnerd-Delivery", strconv.FormatInt(d.id, 10))
	req.Header.Set(SignatureHeader, Sign(d.secret, time.UnixMilli(s.now()), body))
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("send: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, nil
}

// Delivery is one entry of the delivery log.
type Delivery struct {
	ID         int64
	Event      string
	Status     string
	Attempts   int
	NextAt     int64
	LastStatus *int
	LastError  *string
	Body       string
	CreatedAt  int64
	UpdatedAt  int64
}

// Deliveries lists a webhook's deliveries, newest first.
func (s *Service) Deliveries(ctx context.Context, p program.Principal, key string, limit int) ([]Delivery, error) {
	w, err := s.Get(ctx, p, key)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.Query(ctx, `SELECT id, event, status, attempts, next_at, last_status, last_error, body, created_at, updated_at
		FROM deliveries WHERE webhook_id = ? ORDER BY id DESC LIMIT ?`, w.ID, limit)
	if err != nil {
		return nil, fmt.Errorf("read deliveries: %w", err)
	}
	defer rows.Close()
	out := []Delivery{}
	for rows.Next() {
		var d Delivery
		if err := rows.Scan(&d.ID, &d.Event, &d.Status, &d.Attempts, &d.NextAt, &d.LastStatus, &d.LastError, &d.Body, &d.CreatedAt, &d.UpdatedAt); err != nil {
			return nil, fmt.Errorf("scan delivery: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}
