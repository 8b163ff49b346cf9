package ledger

import (
	"fmt"
	"strings"
	"time"

	"github.com/partnerd/partnerd/internal/money"
	"github.com/partnerd/partnerd/internal/program"
)

// The engine is pure: given a cause and the offers live when it happened,
// it says which rewards the cause earns and, for every offer that pays
// nothing, why. The write paths and `rewards recompute` share it, which is
// what makes a recompute of unchanged data change nothing.

// cause is what the engine knows of a sign-up, a transaction or an action.
type cause struct {
	kind          string // TriggerCustomer, TriggerTransaction or TriggerAction
	id            int64
	partnershipID int64
	customerID    *int64
	groupID       int64
	test          bool
	archived      bool
	partnerGone   bool // the partnership is archived
	customerEmail string
	partnerEmail  string
	createdAt     int64

	// transactions
	amount      int64
	currency    string
	productKey  *string
	categoryKey *string
	firstID     int64 // the customer's first positive transaction (by arrival)
	firstAt     int64 // its created_at
	firstKnown  bool  // firstID and firstAt are set (from the customer row)

	// offersVersion, when set, is the company's offers_version read with the
	// customer before the write, so the write need not read it again.
	offersVersion *int64
	rank          int // 1 for the customer's first positive transaction, 0 for a negative one

	// actions
	actionType string
	value      int64

	// leads and deals: round counts the lead's approvals (the deal's wins),
	// so that each approval is a cause of its own; idle is a reason code
	// (with idleWhy) while the lead is not approved or the deal not won.
	round   int
	idle    string
	idleWhy string
}

// Reasons a cause or an offer earns nothing. The codes are stable API.
const (
	WhyTest          = "test_mode"
	WhyDeleted       = "deleted"
	WhyPartnerGone   = "partnership_archived"
	WhyNoOffers      = "no_offers"
	WhyOtherGroup    = "other_group"
	WhyProduct       = "filtered_by_product"
	WhyCategory      = "filtered_by_category"
	WhyActionType    = "filtered_by_action_type"
	WhyNotFirst      = "not_first_transaction"
	WhyOutsideWindow = "outside_recurring_window"
	WhyCapped        = "capped"
	WhyNegativeFlat  = "negative_amount"
	WhyZero          = "rounds_to_zero"
	WhyNotApproved   = "lead_not_approved"
	WhyNotWon        = "deal_not_won"
	WhyNoAmount      = "no_amount"
)

// Explanation is stored with every reward: where it came from and how its
// amount was computed, in enough detail to redo the sum by hand.
type Explanation struct {
	Source   string            `json:"source"` // offer, manual or clawback
	Offer    *OfferRef         `json:"offer,omitempty"`
	Rule     string            `json:"rule"`
	Inputs   map[string]string `json:"inputs"`
	Formula  string            `json:"formula"`
	Exact    string            `json:"exact"`
	Rounding string            `json:"rounding"`
	Amount   int64             `json:"amount"`
	Currency string            `json:"currency"`
}

// OfferRef names an offer inside an explanation.
type OfferRef struct {
	Key  string `json:"key"`
	Name string `json:"name"`
}

// outcome is what one offer made of one cause.
type outcome struct {
	offer  Offer
	reward *draft // nil when the offer pays nothing
	code   string
	reason string
}

// draft is a reward the engine wants to exist.
type draft struct {
	offer       Offer
	dedupe      string
	amount      int64
	currency    string
	explanation Explanation
}

// evaluate applies offers to c. blocked is set (with a reason) when nothing
// about the cause can earn, whatever the offers.
func evaluate(offers []Offer, c cause) (outs []outcome, blocked, why string) {
	switch {
	case c.archived:
		return nil, WhyDeleted, "the " + c.kind + " is deleted; its rewards were reversed"
	case c.test:
		return nil, WhyTest, "test-mode data never earns rewards"
	case c.partnerGone:
		return nil, WhyPartnerGone, "the partnership is archived"
	case c.idle != "":
		return nil, c.idle, c.idleWhy
	}
	for _, o := range offers {
		if o.Trigger != c.kind {
			continue
		}
		outs = append(outs, evaluateOne(o, c))
	}
	if len(outs) == 0 {
		return nil, WhyNoOffers, "no live " + c.kind + " offer in this program"
	}
	return outs, "", ""
}

func evaluateOne(o Offer, c cause) outcome {
	none := func(code, format string, args ...any) outcome {
		return outcome{offer: o, code: code, reason: fmt.Sprintf(format, args...)}
	}
	if o.GroupID != nil && *o.GroupID != c.groupID {
		return none(WhyOtherGroup, "the offer is for group %s; the partnership was in another group when this happened", deref(o.GroupKey))
	}
	ex := Explanation{Source: "offer", Offer: &OfferRef{Key: o.Key, Name: o.Name}, Inputs: map[string]string{}, Rounding: money.Rounding}
	var amount int64
	var currency string
	switch c.kind {
	case TriggerTransaction:
		if o.ProductKey != nil && (c.productKey == nil || *c.productKey != *o.ProductKey) {
			return none(WhyProduct, "the offer is for product %s; the transaction's product is %s", *o.ProductKey, orNone(c.productKey))
		}
		if o.CategoryKey != nil && (c.categoryKey == nil || *c.categoryKey != *o.CategoryKey) {
			return none(WhyCategory, "the offer is for category %s; the transaction's category is %s", *o.CategoryKey, orNone(c.categoryKey))
		}
		if c.amount < 0 && (o.Type == TypeFlat || o.MaxTransactions != nil || (o.DurationMonths != nil && *o.DurationMonths == 0)) {
			return none(WhyNegativeFlat, "a negative transaction reverses only percent offers without a transaction cap; delete the original transaction to reverse this offer's reward")
		}
		if o.DurationMonths != nil {
			if *o.DurationMonths == 0 && c.id != c.firstID {
				return none(WhyNotFirst, "the offer pays on the customer's first transaction only")
			}
			end := time.UnixMilli(c.firstAt).UTC().AddDate(0, *o.DurationMonths, 0).UnixMilli()
			if *o.DurationMonths > 0 && c.createdAt >= end {
				return none(WhyOutsideWindow, "the offer pays for %d months after the customer's first transaction (until %s); this one is dated %s",
					*o.DurationMonths, day(end), day(c.createdAt))
			}
			ex.Inputs["first_transaction_at"] = day(c.firstAt)
		}
		if o.MaxTransactions != nil && c.rank > *o.MaxTransactions {
			return none(WhyCapped, "the offer pays on the customer's first %d transactions; this is number %d", *o.MaxTransactions, c.rank)
		}
		ex.Inputs["transaction_amount"] = money.Format(c.amount, c.currency)
		if o.Type == TypePercent {
			var exact string
			amount, exact = money.Percent(c.amount, o.rate)
			currency = c.currency
			ex.Rule = percentRule(o)
			ex.Inputs["rate"] = *o.Rate + "%"
			ex.Formula = fmt.Sprintf("%d × %s / 100 (minor units of %s)", c.amount, *o.Rate, c.currency)
			ex.Exact = exact
		} else {
			amount, currency = *o.Amount, *o.Currency
			ex.Rule = "a flat " + money.Format(amount, currency) + " per transaction"
			ex.Formula = fmt.Sprintf("%d (flat, minor units of %s)", amount, currency)
			ex.Exact = fmt.Sprint(amount)
		}
	case TriggerCustomer:
		amount, currency = *o.Amount, *o.Currency
		ex.Rule = "a flat " + money.Format(amount, currency) + " per referred customer"
		ex.Formula = fmt.Sprintf("%d (flat, minor units of %s)", amount, currency)
		ex.Exact = fmt.Sprint(amount)
	case TriggerAction:
		if o.ActionType != nil && *o.ActionType != c.actionType {
			return none(WhyActionType, "the offer is for actions of type %s; this one is %s", *o.ActionType, c.actionType)
		}
		amount, currency = *o.Amount*c.value, *o.Currency
		ex.Rule = "a flat " + money.Format(*o.Amount, currency) + " per unit of action value"
		ex.Inputs["action_type"] = c.actionType
		ex.Inputs["value"] = fmt.Sprint(c.value)
		ex.Formula = fmt.Sprintf("%d × %d (minor units of %s)", *o.Amount, c.value, currency)
		ex.Exact = fmt.Sprint(amount)
	case TriggerLead, TriggerDeal:
		what, event := "lead", "approved lead"
		if c.kind == TriggerDeal {
			what, event = "deal", "won deal"
		}
		if o.Type == TypePercent {
			if c.amount <= 0 {
				return none(WhyNoAmount, "the offer pays %s%% of the %s's amount, and the %s has no amount", *o.Rate, what, what)
			}
			var exact string
			amount, exact = money.Percent(c.amount, o.rate)
			currency = c.currency
			ex.Rule = *o.Rate + "% of the amount of each " + event
			ex.Inputs[what+"_amount"] = money.Format(c.amount, c.currency)
			ex.Inputs["rate"] = *o.Rate + "%"
			ex.Formula = fmt.Sprintf("%d × %s / 100 (minor units of %s)", c.amount, *o.Rate, c.currency)
			ex.Exact = exact
		} else {
			amount, currency = *o.Amount, *o.Currency
			ex.Rule = "a flat " + money.Format(amount, currency) + " per " + event
			ex.Formula = fmt.Sprintf("%d (flat, minor units of %s)", amount, currency)
			ex.Exact = fmt.Sprint(amount)
		}
		if c.round > 1 {
			ex.Inputs["round"] = fmt.Sprint(c.round)
		}
	}
	if amount == 0 {
		return none(WhyZero, "the computed reward, %s, rounds to zero", ex.Exact)
	}
	ex.Amount, ex.Currency = amount, currency
	return outcome{offer: o, reward: &draft{offer: o, dedupe: dedupeKey(o.ID, c), amount: amount, currency: currency, explanation: ex}}
}

// dedupeKey names what an offer paid for: the cause, and for a lead or a
// deal which of its approvals or wins.
func dedupeKey(offerID int64, c cause) string {
	if c.kind == TriggerLead || c.kind == TriggerDeal {
		return fmt.Sprintf("o%d:%c%d#%d", offerID, c.kind[0], c.id, c.round)
	}
	return fmt.Sprintf("o%d:%c%d", offerID, c.kind[0], c.id)
}

func percentRule(o Offer) string {
	r := *o.Rate + "% of each transaction"
	switch {
	case o.DurationMonths == nil:
		r += " for the customer's lifetime"
	case *o.DurationMonths == 0:
		r = *o.Rate + "% of the customer's first transaction"
	default:
		r += fmt.Sprintf(" for %d months after the customer's first transaction", *o.DurationMonths)
	}
	if o.MaxTransactions != nil {
		r += fmt.Sprintf(", at most %d transactions", *o.MaxTransactions)
	}
	return r
}

func orNone(s *string) string {
	if s == nil {
		return "(none)"
	}
	return *s
}

func day(ms int64) string { return time.UnixMilli(ms).UTC().Format("2006-01-02") }

// selfReferral says why a reward for c looks like the partner referring
// itself, or "" when it does not.
func selfReferral(c cause) string {
	ce, pe := strings.ToLower(c.customerEmail), strings.ToLower(c.partnerEmail)
	if ce == "" || pe == "" {
		return ""
	}
	if ce == pe {
		return "self-referral: the customer's email is the partner's"
	}
	cd, pd := ce[strings.LastIndex(ce, "@")+1:], pe[strings.LastIndex(pe, "@")+1:]
	if cd == pd && !program.PublicMailDomain(cd) {
		return "self-referral: the customer's email shares the partner's domain " + cd
	}
	return ""
}
