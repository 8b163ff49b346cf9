package hub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/partnerd/partnerd/internal/errs"
)

// retryFailedAfter is when a sync that failed (not for its credentials)
// is tried again.
const retryFailedAfter = 15 * time.Minute

// RunDue syncs the active connections whose time has come, one at a time,
// and returns how many it ran. Several nodes may call it at once: a run
// holds a lease on its connection, so no connection syncs twice at once.
func (s *Service) RunDue(ctx context.Context, log *slog.Logger) (int, error) {
	now := s.now()
	rows, err := s.db.Query(ctx, `SELECT key FROM hub_connections WHERE status = ? AND next_sync_at <= ? AND lease_until < ?
		ORDER BY next_sync_at LIMIT 10`, StatusActive, now, now)
	if err != nil {
		return 0, fmt.Errorf("find due connections: %w", err)
	}
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			rows.Close()
			return 0, fmt.Errorf("scan due connection: %w", err)
		}
		keys = append(keys, k)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("find due connections: %w", err)
	}
	ran := 0
	for _, k := range keys {
		// Claim the turn by moving it on: of several nodes that saw the
		// connection due, one moves next_sync_at and runs it.
		next := s.now() + jitter(s.cfg.SyncEvery).Milliseconds()
		res, err := s.db.Exec(ctx, "UPDATE hub_connections SET next_sync_at = ? WHERE key = ? AND next_sync_at <= ? AND lease_until < ?",
			next, k, now, s.now())
		if err != nil {
			return ran, fmt.Errorf("claim connection %s: %w", k, err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			continue
		}
		_, err = s.Sync(ctx, k, nil)
		switch {
		case ctx.Err() != nil:
			return ran, ctx.Err() // shutting down: the run resumes from its checkpoint
		case errs.CodeOf(err) == errs.Conflict:
			continue // a sync someone started by hand has it
		}
		ran++
		if err == nil {
			// The pages' views of the workspace, built now rather than on
			// its next page view.
			var ws string
			if werr := s.db.QueryRow(ctx, `SELECT w.key FROM hub_workspaces w JOIN hub_connections c ON c.workspace_id = w.id WHERE c.key = ?`, k).Scan(&ws); werr == nil {
				if werr := s.Warm(ctx, ws); werr != nil && ctx.Err() == nil {
					log.Warn("hub views after a sync", slog.String("connection", k), slog.Any("err", werr))
				}
			}
		}
		if err != nil {
			log.Warn("hub sync failed", slog.String("connection", k), slog.Any("err", err))
			if !errors.Is(err, ErrInvalidCredentials) {
				if _, err := s.db.Exec(ctx, "UPDATE hub_connections SET next_sync_at = ? WHERE key = ?",
					s.now()+retryFailedAfter.Milliseconds(), k); err != nil {
					return ran, fmt.Errorf("schedule connection %s: %w", k, err)
				}
			}
		}
	}
	return ran, nil
}

// jitter spreads d by ±10%, so that connections made together do not all
// call their sources at the same moment.
func jitter(d time.Duration) time.Duration {
	spread := int64(d) / 10
	if spread <= 0 {
		return d
	}
	return d - time.Duration(spread) + time.Duration(rand.Int64N(2*spread+1))
}

// Run syncs due connections every poll until ctx ends. The first look is
// one poll after start, so that a command run beside a starting server
// (a hub sync by hand, a test) meets no sync it did not ask for.
func (s *Service) Run(ctx context.Context, log *slog.Logger, poll time.Duration) {
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := s.RunDue(ctx, log); err != nil && ctx.Err() == nil {
			log.Error("hub schedule", slog.Any("err", err))
		}
	}
}
