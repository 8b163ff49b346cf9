package ledger

import (
	"context"
	"fmt"

	"github.com/partnerd/partnerd/internal/store"
)

// Leads and deals earn through the same engine as every other cause. A
// lead's cause is its approval and a deal's its win; each approval (win)
// is numbered, so a lead approved, un-approved and approved again has been
// two causes, the first reversed. The pipeline calls Settle after every
// change in the transaction that makes it, so that the rewards always
// match the object: created when it is approved (won), updated while unpaid
// when its amount changes, and reversed when it stops being approved (won)
// or is archived (unpaid rewards archived, paid ones clawed back).

// pipelineSource describes how a lead or a deal is read as a cause.
type pipelineSource struct {
	kind  string // TriggerLead or TriggerDeal
	table string // leads or deals
	col   string // the rewards column naming it
	noun  string
	query string // the columns load scans, FROM and the joins
}

var leadSource = pipelineSource{kind: TriggerLead, table: "leads", col: "lead_id", noun: "lead",
	query: `SELECT x.id, x.key, x.partnership_id, x.group_id, x.test, x.archived, p.archived, p.email, x.amount, x.currency,
		x.approved, x.approvals, COALESCE(x.approved_at, x.created_at) FROM leads x JOIN partnerships p ON p.id = x.partnership_id`}

// A deal with no partnership (a vendor's own) has nobody to pay: the inner
// join leaves it out.
var dealSource = pipelineSource{kind: TriggerDeal, table: "deals", col: "deal_id", noun: "deal",
	query: `SELECT x.id, x.key, x.partnership_id, x.group_id, x.test, x.archived, p.archived, p.email, x.amount, x.currency,
		CASE WHEN x.outcome = 'won' THEN 1 ELSE 0 END, x.wins, COALESCE(x.won_at, x.created_at) FROM deals x
		JOIN partnerships p ON p.id = x.partnership_id`}

// pipelineCause is a lead or deal read as a cause, with its key for
// messages.
type pipelineCause struct {
	cause
	key string
}

func (src pipelineSource) load(ctx context.Context, q store.Querier, cond string, args ...any) ([]pipelineCause, error) {
	rows, err := q.Query(ctx, src.query+" WHERE "+cond+" ORDER BY x.id", args...)
	if err != nil {
		return nil, fmt.Errorf("load %ss: %w", src.noun, err)
	}
	defer rows.Close()
	var out []pipelineCause
	for rows.Next() {
		pc := pipelineCause{cause: cause{kind: src.kind}}
		c := &pc.cause
		var amount *int64
		var reached bool
		if err := rows.Scan(&c.id, &pc.key, &c.partnershipID, &c.groupID, &c.test, &c.archived, &c.partnerGone, &c.partnerEmail,
			&amount, &c.currency, &reached, &c.round, &c.createdAt); err != nil {
			return nil, fmt.Errorf("scan %s: %w", src.noun, err)
		}
		if amount != nil {
			c.amount = *amount
		}
		if !reached {
			if src.kind == TriggerLead {
				c.idle, c.idleWhy = WhyNotApproved, "the lead is not approved"
			} else {
				c.idle, c.idleWhy = WhyNotWon, "the deal is not at a won stage"
			}
		}
		out = append(out, pc)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load %ss: %w", src.noun, err)
	}
	return out, nil
}

// SettleLead makes a lead's offer rewards match the lead as q sees it.
func (s *Service) SettleLead(ctx context.Context, q store.Querier, companyID, leadID int64) error {
	return s.settle(ctx, q, companyID, leadSource, leadID)
}

// SettleDeal makes a deal's offer rewards match the deal as q sees it.
func (s *Service) SettleDeal(ctx context.Context, q store.Querier, companyID, dealID int64) error {
	return s.settle(ctx, q, companyID, dealSource, dealID)
}

func (s *Service) settle(ctx context.Context, q store.Querier, companyID int64, src pipelineSource, id int64) error {
	found, err := src.load(ctx, q, "x.id = ? AND x.company_id = ?", id, companyID)
	if err != nil || len(found) == 0 {
		return err // a partnerless deal earns nothing and has nothing to reverse
	}
	pc := found[0]
	switch {
	case pc.test:
		return nil // test data never earns
	case pc.archived:
		return s.reverse(ctx, q, companyID, src.col, id, src.noun+" "+pc.key+" was deleted")
	case pc.idle != "":
		why := "lead " + pc.key + " is no longer approved"
		if src.kind == TriggerDeal {
			why = "deal " + pc.key + " left its won stage"
		}
		return s.reverse(ctx, q, companyID, src.col, id, why)
	}
	offers, err := s.activeOffers(ctx, q, companyID, src.kind)
	if err != nil || len(offers) == 0 {
		return err // with no live offer there is nothing to earn or update
	}
	have, imported, err := pipelineRewards(ctx, q, src.col, id, offers)
	if err != nil || imported {
		// A lead or deal whose rewards were imported (a migration's
		// history) is paid by them: an offer paying again would pay twice.
		return err
	}
	var res RecomputeResult
	return s.reconcile(ctx, q, companyID, offers, []cause{pc.cause}, have, &res)
}

// pipelineRewards reads a lead's (deal's) offer rewards, keeping only
// those of live offers: a change to the object settles what today's offers
// pay, and leaves alone what an archived offer paid (its rewards stay, as
// they do for every cause). imported tells whether it has live imported
// rewards.
func pipelineRewards(ctx context.Context, q store.Querier, col string, id int64, offers []Offer) (map[string]existing, bool, error) {
	live := make(map[int64]bool, len(offers))
	for _, o := range offers {
		live[o.ID] = true
	}
	rows, err := q.Query(ctx, `SELECT id, dedupe, amount, currency, explanation, status, archived, payout_id, source, offer_id FROM rewards
		WHERE `+col+` = ? AND source IN (?, ?)`, id, SourceOffer, SourceImport)
	if err != nil {
		return nil, false, fmt.Errorf("load rewards: %w", err)
	}
	defer rows.Close()
	have := map[string]existing{}
	imported := false
	for rows.Next() {
		var e existing
		var dedupe *string
		var source string
		var offerID *int64
		if err := rows.Scan(&e.id, &dedupe, &e.amount, &e.currency, &e.explanation, &e.status, &e.archived, &e.payoutID, &source, &offerID); err != nil {
			return nil, false, fmt.Errorf("scan reward: %w", err)
		}
		switch {
		case source == SourceImport:
			imported = imported || !e.archived
		case dedupe != nil && offerID != nil && live[*offerID]:
			have[*dedupe] = e
		}
	}
	return have, imported, rows.Err()
}

// recomputePipeline handles one chunk of leads (or deals) after id
// `after`, and returns the last id it handled.
func (s *Service) recomputePipeline(ctx context.Context, companyID int64, src pipelineSource, offers []Offer, after int64, res *RecomputeResult) (int64, error) {
	last := after
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		// The chunk's end comes from the table itself, so that a chunk of
		// partnerless deals (which load leaves out) still advances.
		if err := tx.QueryRow(ctx, "SELECT COALESCE(MAX(id), ?) FROM (SELECT id FROM "+src.table+
			" WHERE company_id = ? AND id > ? ORDER BY id LIMIT ?) chunk", after, companyID, after, recomputeChunk).Scan(&last); err != nil {
			return fmt.Errorf("chunk %ss: %w", src.noun, err)
		}
		if last == after {
			return nil
		}
		found, err := src.load(ctx, tx, "x.company_id = ? AND x.id > ? AND x.id <= ?", companyID, after, last)
		if err != nil {
			return err
		}
		paid, err := importedPaid(ctx, tx, src.col, src.col+" > ? AND "+src.col+" <= ?", after, last)
		if err != nil {
			return err
		}
		causes := make([]cause, 0, len(found))
		for _, pc := range found {
			if !paid[pc.id] {
				causes = append(causes, pc.cause)
			}
		}
		have, err := loadExisting(ctx, tx, `SELECT id, dedupe, amount, currency, explanation, status, archived, payout_id FROM rewards
			WHERE company_id = ? AND source = ? AND `+src.col+` > ? AND `+src.col+` <= ?`, companyID, SourceOffer, after, last)
		if err != nil {
			return err
		}
		return s.reconcile(ctx, tx, companyID, offers, causes, have, res)
	})
	return last, err
}

// importedPaid lists the causes (the ids in rewards column col, among those
// cond selects) that have live imported rewards, which stand for what
// their offers would pay.
func importedPaid(ctx context.Context, q store.Querier, col, cond string, args ...any) (map[int64]bool, error) {
	rows, err := q.Query(ctx, "SELECT DISTINCT "+col+" FROM rewards WHERE "+cond+" AND source = ? AND archived = 0",
		append(args, SourceImport)...)
	if err != nil {
		return nil, fmt.Errorf("find imported rewards: %w", err)
	}
	defer rows.Close()
	out := map[int64]bool{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("scan imported reward: %w", err)
		}
		out[id] = true
	}
	return out, rows.Err()
}
