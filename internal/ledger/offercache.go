package ledger

import (
	"context"
	"fmt"
	"sync"

	"github.com/partnerd/partnerd/internal/store"
)

// offerCache keeps each company's active offers in memory so that a write
// that earns reads one integer instead of every offer row. An entry is
// valid while the company's offers_version is the one it was loaded at;
// every offer change bumps the version in its own transaction, so the
// check is exact across nodes, not a time-to-live guess.
type offerCache struct {
	mu sync.Mutex
	m  map[int64]offerSet
}

type offerSet struct {
	version   int64
	byTrigger map[string][]Offer // read-only once cached
}

// bumpOffers marks a company's offers changed; q must be the transaction
// making the change.
func bumpOffers(ctx context.Context, q store.Querier, companyID int64) error {
	if _, err := q.Exec(ctx, "UPDATE companies SET offers_version = offers_version + 1 WHERE id = ?", companyID); err != nil {
		return fmt.Errorf("mark offers changed: %w", err)
	}
	return nil
}

// activeOffers returns a company's live offers for one trigger, oldest
// first (the order rewards are created and explained in), as q sees them.
// The slice is shared: callers must not change it.
func (s *Service) activeOffers(ctx context.Context, q store.Querier, companyID int64, trigger string) ([]Offer, error) {
	var version int64
	if err := q.QueryRow(ctx, "SELECT offers_version FROM companies WHERE id = ?", companyID).Scan(&version); err != nil {
		return nil, fmt.Errorf("read offers version: %w", err)
	}
	return s.offersAt(ctx, q, companyID, trigger, version)
}

// offersAt returns the live offers for one trigger as of offers_version
// version or later. The transaction write path reads the version with the
// customer, before the write, so an offer saved while a request is in
// flight may not apply to it; it applies to every request received after
// it was saved, on any node.
func (s *Service) offersAt(ctx context.Context, q store.Querier, companyID int64, trigger string, version int64) ([]Offer, error) {
	s.offers.mu.Lock()
	set, ok := s.offers.m[companyID]
	s.offers.mu.Unlock()
	if ok && set.version >= version {
		return set.byTrigger[trigger], nil
	}
	// Loaded after the version was read, so the rows are at least as new
	// as the version they are filed under: a racing change can only make
	// the entry look stale (and be reloaded), never fresh when it is not.
	all, err := loadActiveOffers(ctx, q, companyID)
	if err != nil {
		return nil, err
	}
	set = offerSet{version: version, byTrigger: map[string][]Offer{}}
	for _, o := range all {
		set.byTrigger[o.Trigger] = append(set.byTrigger[o.Trigger], o)
	}
	s.offers.mu.Lock()
	if cur, ok := s.offers.m[companyID]; !ok || cur.version < version {
		s.offers.m[companyID] = set
	}
	s.offers.mu.Unlock()
	return set.byTrigger[trigger], nil
}

// loadActiveOffers reads a company's live offers, oldest first.
func loadActiveOffers(ctx context.Context, q store.Querier, companyID int64) ([]Offer, error) {
	rows, err := q.Query(ctx, "SELECT "+offerCols+" FROM "+offerFrom+" WHERE o.company_id = ? AND o.archived = 0 ORDER BY o.id", companyID)
	if err != nil {
		return nil, fmt.Errorf("load offers: %w", err)
	}
	defer rows.Close()
	var out []Offer
	for rows.Next() {
		o, err := scanOffer(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load offers: %w", err)
	}
	return out, nil
}
