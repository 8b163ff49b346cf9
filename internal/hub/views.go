package hub

import (
	"context"
	"fmt"
	"sync"
)

// The hub's model (programs, referrals, accounts, deals, leads, the report)
// is derived from a workspace's records on read, which at hundreds of
// thousands of records takes seconds. Each view is kept here, per
// workspace, until a connection of the workspace completes a sync that
// changed records (its generation moves) or is added or changed: pages
// show the data as of the last completed sync. Each node keeps its own; the node that ran a sync
// builds the views again right after it (Warm), so that its next page
// view does not wait.
type views struct {
	mu    sync.Mutex
	m     map[string]*view // workspace|kind
	build map[string]*sync.Mutex
}

type view struct {
	stamp string
	v     any
}

// stamp is what a workspace's views depend on: its connections, their
// changes and their completed syncs.
func (s *Service) stamp(ctx context.Context, workspace string) (string, error) {
	var n, gen, updated int64
	err := s.db.QueryRow(ctx, `SELECT COUNT(*), COALESCE(SUM(c.generation), 0), COALESCE(MAX(c.updated_at), 0)
		FROM hub_connections c JOIN hub_workspaces w ON w.id = c.workspace_id WHERE w.key = ? OR w.name = ?`, workspace, workspace).
		Scan(&n, &gen, &updated)
	if err != nil {
		return "", fmt.Errorf("read the workspace's state: %w", err)
	}
	return fmt.Sprintf("%d/%d/%d", n, gen, updated), nil
}

// cached returns the workspace's view of a kind, building it when the
// workspace changed since it was built. Builds of one view wait for each
// other rather than run side by side.
func cached[T any](ctx context.Context, s *Service, workspace, kind string, build func() (T, error)) (T, error) {
	var zero T
	stamp, err := s.stamp(ctx, workspace)
	if err != nil {
		return zero, err
	}
	key := workspace + "|" + kind
	s.views.mu.Lock()
	if s.views.m == nil {
		s.views.m, s.views.build = map[string]*view{}, map[string]*sync.Mutex{}
	}
	if v, ok := s.views.m[key]; ok && v.stamp == stamp {
		s.views.mu.Unlock()
		return v.v.(T), nil
	}
	lock := s.views.build[key]
	if lock == nil {
		lock = &sync.Mutex{}
		s.views.build[key] = lock
	}
	s.views.mu.Unlock()

	lock.Lock()
	defer lock.Unlock()
	s.views.mu.Lock()
	if v, ok := s.views.m[key]; ok && v.stamp == stamp {
		s.views.mu.Unlock()
		return v.v.(T), nil // built while this one waited
	}
	s.views.mu.Unlock()
	out, err := build()
	if err != nil {
		return zero, err
	}
	s.views.mu.Lock()
	s.views.m[key] = &view{stamp: stamp, v: out}
	s.views.mu.Unlock()
	return out, nil
}

// Warm builds a workspace's views now (after a sync), so that pages do
// not wait for them.
func (s *Service) Warm(ctx context.Context, workspace string) error {
	if _, err := s.Report(ctx, workspace); err != nil {
		return err
	}
	if _, err := s.Referrals(ctx, workspace); err != nil {
		return err
	}
	if _, err := s.Contacts(ctx, workspace); err != nil { // and the accounts
		return err
	}
	if _, err := s.Programs(ctx, workspace); err != nil {
		return err
	}
	_, err := s.Deals(ctx, workspace)
	return err
}
