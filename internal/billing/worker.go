package billing

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/partnerd/partnerd/internal/errs"
	"github.com/partnerd/partnerd/internal/program"
	"github.com/partnerd/partnerd/internal/store"
)

// Event is an inbox entry.
type Event struct {
	ID          int64
	CompanyID   int64
	Provider    string
	Test        bool
	EventID     string
	Type        string
	ContentType string
	Body        []byte
	Status      string
	Reason      *string
	Attempts    int
	NextAt      int64
	ReceivedAt  int64
	ProcessedAt *int64
}

const eventCols = `id, company_id, provider, test, event_id, event_type, content_type, body, status, reason, attempts, next_at,
	received_at, processed_at`

func scanEvent(sc store.Scanner) (Event, error) {
	var e Event
	err := sc.Scan(&e.ID, &e.CompanyID, &e.Provider, &e.Test, &e.EventID, &e.Type, &e.ContentType, &e.Body, &e.Status, &e.Reason,
		&e.Attempts, &e.NextAt, &e.ReceivedAt, &e.ProcessedAt)
	if err != nil {
		return e, fmt.Errorf("scan billing event: %w", err)
	}
	return e, nil
}

// leaseFor is how long a worker owns the events it claimed; a worker that
// dies mid-batch leaves them to be claimed again after it.
const leaseFor = time.Minute

// claimBatch is how many events one pass takes.
const claimBatch = 50

// backoff is the wait before retry n (1-based) of a failed or waiting
// event: 30 s doubling, at most an hour. Waiting events are kept and
// retried for as long as it takes their customer or payment to appear.
func backoff(n int) time.Duration {
	d := 30 * time.Second
	for i := 1; i < n && d < time.Hour; i++ {
		d *= 2
	}
	if d > time.Hour {
		d = time.Hour
	}
	return d
}

// claim leases up to claimBatch due events, oldest first. Several nodes
// may claim at once: on PostgreSQL rows another worker holds are skipped;
// on SQLite the single writer makes the update atomic.
func (s *Service) claim(ctx context.Context) ([]Event, error) {
	now := s.now()
	lock := ""
	if s.db.Dialect() == store.Postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	var out []Event
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		out = out[:0]
		rows, err := tx.Query(ctx, `UPDATE billing_events SET lease_until = ? WHERE id IN (SELECT id FROM billing_events
			WHERE status IN (?, ?, ?) AND next_at <= ? AND lease_until < ? ORDER BY id LIMIT ?`+lock+`) RETURNING `+eventCols,
			now+leaseFor.Milliseconds(), StatusPending, StatusFailed, StatusWaiting, now, now, claimBatch)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			e, err := scanEvent(rows)
			if err != nil {
				return err
			}
			out = append(out, e)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("claim billing events: %w", err)
	}
	// RETURNING gives no order: process in arrival order.
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// outcome is what processing made of an event.
type outcome struct {
	status   string
	reason   string
	waitFor  string   // waiting: what would let it go on
	provides []string // done: what events waiting for it may now find
}

func done(format string, args ...any) outcome {
	return outcome{status: StatusDone, reason: fmt.Sprintf(format, args...)}
}

// waiting makes an event wait for something (waitCustomer, waitProvider,
// waitPayment): it is retried with backoff, and at once when that appears.
func waiting(waitFor, format string, args ...any) outcome {
	return outcome{status: StatusWaiting, reason: fmt.Sprintf(format, args...), waitFor: waitFor}
}
func ignored(format string, args ...any) outcome {
	return outcome{status: StatusIgnored, reason: fmt.Sprintf(format, args...)}
}

// What an event can wait for.
func waitCustomer(customerKey string) string { return "customer:" + limit255(customerKey) }
func waitProvider(providerID string) string  { return "provider:" + limit255(providerID) }
func waitPayment(key string) string          { return "payment:" + limit255(key) }

func waitLink(ref string) string { return "link:" + limit255(ref) }

// provide adds what an outcome makes available; only a done or ignored
// event wakes anything.
func (o outcome) provide(what ...string) outcome {
	o.provides = append(o.provides, what...)
	return o
}

// parkAfter is how many attempts a waiting or failed event gets on its
// backoff schedule (about four hours in all). After that it is parked:
// kept, listed and replayable, and a waiting one is still woken the moment
// what it waits for appears, but no longer retried on a timer, so that a
// vendor's many never-referred customers cost nothing.
const parkAfter = 10

// parked is next_at for a parked event.
const parked = int64(1) << 62

// NextAtOrNil is when the event is next tried, or nil once it is parked.
func (e Event) NextAtOrNil() *int64 {
	if e.NextAt >= parked {
		return nil
	}
	return &e.NextAt
}

// Process handles one batch of due events and returns how many it
// handled. Events are processed in arrival order; an event that waits is
// woken when what it waits for appears. The outcomes of the whole batch are
// recorded in one transaction: one commit instead of one per event, on the
// path that shares the database with webhook intake. A crash before that
// commit only means the batch is processed again after its lease, which is
// safe: processing is idempotent.
func (s *Service) Process(ctx context.Context) (int, error) {
	evs, err := s.claim(ctx)
	if err != nil {
		return 0, err
	}
	outs := make([]outcome, len(evs))
	for i, e := range evs {
		o, err := s.handle(ctx, e)
		if err != nil {
			// A domain error (say, a currency partnerd does not know) is a
			// reason, not a crash; either way the event is kept to retry.
			o = outcome{status: StatusFailed, reason: errs.MessageOf(err)}
			if errs.CodeOf(err) == errs.Internal {
				o.reason = err.Error()
			}
		}
		outs[i] = o
	}
	if err := s.finish(ctx, evs, outs); err != nil {
		return 0, err
	}
	return len(evs), nil
}

// finish records the outcomes of events in arrival order and wakes what
// they provide. An earlier event of the batch that waits for what a later
// one provides is recorded as waiting first, so the wake finds it.
func (s *Service) finish(ctx context.Context, evs []Event, outs []outcome) error {
	now := s.now()
	return s.db.Tx(ctx, func(tx *store.Tx) error {
		for i, e := range evs {
			o := outs[i]
			next := now
			var processed *int64
			var waitFor *string
			switch o.status {
			case StatusFailed, StatusWaiting:
				next = now + backoff(e.Attempts+1).Milliseconds()
				if e.Attempts+1 >= parkAfter {
					next = parked
				}
				if o.waitFor != "" {
					waitFor = &o.waitFor
				}
			default:
				processed = &now
			}
			if len(o.reason) > 1000 {
				o.reason = o.reason[:1000]
			}
			if _, err := tx.Exec(ctx, `UPDATE billing_events SET status = ?, reason = ?, attempts = attempts + 1, next_at = ?, lease_until = 0,
				processed_at = ?, wait_for = ? WHERE id = ?`, o.status, o.reason, next, processed, waitFor, e.ID); err != nil {
				return fmt.Errorf("record billing event outcome: %w", err)
			}
			// What waited for this (a refund for its payment, a payment for
			// its customer) may go now.
			if o.status == StatusDone || o.status == StatusIgnored {
				if err := wake(ctx, tx, e.CompanyID, now, o.provides...); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// wake makes the company's events waiting for any of what due now.
func wake(ctx context.Context, q store.Querier, companyID, now int64, what ...string) error {
	if len(what) == 0 {
		return nil
	}
	args := []any{now, companyID, StatusWaiting}
	for _, w := range what {
		args = append(args, w)
	}
	if _, err := q.Exec(ctx, "UPDATE billing_events SET next_at = ? WHERE company_id = ? AND status = ? AND wait_for IN (?"+
		strings.Repeat(", ?", len(what)-1)+")", args...); err != nil {
		return fmt.Errorf("wake waiting billing events: %w", err)
	}
	return nil
}

// CustomerCreated wakes the billing events waiting for a new customer. It
// runs inside the transaction that creates the customer (a program
// customer hook), whichever way the customer came: API, snippet, import or
// a billing event.
func (s *Service) CustomerCreated(ctx context.Context, q store.Querier, cu program.Customer) error {
	what := []string{}
	if cu.CustomerKey != nil && *cu.CustomerKey != "" {
		what = append(what, waitCustomer(*cu.CustomerKey))
	}
	if cu.ProviderKey != nil && *cu.ProviderKey != "" {
		what = append(what, waitProvider(*cu.ProviderKey))
	}
	return wake(ctx, q, cu.CompanyID, s.now(), what...)
}

func (s *Service) handle(ctx context.Context, e Event) (outcome, error) {
	p := program.Principal{CompanyID: e.CompanyID, Test: e.Test}
	switch e.Provider {
	case Stripe:
		return s.handleStripe(ctx, p, e)
	case Chargebee:
		return s.handleChargebee(ctx, p, e)
	case Chargify:
		return s.handleChargify(ctx, p, e)
	case Recurly:
		return s.handleRecurly(ctx, p, e)
	}
	return ignored("unknown provider %s", e.Provider), nil
}

// Run processes events every interval until ctx ends.
func (s *Service) Run(ctx context.Context, log *slog.Logger, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		for {
			n, err := s.Process(ctx)
			if err != nil && ctx.Err() == nil {
				log.Error("billing events", slog.Any("err", err))
			}
			if n < claimBatch || err != nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
