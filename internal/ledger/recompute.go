package ledger

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/partnerd/partnerd/internal/errs"
	"github.com/partnerd/partnerd/internal/outbox"
	"github.com/partnerd/partnerd/internal/program"
	"github.com/partnerd/partnerd/internal/store"
)

// RecomputeResult counts what a recompute changed.
type RecomputeResult struct {
	Causes   int // customers, transactions, actions, leads and deals looked at
	Created  int
	Updated  int
	Archived int
}

// recomputeInsertRows is how many missing rewards go into one INSERT (23
// parameters each, far below either engine's limit).
const recomputeInsertRows = 200

// recomputeChunk is how many customers (or actions) one pass loads and
// rewrites in one transaction.
const recomputeChunk = 2000

// existing is an offer reward as stored.
type existing struct {
	id          int64
	amount      int64
	currency    string
	explanation string
	status      string
	archived    bool
	payoutID    *int64
}

// Recompute rebuilds every unpaid offer reward of a company from its causes
// under today's offers: missing rewards are created, changed ones updated,
// and ones no offer pays any more archived. Paid rewards are immutable and
// left alone, as are manual rewards and clawbacks. On unchanged data it
// changes nothing, because it runs the same engine as the write paths.
func (s *Service) Recompute(ctx context.Context, companyID int64) (RecomputeResult, error) {
	var res RecomputeResult
	var offers []Offer
	for _, trig := range []string{TriggerCustomer, TriggerTransaction, TriggerAction, TriggerLead, TriggerDeal} {
		o, err := s.activeOffers(ctx, s.db, companyID, trig)
		if err != nil {
			return res, err
		}
		offers = append(offers, o...)
	}
	for after := int64(0); ; {
		next, err := s.recomputeCustomers(ctx, companyID, offers, after, &res)
		if err != nil {
			return res, err
		}
		if next == after {
			break
		}
		after = next
	}
	for after := int64(0); ; {
		next, err := s.recomputeActions(ctx, companyID, offers, after, &res)
		if err != nil {
			return res, err
		}
		if next == after {
			break
		}
		after = next
	}
	for _, src := range []pipelineSource{leadSource, dealSource} {
		for after := int64(0); ; {
			next, err := s.recomputePipeline(ctx, companyID, src, offers, after, &res)
			if err != nil {
				return res, err
			}
			if next == after {
				break
			}
			after = next
		}
	}
	return res, nil
}

// recomputeCustomers handles the customers after id `after` (one chunk),
// their sign-ups and transactions, and returns the last id it handled.
func (s *Service) recomputeCustomers(ctx context.Context, companyID int64, offers []Offer, after int64, res *RecomputeResult) (int64, error) {
	var causes []cause
	last := after
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		causes, last = causes[:0], after
		rows, err := tx.Query(ctx, `SELECT cu.id, cu.partnership_id, COALESCE(cu.group_id, p.group_id), cu.test, p.archived, cu.email,
			p.email, cu.created_at FROM customers cu JOIN partnerships p ON p.id = cu.partnership_id
			WHERE cu.company_id = ? AND cu.id > ? ORDER BY cu.id LIMIT ?`, companyID, after, recomputeChunk)
		if err != nil {
			return fmt.Errorf("load customers: %w", err)
		}
		custs := map[int64]cause{}
		for rows.Next() {
			c := cause{kind: TriggerCustomer}
			if err := rows.Scan(&c.id, &c.partnershipID, &c.groupID, &c.test, &c.partnerGone, &c.customerEmail, &c.partnerEmail, &c.createdAt); err != nil {
				rows.Close()
				return fmt.Errorf("scan customer: %w", err)
			}
			id := c.id
			c.customerID = &id
			causes = append(causes, c)
			custs[c.id] = c
			last = c.id
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("load customers: %w", err)
		}
		if last == after {
			return nil
		}
		rows, err = tx.Query(ctx, `SELECT t.id, t.customer_id, t.amount, t.currency, t.product_key, t.category_key, t.test, t.archived,
			COALESCE(t.group_id, p.group_id), t.created_at FROM transactions t JOIN partnerships p ON p.id = t.partnership_id
			WHERE t.company_id = ? AND t.customer_id > ? AND t.customer_id <= ? ORDER BY t.customer_id, t.id`, companyID, after, last)
		if err != nil {
			return fmt.Errorf("load transactions: %w", err)
		}
		var firstOf = map[int64][2]int64{} // customer → first positive transaction id, created_at
		var rankOf = map[int64]int{}
		for rows.Next() {
			c := cause{kind: TriggerTransaction}
			var cid int64
			if err := rows.Scan(&c.id, &cid, &c.amount, &c.currency, &c.productKey, &c.categoryKey, &c.test, &c.archived, &c.groupID,
				&c.createdAt); err != nil {
				rows.Close()
				return fmt.Errorf("scan transaction: %w", err)
			}
			cu := custs[cid]
			c.customerID, c.partnershipID, c.partnerGone = cu.customerID, cu.partnershipID, cu.partnerGone
			c.customerEmail, c.partnerEmail = cu.customerEmail, cu.partnerEmail
			if c.amount > 0 {
				if _, ok := firstOf[cid]; !ok {
					firstOf[cid] = [2]int64{c.id, c.createdAt}
				}
				rankOf[cid]++
				c.rank = rankOf[cid]
			}
			if f, ok := firstOf[cid]; ok {
				c.firstID, c.firstAt = f[0], f[1]
			} else {
				c.firstID, c.firstAt = c.id, c.createdAt
			}
			causes = append(causes, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("load transactions: %w", err)
		}
		have, err := loadExisting(ctx, tx, `SELECT id, dedupe, amount, currency, explanation, status, archived, payout_id FROM rewards
			WHERE company_id = ? AND source = ? AND action_id IS NULL AND customer_id > ? AND customer_id <= ?`,
			companyID, SourceOffer, after, last)
		if err != nil {
			return err
		}
		// A payment whose reward was imported (a migration's history) is
		// paid by it: today's offers must not pay it again.
		paid, err := importedPaid(ctx, tx, "transaction_id", `transaction_id IN (SELECT id FROM transactions
			WHERE company_id = ? AND customer_id > ? AND customer_id <= ?)`, companyID, after, last)
		if err != nil {
			return err
		}
		kept := causes[:0]
		for _, c := range causes {
			if c.kind != TriggerTransaction || !paid[c.id] {
				kept = append(kept, c)
			}
		}
		return s.reconcile(ctx, tx, companyID, offers, kept, have, res)
	})
	return last, err
}

// recomputeActions handles one chunk of actions after id `after`.
func (s *Service) recomputeActions(ctx context.Context, companyID int64, offers []Offer, after int64, res *RecomputeResult) (int64, error) {
	last := after
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		last = after
		rows, err := tx.Query(ctx, `SELECT a.id, a.partnership_id, a.customer_id, COALESCE(a.group_id, p.group_id), a.test, a.archived,
			p.archived, COALESCE(cu.email, ''), p.email, a.type, a.value, a.created_at FROM actions a
			JOIN partnerships p ON p.id = a.partnership_id LEFT JOIN customers cu ON cu.id = a.customer_id
			WHERE a.company_id = ? AND a.id > ? ORDER BY a.id LIMIT ?`, companyID, after, recomputeChunk)
		if err != nil {
			return fmt.Errorf("load actions: %w", err)
		}
		var causes []cause
		for rows.Next() {
			c := cause{kind: TriggerAction}
			if err := rows.Scan(&c.id, &c.partnershipID, &c.customerID, &c.groupID, &c.test, &c.archived, &c.partnerGone,
				&c.customerEmail, &c.partnerEmail, &c.actionType, &c.value, &c.createdAt); err != nil {
				rows.Close()
				return fmt.Errorf("scan action: %w", err)
			}
			causes = append(causes, c)
			last = c.id
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("load actions: %w", err)
		}
		if last == after {
			return nil
		}
		have, err := loadExisting(ctx, tx, `SELECT id, dedupe, amount, currency, explanation, status, archived, payout_id FROM rewards
			WHERE company_id = ? AND source = ? AND action_id > ? AND action_id <= ?`, companyID, SourceOffer, after, last)
		if err != nil {
			return err
		}
		return s.reconcile(ctx, tx, companyID, offers, causes, have, res)
	})
	return last, err
}

func loadExisting(ctx context.Context, q store.Querier, query string, args ...any) (map[string]existing, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("load rewards: %w", err)
	}
	defer rows.Close()
	have := map[string]existing{}
	for rows.Next() {
		var e existing
		var dedupe string
		if err := rows.Scan(&e.id, &dedupe, &e.amount, &e.currency, &e.explanation, &e.status, &e.archived, &e.payoutID); err != nil {
			return nil, fmt.Errorf("scan reward: %w", err)
		}
		have[dedupe] = e
	}
	return have, rows.Err()
}

// reconcile makes the stored offer rewards of causes match what the engine
// says today.
func (s *Service) reconcile(ctx context.Context, q store.Querier, companyID int64, offers []Offer, causes []cause,
	have map[string]existing, res *RecomputeResult) error {
	now := s.now()
	want := map[string]bool{}
	var create []newReward
	flush := func() error {
		ids, err := s.insertRewards(ctx, q, create)
		res.Created += len(ids)
		create = create[:0]
		return err
	}
	for _, c := range causes {
		res.Causes++
		outs, _, _ := evaluate(offers, c)
		for _, o := range outs {
			if o.reward == nil {
				continue
			}
			d := *o.reward
			want[d.dedupe] = true
			e, ok := have[d.dedupe]
			if !ok {
				create = append(create, s.reward(companyID, c, d))
				if len(create) == recomputeInsertRows {
					if err := flush(); err != nil {
						return err
					}
				}
				continue
			}
			if e.status == StatusPaid || e.archived {
				continue // paid rewards are immutable; reversed ones stay reversed
			}
			ex, err := json.Marshal(d.explanation)
			if err != nil {
				return fmt.Errorf("encode explanation: %w", err)
			}
			if e.amount == d.amount && e.currency == d.currency && e.explanation == string(ex) {
				continue
			}
			usd, err := usdAmount(ctx, q, companyID, d.amount, d.currency, c.createdAt)
			if err != nil {
				return err
			}
			if _, err := q.Exec(ctx, "UPDATE rewards SET amount = ?, currency = ?, amount_usd = ?, explanation = ?, offer_id = ?, updated_at = ? WHERE id = ?",
				d.amount, d.currency, usd, string(ex), d.offer.ID, now, e.id); err != nil {
				return fmt.Errorf("update reward: %w", err)
			}
			if e.payoutID != nil {
				if _, err := q.Exec(ctx, "UPDATE payouts SET amount = amount + ?, updated_at = ? WHERE id = ?", d.amount-e.amount, now, *e.payoutID); err != nil {
					return fmt.Errorf("update payout: %w", err)
				}
			}
			if err := outbox.Emit(ctx, q, companyID, outbox.RewardUpdated, outbox.KindReward, e.id, now); err != nil {
				return err
			}
			res.Updated++
		}
	}
	if len(create) > 0 {
		if err := flush(); err != nil {
			return err
		}
	}
	for dedupe, e := range have {
		if want[dedupe] || e.status == StatusPaid || e.archived {
			continue
		}
		if err := s.archiveReward(ctx, q, companyID, e.id, e.amount, e.payoutID, now); err != nil {
			return err
		}
		res.Archived++
	}
	return nil
}

// TxExplanation says what a transaction earned under today's offers and,
// for every offer that paid nothing, why.
type TxExplanation struct {
	Transaction Transaction
	Rewards     []Reward
	Blocked     string // a reason code when nothing about the transaction can earn
	BlockedWhy  string
	Offers      []OfferOutcome
}

// OfferOutcome is one offer's verdict on a transaction.
type OfferOutcome struct {
	OfferKey  string
	OfferName string
	Earns     bool
	Amount    int64
	Currency  string
	Code      string
	Reason    string
}

// ExplainTransaction evaluates a transaction against today's live offers
// (the ones a recompute would apply) and lists the rewards it has.
func (s *Service) ExplainTransaction(ctx context.Context, p program.Principal, key string) (TxExplanation, error) {
	var out TxExplanation
	t, err := s.txBy(ctx, s.db, p, "t.key = ?", key)
	if err != nil {
		return out, err
	}
	out.Transaction = t
	c := cause{kind: TriggerTransaction, id: t.ID, amount: t.Amount, currency: t.Currency, productKey: t.ProductKey,
		categoryKey: t.CategoryKey, test: t.Test, archived: t.Archived, createdAt: t.CreatedAt}
	var cid int64
	if err := s.db.QueryRow(ctx, `SELECT t.customer_id, t.partnership_id, COALESCE(t.group_id, p.group_id), p.archived, cu.email, p.email
		FROM transactions t JOIN partnerships p ON p.id = t.partnership_id JOIN customers cu ON cu.id = t.customer_id WHERE t.id = ?`, t.ID).
		Scan(&cid, &c.partnershipID, &c.groupID, &c.partnerGone, &c.customerEmail, &c.partnerEmail); err != nil {
		return out, fmt.Errorf("load transaction: %w", err)
	}
	c.customerID = &cid
	offers, err := s.activeOffers(ctx, s.db, p.CompanyID, TriggerTransaction)
	if err != nil {
		return out, err
	}
	if err := s.loadHistory(ctx, s.db, &c, true); err != nil {
		return out, err
	}
	outs, blocked, why := evaluate(offers, c)
	out.Blocked, out.BlockedWhy = blocked, why
	for _, o := range outs {
		oo := OfferOutcome{OfferKey: o.offer.Key, OfferName: o.offer.Name, Code: o.code, Reason: o.reason}
		if o.reward != nil {
			oo.Earns, oo.Amount, oo.Currency = true, o.reward.amount, o.reward.currency
		}
		out.Offers = append(out.Offers, oo)
	}
	out.Rewards, _, err = s.ListRewards(ctx, p, RewardFilter{TransactionKey: key, IncludeArchived: true}, store.Page{Limit: 250})
	if err != nil {
		return out, errs.E(errs.Internal, "list rewards: %v", err)
	}
	return out, nil
}
