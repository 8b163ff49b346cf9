// Package outbox records events in the same database transaction as the
// change they describe, so that a webhook is sent for every committed change
// and for nothing that rolled back. Delivery is the webhooks package's job.
package outbox

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/partnerd/partnerd/internal/store"
)

// Kinds of object an event carries.
const (
	KindPartnership = "partnership"
	KindCustomer    = "customer"
	KindTransaction = "transaction"
	KindReward      = "reward"
	KindPayout      = "payout"
	KindAction      = "action"
	KindLead        = "lead"
	KindDeal        = "deal"
)

// Event names, in PartnerStack's current dotted form.
const (
	PartnershipCreated = "partnership.created"
	PartnershipUpdated = "partnership.updated"
	CustomerCreated    = "customer.created"
	CustomerUpdated    = "customer.updated"
	CustomerDeleted    = "customer.deleted"
	TransactionCreated = "transaction.created"
	TransactionDeleted = "transaction.deleted"
	RewardCreated      = "reward.created"
	RewardUpdated      = "reward.updated"
	PayoutCreated      = "payout.created"
	PayoutPaid         = "payout.paid"
	LeadCreated        = "lead.created"
	LeadUpdated        = "lead.updated"
	DealCreated        = "deal.created"
	DealUpdated        = "deal.updated"
)

// Names lists every event a webhook may subscribe to.
var Names = []string{PartnershipCreated, PartnershipUpdated, CustomerCreated, CustomerUpdated, CustomerDeleted,
	TransactionCreated, TransactionDeleted, RewardCreated, RewardUpdated, PayoutCreated, PayoutPaid,
	LeadCreated, LeadUpdated, DealCreated, DealUpdated}

// Emit records that name happened to the object (kind, id) of a company. q
// must be the transaction making the change.
func Emit(ctx context.Context, q store.Querier, companyID int64, name, kind string, objectID, at int64) error {
	if _, err := q.Exec(ctx, "INSERT INTO events (company_id, name, kind, object_id, created_at) VALUES (?, ?, ?, ?, ?)",
		companyID, name, kind, objectID, at); err != nil {
		return fmt.Errorf("record event %s: %w", name, err)
	}
	return nil
}

// EmitAll records that name happened to each of the objects (kind, ids) in
// one statement, for a write that creates several objects at once.
func EmitAll(ctx context.Context, q store.Querier, companyID int64, name, kind string, ids []int64, at int64) error {
	if len(ids) == 0 {
		return nil
	}
	if len(ids) == 1 {
		return Emit(ctx, q, companyID, name, kind, ids[0], at)
	}
	// In chunks: a payout of thousands of rewards emits thousands of
	// events, and one statement may bind at most 32,766 parameters on
	// SQLite (65,535 on PostgreSQL).
	const chunk = 1000
	for len(ids) > 0 {
		n := min(chunk, len(ids))
		args := make([]any, 0, 5*n)
		for _, id := range ids[:n] {
			args = append(args, companyID, name, kind, id, at)
		}
		query := "INSERT INTO events (company_id, name, kind, object_id, created_at) VALUES " +
			strings.Repeat("(?, ?, ?, ?, ?), ", n-1) + "(?, ?, ?, ?, ?)"
		if _, err := q.Exec(ctx, query, args...); err != nil {
			return fmt.Errorf("record %d %s events: %w", n, name, err)
		}
		ids = ids[n:]
	}
	return nil
}

// Insert runs insert, an INSERT … RETURNING id of one row, and records that
// name happened to the new row, like InsertAll. When insert writes no row
// (ON CONFLICT DO NOTHING) it returns sql.ErrNoRows and records nothing.
func Insert(ctx context.Context, q store.Querier, insert string, args []any, companyID int64, name, kind string, at int64) (int64, error) {
	ids, err := InsertAll(ctx, q, insert, args, companyID, name, kind, at)
	if err != nil {
		return 0, err
	}
	if len(ids) == 0 {
		return 0, sql.ErrNoRows
	}
	return ids[0], nil
}

// InsertAll runs insert, an INSERT … RETURNING id, and records that name
// happened to each row it wrote; it returns their ids in no particular
// order. On PostgreSQL the rows and their events go in one statement (a
// data-modifying WITH), so the single writer of a group commit waits on one
// round trip instead of two; on SQLite a statement costs no round trip and
// the events are a second statement.
func InsertAll(ctx context.Context, q store.Querier, insert string, args []any, companyID int64, name, kind string, at int64) ([]int64, error) {
	if q.Dialect() == store.Postgres {
		insert = "WITH ins AS (" + insert + "), ev AS (INSERT INTO events (company_id, name, kind, object_id, created_at) " +
			"SELECT ?, ?, ?, id, ? FROM ins) SELECT id FROM ins"
		args = append(args, companyID, name, kind, at)
	}
	rows, err := q.Query(ctx, insert, args...)
	if err != nil {
		return nil, err
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if q.Dialect() != store.Postgres {
		if err := EmitAll(ctx, q, companyID, name, kind, ids, at); err != nil {
			return nil, err
		}
	}
	return ids, nil
}
