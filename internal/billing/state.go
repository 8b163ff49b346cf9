package billing

import (
	"context"
	"fmt"

	"github.com/partnerd/partnerd/internal/errs"
	"github.com/partnerd/partnerd/internal/program"
	"github.com/partnerd/partnerd/internal/store"
)

// subscriptionState is what a provider reports of a subscription. It is
// informational (PartnerStack keeps it as "subscription records"): money
// only ever comes from payment events.
type subscriptionState struct {
	provider, id, customerKey, status, plan, eventType string
	at                                                 int64 // the provider's event time, epoch ms
}

// recordState keeps a subscription's latest state. An event older than the
// stored one (deliveries are reordered) changes nothing.
func (s *Service) recordState(ctx context.Context, p program.Principal, st subscriptionState) (outcome, error) {
	if st.id == "" || st.customerKey == "" {
		return ignored("the %s subscription event names no subscription id or customer key", st.provider), nil
	}
	if st.status == "" {
		st.status = "unknown"
	}
	now := s.now()
	if st.at <= 0 {
		st.at = now
	}
	res, err := s.db.Exec(ctx, `INSERT INTO billing_subscriptions (company_id, test, provider, subscription_id, customer_key, status, plan,
		event_type, event_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (company_id, test, provider, subscription_id) DO UPDATE SET customer_key = excluded.customer_key,
		status = excluded.status, plan = excluded.plan, event_type = excluded.event_type, event_at = excluded.event_at,
		updated_at = excluded.updated_at WHERE billing_subscriptions.event_at <= excluded.event_at`,
		p.CompanyID, store.Bool(p.Test), st.provider, limit255(st.id), limit255(st.customerKey), limit255(st.status), limit255(st.plan),
		st.eventType, st.at, now)
	if err != nil {
		return outcome{}, fmt.Errorf("record subscription state: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return done("subscription %s: a newer state is already recorded", st.id), nil
	}
	return done("subscription %s of customer %s is %s", st.id, st.customerKey, st.status), nil
}

func limit255(v string) string {
	if len(v) > 255 {
		return v[:255]
	}
	return v
}

// Subscription is a provider subscription's latest state, as reported.
type Subscription struct {
	Provider       string
	SubscriptionID string
	CustomerKey    string
	Status         string
	Plan           string
	EventType      string
	EventAt        int64
	UpdatedAt      int64
}

// ListSubscriptions lists the subscription states a company's providers
// reported in one mode, optionally for one customer_key, newest first.
func (s *Service) ListSubscriptions(ctx context.Context, companyID int64, test bool, customerKey string, limit int) ([]Subscription, error) {
	if limit <= 0 || limit > 250 {
		return nil, errs.E(errs.Invalid, "'limit' must be 1 to 250")
	}
	q := `SELECT provider, subscription_id, customer_key, status, plan, event_type, event_at, updated_at FROM billing_subscriptions
		WHERE company_id = ? AND test = ?`
	args := []any{companyID, store.Bool(test)}
	if customerKey != "" {
		q, args = q+" AND customer_key = ?", append(args, customerKey)
	}
	rows, err := s.db.Query(ctx, q+" ORDER BY event_at DESC, id DESC LIMIT ?", append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("list subscriptions: %w", err)
	}
	defer rows.Close()
	var out []Subscription
	for rows.Next() {
		var x Subscription
		if err := rows.Scan(&x.Provider, &x.SubscriptionID, &x.CustomerKey, &x.Status, &x.Plan, &x.EventType, &x.EventAt, &x.UpdatedAt); err != nil {
			return nil, fmt.Errorf("scan subscription: %w", err)
		}
		out = append(out, x)
	}
	return out, rows.Err()
}
