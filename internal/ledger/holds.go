package ledger

import (
	"context"
	"fmt"

	"github.com/partnerd/partnerd/internal/outbox"
	"github.com/partnerd/partnerd/internal/program"
	"github.com/partnerd/partnerd/internal/store"
)

// HoldTransaction puts a transaction's unpaid rewards on hold, with a
// reason, while something about the payment is in doubt (a chargeback):
// they leave their unpaid payout and are not paid until released. Paid
// rewards cannot be held; if the payment is lost they are clawed back. It
// returns how many rewards it held.
func (s *Service) HoldTransaction(ctx context.Context, p program.Principal, key, reason string) (int, error) {
	var n int
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		cur, err := s.txBy(ctx, tx, p, "t.key = ?", key)
		if err != nil {
			return err
		}
		type live struct {
			id, amount int64
			payoutID   *int64
		}
		var all []live
		rows, err := tx.Query(ctx, "SELECT id, amount, payout_id FROM rewards WHERE transaction_id = ? AND archived = 0 AND status IN (?, ?)",
			cur.ID, StatusPending, StatusApproved)
		if err != nil {
			return fmt.Errorf("find rewards to hold: %w", err)
		}
		for rows.Next() {
			var l live
			if err := rows.Scan(&l.id, &l.amount, &l.payoutID); err != nil {
				rows.Close()
				return fmt.Errorf("scan reward to hold: %w", err)
			}
			all = append(all, l)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("find rewards to hold: %w", err)
		}
		now := s.now()
		for _, l := range all {
			if _, err := tx.Exec(ctx, "UPDATE rewards SET status = ?, hold_reason = ?, payout_id = NULL, updated_at = ? WHERE id = ?",
				StatusHold, reason, now, l.id); err != nil {
				return fmt.Errorf("hold reward: %w", err)
			}
			if l.payoutID != nil {
				if err := leavePayout(ctx, tx, *l.payoutID, l.amount, now); err != nil {
					return err
				}
			}
			if err := outbox.Emit(ctx, tx, p.CompanyID, outbox.RewardUpdated, outbox.KindReward, l.id, now); err != nil {
				return err
			}
		}
		n = len(all)
		return nil
	})
	return n, err
}

// ReleaseTransaction ends a hold HoldTransaction placed with the same
// reason: each reward goes back to pending, or to approved if its hold
// period is over. Holds for other reasons (self-referral) stay. It returns
// how many rewards it released.
func (s *Service) ReleaseTransaction(ctx context.Context, p program.Principal, key, reason string) (int, error) {
	var n int
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		cur, err := s.txBy(ctx, tx, p, "t.key = ?", key)
		if err != nil {
			return err
		}
		ids, err := idsWhere(ctx, tx, "SELECT id FROM rewards WHERE transaction_id = ? AND archived = 0 AND status = ? AND hold_reason = ?",
			cur.ID, StatusHold, reason)
		if err != nil {
			return err
		}
		now := s.now()
		for _, id := range ids {
			if _, err := tx.Exec(ctx, `UPDATE rewards SET status = CASE WHEN ready_at <= ? THEN ? ELSE ? END, hold_reason = NULL,
				updated_at = ? WHERE id = ?`, now, StatusApproved, StatusPending, now, id); err != nil {
				return fmt.Errorf("release reward: %w", err)
			}
			if err := outbox.Emit(ctx, tx, p.CompanyID, outbox.RewardUpdated, outbox.KindReward, id, now); err != nil {
				return err
			}
		}
		n = len(ids)
		return nil
	})
	return n, err
}
