// Package stats keeps the dashboard's rollups: per partnership and month,
// clicks, sign-ups, new customers, revenue and rewards by status, and
// clicks per link. Pages read a few hundred rollup rows instead of
// counting a program's whole history on every view.
//
// Refresh brings them up to date, a few seconds behind the data:
//   - clicks and sign-ups are only ever appended: each is added once,
//     by id, up to an id seen at least Horizon ago (so that a transaction
//     that took an id earlier and committed later is not skipped);
//   - customers, payments and rewards change (archived, refunded,
//     approved, declined): the months whose rows changed since the last
//     refresh (by updated_at, re-reading a margin) are recomputed whole.
//
// One node refreshes at a time (a lease in stats_state), so the adds are
// counted once and recomputes never overwrite a newer one.
package stats

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/partnerd/partnerd/internal/clock"
	"github.com/partnerd/partnerd/internal/store"
)

// Defaults.
const (
	DefaultHorizon = 10 * time.Second
	// margin is how far before the last updated_at seen a refresh reads
	// again: rows stamped by a clock a little behind, or committed a
	// little late, are still seen. Recomputing a month twice is harmless.
	margin     = time.Minute
	leaseFor   = 5 * time.Minute
	clickChunk = 50000
)

// Service keeps the rollups.
type Service struct {
	db    *store.DB
	clock clock.Clock
	// Horizon is how old an id must have been seen before the rows up to
	// it are counted (0: count up to the newest id at once, for tests).
	Horizon time.Duration
}

// New returns a Service.
func New(db *store.DB, c clock.Clock) *Service {
	return &Service{db: db, clock: c, Horizon: DefaultHorizon}
}

func (s *Service) now() int64 { return clock.Millis(s.clock) }

// month is the calendar month (UTC) of an epoch-ms time.
func month(ms int64) string { return time.UnixMilli(ms).UTC().Format("2006-01") }

// monthRange is a month's [start, end) in epoch ms.
func monthRange(m string) (int64, int64, error) {
	t, err := time.Parse("2006-01", m)
	if err != nil {
		return 0, 0, err
	}
	return t.UnixMilli(), t.AddDate(0, 1, 0).UnixMilli(), nil
}

func (s *Service) state(ctx context.Context, q store.Querier, name string) (int64, error) {
	var v int64
	err := q.QueryRow(ctx, "SELECT value FROM stats_state WHERE name = ?", name).Scan(&v)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("read %s: %w", name, err)
	}
	return v, nil
}

func (s *Service) setState(ctx context.Context, q store.Querier, name string, v int64) error {
	_, err := q.Exec(ctx, `INSERT INTO stats_state (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, v)
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// ErrBusy is returned by Refresh when another node is refreshing.
var ErrBusy = errors.New("stats: another node is refreshing")

// Refresh brings the rollups up to date. It returns ErrBusy, and does
// nothing, while another node holds the refresh.
func (s *Service) Refresh(ctx context.Context) error {
	now := s.now()
	if err := s.setStateIfMissing(ctx, "lease", 0); err != nil {
		return err
	}
	l := &lease{until: now + leaseFor.Milliseconds()}
	res, err := s.db.Exec(ctx, "UPDATE stats_state SET value = ? WHERE name = 'lease' AND value < ?", l.until, now)
	if err != nil {
		return fmt.Errorf("take the stats lease: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrBusy
	}
	defer func() {
		// Given back with a fresh context: a cancelled refresh still frees
		// it, if it is still this refresh's.
		_, _ = s.db.Exec(context.WithoutCancel(ctx), "UPDATE stats_state SET value = 0 WHERE name = 'lease' AND value = ?", l.until)
	}()
	for _, t := range appendOnly {
		if err := s.refreshAppended(ctx, l, t); err != nil {
			return err
		}
	}
	for _, t := range mutable {
		if err := s.refreshChanged(ctx, l, t); err != nil {
			return err
		}
	}
	return s.setState(ctx, s.db, "refreshed_at", s.now())
}

// lease is a refresh's hold on the rollups: the time it runs out, which
// only its holder knows, so that renewing it proves it is still held.
type lease struct{ until int64 }

// renew extends the lease in tx, the transaction that writes under it: if
// another node took it over (this refresh outlived it), the write is
// rolled back and the refresh stops.
func (s *Service) renew(ctx context.Context, q store.Querier, l *lease) error {
	next := s.now() + leaseFor.Milliseconds()
	res, err := q.Exec(ctx, "UPDATE stats_state SET value = ? WHERE name = 'lease' AND value = ?", next, l.until)
	if err != nil {
		return fmt.Errorf("renew the stats lease: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return ErrBusy
	}
	l.until = next
	return nil
}

func (s *Service) setStateIfMissing(ctx context.Context, name string, v int64) error {
	_, err := s.db.Exec(ctx, "INSERT INTO stats_state (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING", name, v)
	if err != nil {
		return fmt.Errorf("init %s: %w", name, err)
	}
	return nil
}

// RefreshedAt is when the rollups were last brought up to date (0: never).
func (s *Service) RefreshedAt(ctx context.Context) (int64, error) {
	return s.state(ctx, s.db, "refreshed_at")
}
