package store

import (
	"context"
	"path/filepath"
	"testing"
)

// An outbox drained before migration 008 must not hand out, after it, the
// ids of events whose deliveries are stored: a delivery is unique per
// webhook and event id, so a reused id dropped the new event's delivery.
func TestUpgradeKeepsOutboxIDsPastDeliveries(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "partnerd.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.migrateTo(ctx, 7); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"INSERT INTO companies (id, key, name, created_at, updated_at) VALUES (1, 'comp_a', 'A', 1, 1)",
		"INSERT INTO webhooks (id, key, company_id, target_url, events, secret, created_at, updated_at) VALUES (1, 'whk_a', 1, 'http://x', '[]', 's', 1, 1)",
	} {
		if _, err := db.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	// Five events fanned out into deliveries, then removed from the outbox.
	for id := 1; id <= 5; id++ {
		if _, err := db.Exec(ctx, "INSERT INTO events (id, company_id, name, kind, object_id, created_at) VALUES (?, 1, 'customer.created', 'customer', 1, 1)", id); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(ctx, `INSERT INTO deliveries (webhook_id, event_id, event, body, status, next_at, created_at, updated_at)
			VALUES (1, ?, 'customer.created', '{}', 'delivered', 1, 1, 1)`, id); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(ctx, "DELETE FROM events"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, "INSERT INTO events (company_id, name, kind, object_id, created_at) VALUES (1, 'x', 'customer', 1, 1)"); err != nil {
		t.Fatal(err)
	}
	var reused int64
	if err := db.QueryRow(ctx, "SELECT MAX(id) FROM events").Scan(&reused); err != nil || reused > 5 {
		t.Fatalf("before the repair SQLite reuses ids (got %d, %v): the test no longer shows the fault", reused, err)
	}
	// A pending event (id 1 again) waits in the outbox over the upgrade.
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	var pending int
	if err := db.QueryRow(ctx, "SELECT COUNT(*) FROM events WHERE id = ?", reused).Scan(&pending); err != nil || pending != 1 {
		t.Fatalf("the waiting event was not kept: %d %v", pending, err)
	}
	if _, err := db.Exec(ctx, "DELETE FROM events"); err != nil {
		t.Fatal(err)
	}
	var id int64
	if err := db.WriteRow(ctx, "INSERT INTO events (company_id, name, kind, object_id, created_at) VALUES (1, 'customer.created', 'customer', 1, 2) RETURNING id").
		Scan(&id); err != nil {
		t.Fatal(err)
	}
	if id <= 5 {
		t.Fatalf("a new event after the upgrade got id %d, which a stored delivery already names", id)
	}
}
