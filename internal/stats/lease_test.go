package stats

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/partnerd/partnerd/internal/clock"
	"github.com/partnerd/partnerd/internal/store"
	"github.com/partnerd/partnerd/internal/store/storetest"
)

// A refresh whose lease another node took over (it outlived it) cannot
// renew it, and its write is rolled back: nothing is counted twice.
func TestALostLeaseStopsTheWrite(t *testing.T) {
	for _, eng := range storetest.Engines(t) {
		t.Run(eng.Name, func(t *testing.T) {
			ctx := context.Background()
			db := eng.Open(t)
			s := New(db, clock.NewManual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)))
			if err := s.setStateIfMissing(ctx, "lease", 0); err != nil {
				t.Fatal(err)
			}
			mine := &lease{until: 1000}
			if _, err := db.Exec(ctx, "UPDATE stats_state SET value = ? WHERE name = 'lease'", mine.until); err != nil {
				t.Fatal(err)
			}
			if err := db.Tx(ctx, func(tx *store.Tx) error { return s.renew(ctx, tx, mine) }); err != nil {
				t.Fatalf("renewing a lease still held: %v", err)
			}
			// Another node takes it over.
			if _, err := db.Exec(ctx, "UPDATE stats_state SET value = 999999999999999 WHERE name = 'lease'"); err != nil {
				t.Fatal(err)
			}
			err := db.Tx(ctx, func(tx *store.Tx) error {
				if _, err := tx.Exec(ctx, "INSERT INTO stats_links (link_id, clicks) VALUES (1, 5)"); err != nil {
					return err
				}
				return s.renew(ctx, tx, mine)
			})
			if !errors.Is(err, ErrBusy) {
				t.Fatalf("renewing a lease another holds: %v", err)
			}
			var n int
			if err := db.QueryRow(ctx, "SELECT COUNT(*) FROM stats_links").Scan(&n); err != nil || n != 0 {
				t.Fatalf("the write under a lost lease stayed: %d rows (%v)", n, err)
			}
		})
	}
}
