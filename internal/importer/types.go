package importer

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/partnerd/partnerd/internal/errs"
	"github.com/partnerd/partnerd/internal/ledger"
	"github.com/partnerd/partnerd/internal/pipeline"
	"github.com/partnerd/partnerd/internal/program"
	"github.com/partnerd/partnerd/internal/store"
)

// kind is one importable object type: the columns it reads, how a row
// becomes the domain's input, and how a batch of inputs is written.
type kind struct {
	name   string
	fields []field
	parse  func(r *row) any
	write  func(ctx context.Context, b *batch) error
}

// item is a parsed row waiting in a batch, and then what became of it.
type item struct {
	row     *row
	in      any
	outcome program.Outcome
}

// batch is a set of parsed rows written in one database transaction.
type batch struct {
	s     *Service
	tx    *store.Tx
	p     program.Principal
	opts  Options
	cache *ledger.CustomerCache
	items []*item
}

// each writes the batch's rows one at a time.
func (b *batch) each(ctx context.Context, fn func(it *item) (program.Outcome, error)) error {
	for _, it := range b.items {
		out, err := fn(it)
		switch {
		case err == nil:
			it.outcome = out
		case errs.CodeOf(err) == errs.Internal:
			return fmt.Errorf("line %d: %w", it.row.line, err)
		default:
			it.row.domainError(err)
		}
	}
	return nil
}

// Kinds that can be imported, by name.
var kinds = map[string]*kind{}

func init() {
	for _, k := range []*kind{groupKind, partnerKind, customerKind, transactionKind, leadKind, dealKind, rewardKind} {
		kinds[k.name] = k
	}
}

// Types lists the importable types in the order a program's files should
// be imported: each may refer to the ones before it (rewards name the
// leads and deals that earned them).
func Types() []string {
	return []string{"groups", "partners", "customers", "transactions", "leads", "deals", "rewards"}
}

func lookupKind(name string) (*kind, error) {
	if k, ok := kinds[name]; ok {
		return k, nil
	}
	return nil, errs.E(errs.Invalid, "'type' must be one of %s: %q", strings.Join(Types(), ", "), name)
}

var groupKind = &kind{
	name: "groups",
	fields: []field{
		{name: "key", aliases: []string{"group_key"}},
		{name: "name", aliases: []string{"group_name", "group"}, required: true},
		{name: "features"},
		{name: "default", aliases: []string{"is_default"}}, // exported for reading; the default group is the program's own
		{name: "archived"},
		{name: "created_at"},
		{name: "deal_stages"},
	},
	parse: func(r *row) any {
		in := groupRow{GroupImport: program.GroupImport{Key: r.str("key"), Name: r.raw("name"), Features: r.object("features"),
			Archived: r.bool("archived"), CreatedAt: r.time("created_at")}, stages: r.array("deal_stages")}
		r.bool("default")
		if strings.TrimSpace(in.Name) == "" {
			r.fail("name", "is required")
		}
		return in
	},
	write: func(ctx context.Context, b *batch) error {
		return b.each(ctx, func(it *item) (program.Outcome, error) {
			in := it.in.(groupRow)
			out, err := b.s.prog.ImportGroup(ctx, b.tx, b.p, in.GroupImport)
			if err != nil {
				return out, err
			}
			changed, err := b.s.pipe.ImportDealStages(ctx, b.tx, b.p, in.Key, in.Name, in.stages)
			if changed && out == program.Unchanged {
				out = program.Updated
			}
			return out, err
		})
	},
}

// groupRow is a group with the deal stages the row gives it.
type groupRow struct {
	program.GroupImport
	stages json.RawMessage
}

var leadKind = &kind{
	name: "leads",
	fields: []field{
		{name: "key", aliases: []string{"lead_key", "lead_id"}},
		{name: "external_key", aliases: []string{"lead_email"}},
		{name: "partner_key", required: true},
		{name: "group_key"},
		{name: "amount", aliases: []string{"amount_cents", "amount_minor"}},
		{name: "currency"},
		{name: "approved"},
		{name: "status", aliases: []string{"lead_status"}},
		{name: "fields"},
		{name: "meta", aliases: []string{"field_data"}},
		{name: "customer", aliases: []string{"customer_key"}},
		{name: "test"},
		{name: "archived"},
		{name: "created_at"},
		{name: "history"},
	},
	parse: func(r *row) any {
		in := pipeline.LeadImport{Key: r.str("key"), ExternalKey: r.str("external_key"), PartnerKey: r.str("partner_key"),
			GroupKey: r.str("group_key"), Amount: r.int("amount"), Currency: strings.ToUpper(r.str("currency")), Approved: r.bool("approved"),
			Status: strings.ToLower(r.str("status")), Fields: r.array("fields"), Meta: r.object("meta"), Customer: r.str("customer"),
			Archived: r.bool("archived"), CreatedAt: r.time("created_at"), History: r.array("history")}
		r.flag("test") // a lead is test data when its partner is
		if in.Key == "" && in.ExternalKey == "" {
			r.fail("key", "a lead needs a key or an external_key: it is what makes importing the same file twice safe")
		}
		if in.PartnerKey == "" {
			r.fail("partner_key", "is required")
		}
		return in
	},
	write: func(ctx context.Context, b *batch) error {
		return b.each(ctx, func(it *item) (program.Outcome, error) {
			return b.s.pipe.ImportLead(ctx, b.tx, b.p, it.in.(pipeline.LeadImport), !b.opts.NoRewards)
		})
	},
}

var dealKind = &kind{
	name: "deals",
	fields: []field{
		{name: "key", aliases: []string{"deal_key", "deal_id"}},
		{name: "external_key"},
		{name: "source"},
		{name: "partner_key"},
		{name: "group_key"},
		{name: "account_name", aliases: []string{"account", "company_name"}},
		{name: "amount", aliases: []string{"amount_cents", "amount_minor", "deal_amount"}},
		{name: "currency"},
		{name: "close_date"},
		{name: "contact_first_name"},
		{name: "contact_last_name"},
		{name: "stage", aliases: []string{"deal_stage"}},
		{name: "lost_reason"},
		{name: "fields"},
		{name: "meta", aliases: []string{"field_data"}},
		{name: "customer", aliases: []string{"customer_key"}},
		{name: "test"},
		{name: "archived"},
		{name: "won_at"},
		{name: "created_at"},
		{name: "history"},
	},
	parse: func(r *row) any {
		in := pipeline.DealImport{Key: r.str("key"), ExternalKey: r.str("external_key"), Source: strings.ToLower(r.str("source")),
			PartnerKey: r.str("partner_key"), GroupKey: r.str("group_key"), AccountName: r.raw("account_name"),
			ContactFirstName: r.raw("contact_first_name"), ContactLastName: r.raw("contact_last_name"), Amount: r.int("amount"),
			Currency: strings.ToUpper(r.str("currency")), CloseDate: r.str("close_date"), Stage: r.str("stage"),
			LostReason: r.raw("lost_reason"), Fields: r.array("fields"), Meta: r.object("meta"), Customer: r.str("customer"),
			Archived: r.bool("archived"), WonAt: r.time("won_at"), CreatedAt: r.time("created_at"), History: r.array("history")}
		r.flag("test") // a deal is test data when its partner is
		if in.Key == "" && in.ExternalKey == "" {
			r.fail("key", "a deal needs a key or an external_key: it is what makes importing the same file twice safe")
		}
		return in
	},
	write: func(ctx context.Context, b *batch) error {
		return b.each(ctx, func(it *item) (program.Outcome, error) {
			return b.s.pipe.ImportDeal(ctx, b.tx, b.p, it.in.(pipeline.DealImport), !b.opts.NoRewards)
		})
	},
}

var partnerKind = &kind{
	name: "partners",
	fields: []field{
		{name: "key", aliases: []string{"partnership_key"}},
		{name: "partner_key"},
		{name: "email", aliases: []string{"partner_email"}, required: true},
		{name: "first_name", aliases: []string{"partner_first", "first"}},
		{name: "last_name", aliases: []string{"partner_last", "last"}},
		{name: "group_key"},
		{name: "group", aliases: []string{"partner_group", "group_name"}},
		{name: "manager_email"},
		{name: "manager_name"},
		{name: "tags"},
		{name: "fields"},
		{name: "meta", aliases: []string{"field_data"}},
		{name: "test"},
		{name: "archived"},
		{name: "joined_at", aliases: []string{"partner_joined_date", "joined_date", "joined"}},
		{name: "created_at"},
	},
	parse: func(r *row) any {
		in := program.PartnershipImport{Key: r.str("key"), PartnerKey: r.str("partner_key"), Email: r.str("email"),
			FirstName: r.opt("first_name"), LastName: r.opt("last_name"), GroupKey: r.str("group_key"), GroupName: r.str("group"),
			ManagerEmail: r.opt("manager_email"), ManagerName: r.opt("manager_name"), Tags: r.tags("tags"),
			Fields: r.array("fields"), Meta: r.object("meta"), Test: r.flag("test"), Archived: r.bool("archived"),
			JoinedAt: r.time("joined_at"), CreatedAt: r.time("created_at")}
		if in.Email == "" {
			r.fail("email", "is required")
		}
		return in
	},
	write: func(ctx context.Context, b *batch) error {
		return b.each(ctx, func(it *item) (program.Outcome, error) {
			return b.s.prog.ImportPartnership(ctx, b.tx, b.p, it.in.(program.PartnershipImport))
		})
	},
}

var customerKind = &kind{
	name: "customers",
	fields: []field{
		{name: "key", aliases: []string{"customer"}},
		{name: "customer_key", aliases: []string{"external_key", "customer_external_key"}},
		{name: "email", aliases: []string{"customer_email"}},
		{name: "name", aliases: []string{"customer_name"}},
		{name: "partner_key"},
		{name: "provider_key"},
		{name: "source_type"},
		{name: "meta"},
		{name: "sub_ids"},
		{name: "test"},
		{name: "archived"},
		{name: "created_at"},
	},
	parse: func(r *row) any {
		in := program.CustomerImport{Key: r.str("key"), CustomerKey: r.str("customer_key"), Email: r.str("email"), Name: r.opt("name"),
			PartnerKey: r.str("partner_key"), ProviderKey: r.opt("provider_key"), SourceType: r.str("source_type"),
			Meta: r.object("meta"), SubIDs: r.object("sub_ids"), Test: r.flag("test"), Archived: r.bool("archived"),
			CreatedAt: r.time("created_at")}
		if in.Key == "" && in.CustomerKey == "" && in.Email == "" {
			r.fail("customer_key", "a customer needs a customer_key, a key or an email")
		}
		return in
	},
	write: func(ctx context.Context, b *batch) error {
		hook := b.s.hooks.Signup
		if b.opts.NoRewards {
			hook = b.s.hooks.NoRewards
		}
		return b.each(ctx, func(it *item) (program.Outcome, error) {
			return b.s.prog.ImportCustomer(ctx, b.tx, b.p, it.in.(program.CustomerImport), hook)
		})
	},
}

// customerRef reads the columns that name a customer, most specific first.
func customerRef(r *row) program.CustomerRef {
	switch {
	case r.str("customer") != "":
		return program.CustomerRef{Key: r.str("customer")}
	case r.str("customer_key") != "":
		return program.CustomerRef{Key: r.str("customer_key")}
	case r.str("customer_external_key") != "":
		return program.CustomerRef{ExternalKey: r.str("customer_external_key")}
	case r.str("customer_email") != "":
		return program.CustomerRef{Email: r.str("customer_email")}
	}
	return program.CustomerRef{}
}

var keyRequired = "is required: it is what makes importing the same file twice safe (use the id your billing system gave it, or number the rows)"

var transactionKind = &kind{
	name: "transactions",
	fields: []field{
		{name: "key", aliases: []string{"transaction_key", "transaction_id", "id"}, required: true},
		{name: "customer", aliases: []string{"customer_internal_key"}},
		{name: "customer_key"},
		{name: "customer_external_key", aliases: []string{"external_key"}},
		{name: "customer_email"},
		{name: "partner_key"},
		{name: "amount", aliases: []string{"amount_cents", "amount_minor"}, required: true},
		{name: "currency"},
		{name: "category_key", aliases: []string{"category"}},
		{name: "product_key", aliases: []string{"product"}},
		{name: "metadata", aliases: []string{"meta"}},
		{name: "test"},
		{name: "archived"},
		{name: "created_at", aliases: []string{"date", "transaction_date"}},
	},
	parse: func(r *row) any {
		in := ledger.TransactionImport{Key: r.str("key"), Customer: customerRef(r), PartnerKey: r.str("partner_key"),
			Currency: r.str("currency"), CategoryKey: r.opt("category_key"), ProductKey: r.opt("product_key"),
			Metadata: r.object("metadata"), Test: r.flag("test"), Archived: r.flag("archived"), CreatedAt: r.time("created_at")}
		if in.Key == "" {
			r.fail("key", "%s", keyRequired)
		}
		if a := r.int("amount"); a != nil {
			in.Amount = *a
		} else if r.str("amount") == "" {
			r.fail("amount", "is required")
		}
		if in.Currency == "" {
			in.Currency = "USD"
		}
		if in.Customer == (program.CustomerRef{}) {
			r.fail("customer_key", "a transaction needs its customer: a customer, customer_key, customer_external_key or customer_email column")
		}
		return in
	},
	write: func(ctx context.Context, b *batch) error {
		ins := make([]ledger.TransactionImport, len(b.items))
		for i, it := range b.items {
			ins[i] = it.in.(ledger.TransactionImport)
		}
		res, err := b.s.led.ImportTransactions(ctx, b.tx, b.p, b.cache, ins, !b.opts.NoRewards)
		if err != nil {
			return err
		}
		for i, it := range b.items {
			if res[i].Err != nil {
				it.row.domainError(res[i].Err)
				continue
			}
			it.outcome = res[i].Outcome
		}
		return nil
	},
}

var rewardKind = &kind{
	name: "rewards",
	fields: []field{
		{name: "key", aliases: []string{"reward_key", "reward_id", "id"}, required: true},
		{name: "partner_key"},
		{name: "customer"},
		{name: "customer_key"},
		{name: "customer_external_key"},
		{name: "customer_email"},
		{name: "transaction_key"},
		{name: "reverses_key"},
		{name: "lead_key"},
		{name: "deal_key"},
		{name: "amount", aliases: []string{"amount_cents", "amount_minor"}, required: true},
		{name: "currency"},
		{name: "description"},
		{name: "status"},
		{name: "decline_reason"},
		{name: "hold_reason"},
		{name: "explanation"},
		{name: "ready_at"},
		{name: "source"},
		{name: "offer_key"},
		{name: "payout_key"},
		{name: "test"},
		{name: "archived"},
		{name: "created_at"},
	},
	parse: func(r *row) any {
		in := ledger.RewardImport{Key: r.str("key"), PartnerKey: r.str("partner_key"), Customer: customerRef(r),
			TransactionKey: r.str("transaction_key"), ReversesKey: r.str("reverses_key"), LeadKey: r.str("lead_key"),
			DealKey: r.str("deal_key"), Currency: r.str("currency"),
			Description: r.raw("description"), Status: strings.ToLower(r.str("status")), DeclineReason: r.opt("decline_reason"),
			HoldReason: r.opt("hold_reason"), Explanation: r.object("explanation"), ReadyAt: r.time("ready_at"),
			Source: strings.ToLower(r.str("source")), OfferKey: r.str("offer_key"), PayoutKey: r.str("payout_key"),
			Test: r.flag("test"), Archived: r.flag("archived"), CreatedAt: r.time("created_at")}
		if in.Key == "" {
			r.fail("key", "%s", keyRequired)
		}
		if in.PartnerKey == "" {
			r.fail("partner_key", "is required")
		}
		if a := r.int("amount"); a != nil {
			in.Amount = *a
		} else if r.str("amount") == "" {
			r.fail("amount", "is required")
		}
		if in.Currency == "" {
			in.Currency = "USD"
		}
		return in
	},
	write: func(ctx context.Context, b *batch) error {
		return b.each(ctx, func(it *item) (program.Outcome, error) {
			return b.s.led.ImportReward(ctx, b.tx, b.p, it.in.(ledger.RewardImport))
		})
	},
}

// Columns lists the columns a type reads, each with its accepted aliases,
// for help texts and the docs.
func Columns(typ string) ([]string, error) {
	k, err := lookupKind(typ)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range k.fields {
		s := f.name
		if f.required {
			s += " (required)"
		}
		if len(f.aliases) > 0 {
			a := append([]string(nil), f.aliases...)
			sort.Strings(a)
			s += " — also " + strings.Join(a, ", ")
		}
		out = append(out, s)
	}
	return out, nil
}
