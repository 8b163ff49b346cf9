package ledger

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/partnerd/partnerd/internal/errs"
	"github.com/partnerd/partnerd/internal/money"
	"github.com/partnerd/partnerd/internal/outbox"
	"github.com/partnerd/partnerd/internal/program"
	"github.com/partnerd/partnerd/internal/secret"
	"github.com/partnerd/partnerd/internal/store"
)

// Reward statuses, PartnerStack's.
const (
	StatusHold     = "hold"
	StatusPending  = "pending"
	StatusApproved = "approved"
	StatusDeclined = "declined"
	StatusPaid     = "paid"
)

// Reward sources.
const (
	SourceOffer    = "offer"
	SourceManual   = "manual"
	SourceClawback = "clawback"
)

// Reward is money owed to a partner, with the reason it is owed.
type Reward struct {
	ID            int64
	Key           string
	Source        string
	Amount        int64
	Currency      string
	AmountUSD     *int64
	Description   string
	Status        string
	DeclineReason *string
	HoldReason    *string
	Explanation   json.RawMessage
	ReadyAt       int64
	Test          bool
	Archived      bool
	CreatedAt     int64
	UpdatedAt     int64

	PartnershipKey string
	PartnerKey     string
	PartnerName    string
	GroupKey       string
	GroupName      string
	OfferKey       *string
	OfferName      *string
	CustomerKey    *string
	CustomerExtKey *string
	CustomerEmail  *string
	CustomerName   *string
	TxKey          *string
	TxAmount       *int64
	TxCurrency     *string
	ActionKey      *string
	ActionType     *string
	ActionValue    *int64
	PayoutKey      *string
	ReversesKey    *string
	LeadKey        *string
	DealKey        *string
	DealName       *string
}

const rewardCols = `r.id, r.key, r.source, r.amount, r.currency, r.amount_usd, r.description, r.status, r.decline_reason,
	r.hold_reason, r.explanation, r.ready_at, r.test, r.archived, r.created_at, r.updated_at,
	p.key, p.partner_key, p.first_name, p.last_name, g.key, g.name, o.key, o.name, cu.key, cu.customer_key, cu.email, cu.name,
	t.key, t.amount, t.currency, a.key, a.type, a.value, po.key, rv.key, l.key, d.key, d.account_name`

const rewardFrom = `rewards r JOIN partnerships p ON p.id = r.partnership_id JOIN groups g ON g.id = p.group_id
	LEFT JOIN offers o ON o.id = r.offer_id LEFT JOIN customers cu ON cu.id = r.customer_id
	LEFT JOIN transactions t ON t.id = r.transaction_id LEFT JOIN actions a ON a.id = r.action_id
	LEFT JOIN payouts po ON po.id = r.payout_id LEFT JOIN rewards rv ON rv.id = r.reverses_id
	LEFT JOIN leads l ON l.id = r.lead_id LEFT JOIN deals d ON d.id = r.deal_id`

func scanReward(sc store.Scanner) (Reward, error) {
	var r Reward
	var ex, first, last string
	err := sc.Scan(&r.ID, &r.Key, &r.Source, &r.Amount, &r.Currency, &r.AmountUSD, &r.Description, &r.Status, &r.DeclineReason,
		&r.HoldReason, &ex, &r.ReadyAt, &r.Test, &r.Archived, &r.CreatedAt, &r.UpdatedAt,
		&r.PartnershipKey, &r.PartnerKey, &first, &last, &r.GroupKey, &r.GroupName, &r.OfferKey, &r.OfferName,
		&r.CustomerKey, &r.CustomerExtKey, &r.CustomerEmail, &r.CustomerName, &r.TxKey, &r.TxAmount, &r.TxCurrency,
		&r.ActionKey, &r.ActionType, &r.ActionValue, &r.PayoutKey, &r.ReversesKey, &r.LeadKey, &r.DealKey, &r.DealName)
	if err != nil {
		return r, fmt.Errorf("scan reward: %w", err)
	}
	r.Explanation = json.RawMessage(ex)
	r.PartnerName = strings.TrimSpace(first + " " + last)
	return r, nil
}

func (s *Service) rewardBy(ctx context.Context, q store.Querier, p program.Principal, cond string, args ...any) (Reward, error) {
	query, all := p.Scoped("SELECT "+rewardCols+" FROM "+rewardFrom, "r.company_id", "r.partnership_id", cond, args...)
	return store.One(ctx, q, "reward", scanReward, query, all...)
}

// GetReward finds a reward by key.
func (s *Service) GetReward(ctx context.Context, p program.Principal, key string) (Reward, error) {
	return s.rewardBy(ctx, s.db, p, "r.key = ?", key)
}

// newReward is a reward row to insert.
type newReward struct {
	companyID     int64
	partnershipID int64
	offerID       *int64
	customerID    *int64
	transactionID *int64
	actionID      *int64
	leadID        *int64
	dealID        *int64
	reversesID    *int64
	source        string
	dedupe        *string
	amount        int64
	currency      string
	description   string
	status        string
	holdReason    *string
	explanation   Explanation
	readyAt       int64
	test          bool
	at            int64 // the cause's time, for the exchange rate
}

// insertReward writes r unless its dedupe key is taken (then it returns
// id 0): a cause can earn from an offer once, however often it is replayed.
func (s *Service) insertReward(ctx context.Context, q store.Querier, r newReward) (int64, error) {
	ids, err := s.insertRewards(ctx, q, []newReward{r})
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	return ids[0], nil
}

// rewardInsertCols are the columns insertRewards writes, one placeholder each.
const rewardInsertCols = `key, company_id, partnership_id, offer_id, customer_id, transaction_id, action_id, lead_id, deal_id,
	reverses_id, source, dedupe, amount, currency, amount_usd, description, status, hold_reason, explanation, ready_at, test,
	created_at, updated_at`

const rewardPlaceholders = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"

// insertRewards writes the rewards of one company in one statement (a
// transaction paying three offers is one round trip, not three) and emits
// reward.created for each (in the same statement on PostgreSQL). Rows whose dedupe key is taken are skipped; the
// ids of the rows written are returned, in no particular order.
func (s *Service) insertRewards(ctx context.Context, q store.Querier, rs []newReward) ([]int64, error) {
	if len(rs) == 0 {
		return nil, nil
	}
	now := s.now()
	args := make([]any, 0, 23*len(rs))
	rates := rateMemo{} // the rewards of one cause share its currency and day
	for _, r := range rs {
		usd, err := rates.usd(ctx, q, r.companyID, r.amount, r.currency, r.at)
		if err != nil {
			return nil, err
		}
		ex, err := json.Marshal(r.explanation)
		if err != nil {
			return nil, fmt.Errorf("encode explanation: %w", err)
		}
		// Time-ordered keys: the unique index on key takes new rewards at
		// its end instead of on a random page per insert.
		args = append(args, secret.OrderedKey("rwrd", time.UnixMilli(now)), r.companyID, r.partnershipID, r.offerID, r.customerID,
			r.transactionID, r.actionID, r.leadID, r.dealID, r.reversesID, r.source, r.dedupe, r.amount, r.currency, usd, r.description, r.status,
			r.holdReason, string(ex), r.readyAt, store.Bool(r.test), now, now)
	}
	query := "INSERT INTO rewards (" + rewardInsertCols + ") VALUES " + strings.Repeat(rewardPlaceholders+", ", len(rs)-1) +
		rewardPlaceholders + " ON CONFLICT (company_id, dedupe) DO NOTHING RETURNING id"
	ids, err := outbox.InsertAll(ctx, q, query, args, rs[0].companyID, outbox.RewardCreated, outbox.KindReward, now)
	if err != nil {
		return nil, fmt.Errorf("insert rewards: %w", err)
	}
	return ids, nil
}

// reward turns the engine's draft for c into a row: held when it looks like
// a self-referral, pending for the offer's hold period from the cause's
// time, approved after.
func (s *Service) reward(companyID int64, c cause, d draft) newReward {
	r := newReward{companyID: companyID, partnershipID: c.partnershipID, offerID: &d.offer.ID, customerID: c.customerID,
		source: SourceOffer, dedupe: &d.dedupe, amount: d.amount, currency: d.currency, description: d.offer.Name,
		explanation: d.explanation, readyAt: c.createdAt + int64(d.offer.HoldDays)*86_400_000, at: c.createdAt}
	id := c.id
	switch c.kind {
	case TriggerTransaction:
		r.transactionID = &id
	case TriggerAction:
		r.actionID = &id
	case TriggerLead:
		r.leadID = &id
	case TriggerDeal:
		r.dealID = &id
	}
	r.status = StatusApproved
	if r.readyAt > s.now() {
		r.status = StatusPending
	}
	if why := selfReferral(c); why != "" {
		r.status, r.holdReason = StatusHold, &why
	}
	return r
}

// earn runs the engine on c inside q and writes the rewards it earns.
func (s *Service) earn(ctx context.Context, q store.Querier, companyID int64, c cause) error {
	if c.test || c.archived || c.partnerGone {
		return nil // nothing can earn; skip loading offers
	}
	var offers []Offer
	var err error
	if c.offersVersion != nil {
		offers, err = s.offersAt(ctx, q, companyID, c.kind, *c.offersVersion)
	} else {
		offers, err = s.activeOffers(ctx, q, companyID, c.kind)
	}
	if err != nil || len(offers) == 0 {
		return err
	}
	if first, rank := needsHistory(offers); c.kind == TriggerTransaction && first {
		if err := s.loadHistory(ctx, q, &c, rank); err != nil {
			return err
		}
	}
	outs, _, _ := evaluate(offers, c)
	var rs []newReward
	for _, o := range outs {
		if o.reward != nil {
			rs = append(rs, s.reward(companyID, c, *o.reward))
		}
	}
	_, err = s.insertRewards(ctx, q, rs)
	return err
}

// needsHistory says whether any offer looks at the customer's earlier
// transactions: first for a recurring window or a cap, rank only for a cap.
// The rank counts the customer's transactions, so it is skipped when no
// offer needs it.
func needsHistory(offers []Offer) (first, rank bool) {
	for _, o := range offers {
		if o.DurationMonths != nil || o.MaxTransactions != nil {
			first = true
		}
		if o.MaxTransactions != nil {
			rank = true
		}
	}
	return first, rank
}

// loadHistory finds the customer's first positive transaction and, if
// withRank, the rank of c among its positive transactions, by arrival order
// (id), so that a backdated or deleted transaction never changes which one
// was first.
func (s *Service) loadHistory(ctx context.Context, q store.Querier, c *cause, withRank bool) error {
	if c.customerID == nil {
		return nil
	}
	if !c.firstKnown {
		err := q.QueryRow(ctx, "SELECT id, created_at FROM transactions WHERE customer_id = ? AND amount > 0 ORDER BY id LIMIT 1",
			*c.customerID).Scan(&c.firstID, &c.firstAt)
		if errors.Is(err, sql.ErrNoRows) {
			c.firstID, c.firstAt = c.id, c.createdAt
		} else if err != nil {
			return fmt.Errorf("find first transaction: %w", err)
		}
	}
	if c.amount <= 0 || !withRank {
		c.rank = 0
		return nil
	}
	if err := q.QueryRow(ctx, "SELECT COUNT(*) FROM transactions WHERE customer_id = ? AND amount > 0 AND id <= ?",
		*c.customerID, c.id).Scan(&c.rank); err != nil {
		return fmt.Errorf("rank transaction: %w", err)
	}
	return nil
}

// customerCause describes a new customer to the engine.
func customerCause(cu program.Customer) cause {
	id := cu.ID
	g := cu.GroupID
	if cu.SignupGroupID != nil {
		g = *cu.SignupGroupID
	}
	return cause{kind: TriggerCustomer, id: cu.ID, partnershipID: cu.PartnershipID, customerID: &id, groupID: g, test: cu.Test,
		archived: false, partnerGone: cu.PartnershipArchived, customerEmail: cu.Email, partnerEmail: cu.PartnerEmail, createdAt: cu.CreatedAt}
}

// RewardSignup is the program's customer hook: it earns sign-up rewards in
// the transaction that creates the customer.
func (s *Service) RewardSignup(ctx context.Context, q store.Querier, cu program.Customer) error {
	return s.earn(ctx, q, cu.CompanyID, customerCause(cu))
}

// reverse undoes the live rewards of a deleted cause inside q. An unpaid
// reward is archived (and leaves its unpaid payout); a paid one is
// immutable, so a clawback, a negative approved reward, nets it against the
// partner's next payout.
func (s *Service) reverse(ctx context.Context, q store.Querier, companyID int64, col string, causeID int64, why string) error {
	rows, err := q.Query(ctx, "SELECT id, partnership_id, customer_id, amount, currency, status, payout_id FROM rewards WHERE "+col+
		" = ? AND archived = 0 AND source <> ? ORDER BY id", causeID, SourceClawback)
	if err != nil {
		return fmt.Errorf("find rewards to reverse: %w", err)
	}
	type live struct {
		id, partnershipID int64
		customerID        *int64
		amount            int64
		currency, status  string
		payoutID          *int64
	}
	var all []live
	for rows.Next() {
		var l live
		if err := rows.Scan(&l.id, &l.partnershipID, &l.customerID, &l.amount, &l.currency, &l.status, &l.payoutID); err != nil {
			rows.Close()
			return fmt.Errorf("scan reward to reverse: %w", err)
		}
		all = append(all, l)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("find rewards to reverse: %w", err)
	}
	now := s.now()
	for _, l := range all {
		if l.status != StatusPaid {
			if err := s.archiveReward(ctx, q, companyID, l.id, l.amount, l.payoutID, now); err != nil {
				return err
			}
			continue
		}
		dedupe := fmt.Sprintf("claw:%d", l.id)
		reverses := l.id
		ex := Explanation{Source: SourceClawback, Rule: "a paid reward whose cause was reversed is clawed back from the next payout",
			Inputs:  map[string]string{"reversed_amount": money.Format(l.amount, l.currency), "reason": why},
			Formula: fmt.Sprintf("-1 × %d", l.amount), Exact: fmt.Sprint(-l.amount), Rounding: money.Rounding, Amount: -l.amount, Currency: l.currency}
		if _, err := s.insertReward(ctx, q, newReward{companyID: companyID, partnershipID: l.partnershipID, customerID: l.customerID,
			reversesID: &reverses, source: SourceClawback, dedupe: &dedupe, amount: -l.amount, currency: l.currency,
			description: "Clawback: " + why, status: StatusApproved, explanation: ex, readyAt: now, at: now}); err != nil {
			return err
		}
	}
	return nil
}

// archiveReward removes an unpaid reward from totals, and from the unpaid
// payout it sits in, if any.
func (s *Service) archiveReward(ctx context.Context, q store.Querier, companyID, id, amount int64, payoutID *int64, now int64) error {
	if _, err := q.Exec(ctx, "UPDATE rewards SET archived = 1, payout_id = NULL, updated_at = ? WHERE id = ?", now, id); err != nil {
		return fmt.Errorf("archive reward: %w", err)
	}
	if payoutID != nil {
		if err := leavePayout(ctx, q, *payoutID, amount, now); err != nil {
			return err
		}
	}
	return outbox.Emit(ctx, q, companyID, outbox.RewardUpdated, outbox.KindReward, id, now)
}

// leavePayout takes a reward's amount out of an unpaid payout.
func leavePayout(ctx context.Context, q store.Querier, payoutID, amount, now int64) error {
	if _, err := q.Exec(ctx, "UPDATE payouts SET amount = amount - ?, reward_count = reward_count - 1, updated_at = ? WHERE id = ?",
		amount, now, payoutID); err != nil {
		return fmt.Errorf("update payout: %w", err)
	}
	return nil
}

// SetRewardStatus approves or declines a reward. Paid rewards are
// immutable; declining a reward takes it out of its unpaid payout.
func (s *Service) SetRewardStatus(ctx context.Context, p program.Principal, key, status string, reason *string) (Reward, error) {
	if status == StatusDeclined && (reason == nil || strings.TrimSpace(*reason) == "") {
		return Reward{}, errs.E(errs.Invalid, "'reason' is required to decline a reward")
	}
	var out Reward
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		var id, amount int64
		var cur string
		var archived bool
		var payoutID *int64
		err := tx.QueryRow(ctx, "SELECT id, amount, status, archived, payout_id FROM rewards WHERE company_id = ? AND key = ?",
			p.CompanyID, key).Scan(&id, &amount, &cur, &archived, &payoutID)
		if errors.Is(err, sql.ErrNoRows) {
			return errs.E(errs.NotFound, "reward not found")
		}
		if err != nil {
			return fmt.Errorf("find reward: %w", err)
		}
		switch {
		case cur == StatusPaid:
			return errs.E(errs.Conflict, "reward %s is paid; paid rewards cannot change (a reversal claws it back instead)", key)
		case archived:
			return errs.E(errs.Conflict, "reward %s was reversed and cannot change", key)
		}
		now := s.now()
		if status == StatusDeclined {
			if _, err := tx.Exec(ctx, "UPDATE rewards SET status = ?, decline_reason = ?, payout_id = NULL, updated_at = ? WHERE id = ?",
				status, strings.TrimSpace(*reason), now, id); err != nil {
				return fmt.Errorf("decline reward: %w", err)
			}
			if payoutID != nil {
				if err := leavePayout(ctx, tx, *payoutID, amount, now); err != nil {
					return err
				}
			}
		} else if _, err := tx.Exec(ctx, "UPDATE rewards SET status = ?, decline_reason = NULL, ready_at = CASE WHEN ready_at > ? THEN ? ELSE ready_at END, updated_at = ? WHERE id = ?",
			status, now, now, now, id); err != nil {
			return fmt.Errorf("approve reward: %w", err)
		}
		if cur != status {
			if err := outbox.Emit(ctx, tx, p.CompanyID, outbox.RewardUpdated, outbox.KindReward, id, now); err != nil {
				return err
			}
		}
		out, err = s.rewardBy(ctx, tx, p, "r.id = ?", id)
		return err
	})
	return out, err
}

// ApprovePending moves rewards whose hold period is over from pending to
// approved. It runs on a timer and before every payout run.
func (s *Service) ApprovePending(ctx context.Context, q store.Querier) (int64, error) {
	now := s.now()
	rows, err := q.Query(ctx, "SELECT id, company_id FROM rewards WHERE status = ? AND ready_at <= ? AND archived = 0", StatusPending, now)
	if err != nil {
		return 0, fmt.Errorf("find matured rewards: %w", err)
	}
	type ref struct{ id, company int64 }
	var due []ref
	for rows.Next() {
		var r ref
		if err := rows.Scan(&r.id, &r.company); err != nil {
			rows.Close()
			return 0, fmt.Errorf("scan matured reward: %w", err)
		}
		due = append(due, r)
	}
	rows.Close()
	for _, r := range due {
		res, err := q.Exec(ctx, "UPDATE rewards SET status = ?, updated_at = ? WHERE id = ? AND status = ?", StatusApproved, now, r.id, StatusPending)
		if err != nil {
			return 0, fmt.Errorf("approve matured reward: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			if err := outbox.Emit(ctx, q, r.company, outbox.RewardUpdated, outbox.KindReward, r.id, now); err != nil {
				return 0, err
			}
		}
	}
	return int64(len(due)), nil
}

// ApprovePendingNow is ApprovePending in a transaction of its own.
func (s *Service) ApprovePendingNow(ctx context.Context) (n int64, err error) {
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		n, err = s.ApprovePending(ctx, tx)
		return err
	})
	return n, err
}

// ManualReward is a reward the vendor grants by hand.
type ManualReward struct {
	Amount      int64
	Currency    string
	Description string
	TargetType  string // customer, transaction or partnership
	TargetKey   string
}

// CreateManualReward grants a reward to the partnership behind a target.
// It is approved at once: the vendor made it.
func (s *Service) CreateManualReward(ctx context.Context, p program.Principal, in ManualReward) (Reward, error) {
	cur, err := money.Currency("currency", in.Currency)
	if err != nil {
		return Reward{}, err
	}
	if in.Amount == 0 {
		return Reward{}, errs.E(errs.Invalid, "'amount' must not be 0")
	}
	if err := money.Amount("amount", in.Amount); err != nil {
		return Reward{}, err
	}
	var out Reward
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		now := s.now()
		r := newReward{companyID: p.CompanyID, source: SourceManual, amount: in.Amount, currency: cur, description: in.Description,
			status: StatusApproved, readyAt: now, at: now}
		var test bool
		switch in.TargetType {
		case "customer":
			cu, err := s.program.ResolveCustomer(ctx, tx, p, program.CustomerRef{Key: in.TargetKey})
			if err != nil {
				return errs.E(errs.Invalid, "'target.key' does not match any customer in this program: %s", in.TargetKey)
			}
			id := cu.ID
			r.partnershipID, r.customerID, test = cu.PartnershipID, &id, cu.Test
		case "transaction":
			t, err := s.txBy(ctx, tx, p, "t.key = ?", in.TargetKey)
			if err != nil {
				return errs.E(errs.Invalid, "'target.key' does not match any transaction in this program: %s", in.TargetKey)
			}
			if t.Archived {
				return errs.E(errs.Invalid, "transaction %s is deleted and cannot be rewarded", in.TargetKey)
			}
			tid, cid := t.ID, t.CustomerID
			r.partnershipID, r.customerID, r.transactionID, test = t.PartnershipID, &cid, &tid, t.Test
		case "partnership":
			pt, err := s.program.GetPartnership(ctx, p, in.TargetKey)
			if err != nil {
				return errs.E(errs.Invalid, "'target.key' does not match any partnership in this program: %s", in.TargetKey)
			}
			r.partnershipID, test = pt.ID, pt.Test
		default:
			return errs.E(errs.Invalid, "'target.type' must be one of customer, transaction, partnership")
		}
		if p.Test && !test {
			return errs.E(errs.Invalid, "test keys can only reward test data")
		}
		r.test = test || p.Test
		r.explanation = Explanation{Source: SourceManual, Rule: "granted by the vendor", Inputs: map[string]string{"description": in.Description},
			Formula: fmt.Sprintf("%d (manual, minor units of %s)", in.Amount, cur), Exact: fmt.Sprint(in.Amount), Rounding: "none: entered in minor units",
			Amount: in.Amount, Currency: cur}
		id, err := s.insertReward(ctx, tx, r)
		if err != nil {
			return err
		}
		out, err = s.rewardBy(ctx, tx, p, "r.id = ?", id)
		return err
	})
	return out, err
}

// RewardFilter narrows a reward list.
type RewardFilter struct {
	Status          string
	CustomerKey     string
	GroupKey        string
	PartnerKey      string
	PartnershipKey  string
	TransactionKey  string
	PayoutKey       string
	LeadKey         string
	DealKey         string
	IncludeArchived bool
}

// ListRewards lists rewards the principal may see.
func (s *Service) ListRewards(ctx context.Context, p program.Principal, f RewardFilter, page store.Page) ([]Reward, store.Result, error) {
	spec := p.List(rewardCols, rewardFrom, "r", "r.partnership_id")
	if f.Status != "" {
		switch f.Status {
		case StatusHold, StatusPending, StatusApproved, StatusDeclined, StatusPaid:
		default:
			return nil, store.Result{}, errs.E(errs.Invalid, "'status' must be one of hold, pending, approved, declined, paid")
		}
		spec.Where("r.status = ?", f.Status)
	}
	if f.CustomerKey != "" {
		spec.WhereRefAny("r.customer_id", "customers", []string{"key", "customer_key"}, p.CompanyID, f.CustomerKey)
	}
	spec.WhereSet("g.key = ?", f.GroupKey)
	spec.WhereRef("r.partnership_id", "partnerships", "partner_key", p.CompanyID, f.PartnerKey)
	spec.WhereRef("r.partnership_id", "partnerships", "key", p.CompanyID, f.PartnershipKey)
	spec.WhereRef("r.transaction_id", "transactions", "key", p.CompanyID, f.TransactionKey)
	spec.WhereRef("r.payout_id", "payouts", "key", p.CompanyID, f.PayoutKey)
	spec.WhereRef("r.lead_id", "leads", "key", p.CompanyID, f.LeadKey)
	spec.WhereRef("r.deal_id", "deals", "key", p.CompanyID, f.DealKey)
	if !f.IncludeArchived {
		spec.Where("r.archived = 0")
	}
	page.Apply(&spec, "r")
	return store.List(ctx, s.db, spec, scanReward)
}
