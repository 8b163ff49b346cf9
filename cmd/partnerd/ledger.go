package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"

	"github.com/partnerd/partnerd/internal/app"
	"github.com/partnerd/partnerd/internal/ledger"
	"github.com/partnerd/partnerd/internal/program"
	"github.com/partnerd/partnerd/internal/store"
)

// openCompany opens the database and finds the company a command is for.
func openCompany(ctx context.Context, db, key string) (*app.App, program.Principal, error) {
	if key == "" {
		return nil, program.Principal{}, errors.New("--company is required")
	}
	a, err := openQuiet(ctx, db)
	if err != nil {
		return nil, program.Principal{}, err
	}
	c, err := a.Program.CompanyByKey(ctx, key)
	if err != nil {
		a.Close()
		return nil, program.Principal{}, err
	}
	return a, program.Principal{CompanyID: c.ID, CompanyKey: c.Key, CompanyName: c.Name}, nil
}

func offerCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) >= 1 && args[0] == "create" {
		return offerCreate(ctx, args[1:], stdout, stderr)
	}
	if len(args) >= 1 && args[0] == "list" {
		return offerList(ctx, args[1:], stdout, stderr)
	}
	fmt.Fprint(stderr, "usage: partnerd offer create|list --company KEY [flags]\n")
	return errors.New("unknown offer command")
}

func offerCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, db := newFlags("offer create --company KEY --name NAME --trigger T --type percent|flat [flags]",
		"Creates an offer. Percent offers take --rate (transactions only); flat offers take --amount (minor units) and --currency.", stderr)
	company := fs.String("company", "", "company key (required)")
	in := ledger.OfferInput{Set: map[string]bool{}}
	str := func(name, usage string) *string { return fs.String(name, "", usage) }
	name, trigger, typ := str("name", "offer name (required)"), str("trigger", "customer, transaction, action, lead_approved or deal_won (required)"), str("type", "percent or flat (required)")
	rate, currency := str("rate", "percent rate, a decimal such as 12.5"), str("currency", "flat offers: ISO 4217 currency")
	amount := str("amount", "flat offers: amount in minor units (cents)")
	duration := str("duration-months", "transaction offers: 0 = first transaction only, N months, empty = lifetime")
	maxTx := str("max-transactions", "transaction offers: only the customer's first N transactions earn")
	product, category, action := str("product-key", "only transactions of this product"), str("category-key", "only transactions of this category"), str("action-type", "only actions of this type")
	hold := str("hold-days", "days a reward stays pending before it is approved")
	group := str("group-key", "only partnerships in this group (empty = every group)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	set := func(field string, v *string) *string {
		if *v == "" {
			return nil
		}
		in.Set[field] = true
		return v
	}
	num := func(field string, v *string) (*int64, error) {
		if *v == "" {
			return nil, nil
		}
		n, err := strconv.ParseInt(*v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("--%s must be an integer: %q", field, *v)
		}
		in.Set[map[string]string{"amount": "amount", "duration-months": "duration_months", "max-transactions": "max_transactions", "hold-days": "hold_days"}[field]] = true
		return &n, nil
	}
	toInt := func(v *int64) *int {
		if v == nil {
			return nil
		}
		n := int(*v)
		return &n
	}
	in.Name, in.Trigger, in.Type = set("name", name), set("trigger", trigger), set("type", typ)
	in.Rate, in.Currency = set("rate", rate), set("currency", currency)
	in.ProductKey, in.CategoryKey, in.ActionType, in.GroupKey = set("product_key", product), set("category_key", category), set("action_type", action), set("group_key", group)
	var err error
	if in.Amount, err = num("amount", amount); err != nil {
		return err
	}
	var d, m, h *int64
	if d, err = num("duration-months", duration); err != nil {
		return err
	}
	if m, err = num("max-transactions", maxTx); err != nil {
		return err
	}
	if h, err = num("hold-days", hold); err != nil {
		return err
	}
	in.DurationMonths, in.MaxTransactions, in.HoldDays = toInt(d), toInt(m), toInt(h)
	a, p, err := openCompany(ctx, *db, *company)
	if err != nil {
		fs.Usage()
		return err
	}
	defer a.Close()
	o, err := a.Ledger.CreateOffer(ctx, p, in)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, o.Key)
	return nil
}

func offerList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, db := newFlags("offer list --company KEY", "Lists a company's live offers.", stderr)
	company := fs.String("company", "", "company key (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	a, p, err := openCompany(ctx, *db, *company)
	if err != nil {
		return err
	}
	defer a.Close()
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tNAME\tTRIGGER\tTYPE\tRATE/AMOUNT\tGROUP\tHOLD DAYS")
	page := store.Page{Limit: 250, OrderBy: "created_at"}
	for {
		offers, res, err := a.Ledger.ListOffers(ctx, p, false, page)
		if err != nil {
			return err
		}
		for _, o := range offers {
			what := ""
			if o.Rate != nil {
				what = *o.Rate + "%"
			} else if o.Amount != nil {
				what = fmt.Sprintf("%d %s", *o.Amount, *o.Currency)
			}
			group := "all"
			if o.GroupKey != nil {
				group = *o.GroupKey
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\n", o.Key, o.Name, o.Trigger, o.Type, what, group, o.HoldDays)
		}
		if !res.HasMore || len(offers) == 0 {
			break
		}
		page.After = offers[len(offers)-1].Key
	}
	return tw.Flush()
}

func payoutsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "run" && args[0] != "export") {
		fmt.Fprint(stderr, "usage: partnerd payouts run|export --company KEY --period YYYY-MM\n")
		return errors.New("unknown payouts command")
	}
	fs, db := newFlags("payouts "+args[0]+" --company KEY --period YYYY-MM",
		map[string]string{"run": "Gathers approved rewards created before the end of the period into one payout per partnership and currency.\nTotals below the company's minimum carry over. Running a period again pays nothing twice.",
			"export": "Writes the period's payouts as CSV on stdout."}[args[0]], stderr)
	company := fs.String("company", "", "company key (required)")
	period := fs.String("period", "", "the month, YYYY-MM (required)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *period == "" {
		fs.Usage()
		return errors.New("--period is required")
	}
	a, p, err := openCompany(ctx, *db, *company)
	if err != nil {
		return err
	}
	defer a.Close()
	if args[0] == "export" {
		return a.Ledger.ExportPayouts(ctx, p, *period, stdout)
	}
	res, err := a.Ledger.RunPayouts(ctx, p.CompanyID, *period)
	if err != nil {
		return err
	}
	for _, po := range res.Created {
		fmt.Fprintf(stdout, "%s\t%s\t%d %s\t%d rewards\n", po.Key, po.PartnerKey, po.Amount, po.Currency, po.RewardCount)
	}
	fmt.Fprintf(stdout, "%d payouts created, %d totals carried over\n", len(res.Created), res.CarriedOver)
	return nil
}

func rewardsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "recompute" {
		fmt.Fprint(stderr, "usage: partnerd rewards recompute --company KEY\n")
		return errors.New("unknown rewards command")
	}
	fs, db := newFlags("rewards recompute --company KEY",
		"Rebuilds every unpaid offer reward from its causes under today's offers. Paid rewards are never changed.", stderr)
	company := fs.String("company", "", "company key (required)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	a, p, err := openCompany(ctx, *db, *company)
	if err != nil {
		return err
	}
	defer a.Close()
	res, err := a.Ledger.Recompute(ctx, p.CompanyID)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d causes, %d rewards created, %d updated, %d archived\n", res.Causes, res.Created, res.Updated, res.Archived)
	return nil
}
