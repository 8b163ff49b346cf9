package hub

import (
	"context"
	"testing"
	"time"

	"github.com/partnerd/partnerd/internal/store/storetest"
)

// TestViewsStayUntilASyncChangesSomething: a sync that changes no record
// leaves the workspace's views as they are (a rebuild takes seconds at
// scale); one that changes a record moves them on, and the view shows it.
func TestViewsStayUntilASyncChangesSomething(t *testing.T) {
	for _, eng := range storetest.Engines(t) {
		t.Run(eng.Name, func(t *testing.T) {
			ctx := context.Background()
			f := fakeProgram(t)
			db := eng.Open(t)
			s := testService(t, db, DefaultConfig)
			c := connect(t, s, f)
			must(s.Sync(ctx, c.Key, nil))
			first := must(s.stamp(ctx, "Agency"))
			if _, err := s.Referrals(ctx, "Agency"); err != nil {
				t.Fatal(err)
			}

			must(s.Sync(ctx, c.Key, nil))
			if again := must(s.stamp(ctx, "Agency")); again != first {
				t.Fatalf("an unchanged sync moved the views on: %s → %s", first, again)
			}
			var synced int64
			if err := db.QueryRow(ctx, "SELECT last_sync_at FROM hub_connections WHERE id = ?", c.ID).Scan(&synced); err != nil || synced == 0 {
				t.Fatalf("the unchanged sync is not recorded: %d %v", synced, err)
			}

			f.mu.Lock()
			key := f.records["customers"][3]["key"].(string)
			f.records["customers"][3]["name"] = "Renamed Customer"
			f.records["customers"][3]["updated_at"] = time.Now().UnixMilli()
			f.mu.Unlock()
			must(s.Sync(ctx, c.Key, nil))
			if changed := must(s.stamp(ctx, "Agency")); changed == first {
				t.Fatal("a sync that changed a customer left the views as they were")
			}
			found := false
			for _, r := range must(s.Referrals(ctx, "Agency")) {
				if r.CustomerKey == key {
					found = r.Name == "Renamed Customer"
				}
			}
			if !found {
				t.Fatalf("the referrals view does not show %s renamed", key)
			}
		})
	}
}
