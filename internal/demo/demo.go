// Package demo seeds a realistic partner program into an empty partnerd:
// a SaaS company with two tiers and their offers, partners whose results
// follow a long tail, twelve months of clicks, sign-ups, customers and
// monthly payments with churn and refunds, the rewards the offers make of
// them, and monthly payouts, most of them paid. Everything a program owns
// goes through partnerd's own importer and ledger, so the rewards are the
// engine's; only clicks and tracked sign-ups, which no import path takes,
// are written as rows.
package demo

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/partnerd/partnerd/internal/clock"
	"github.com/partnerd/partnerd/internal/importer"
	"github.com/partnerd/partnerd/internal/ledger"
	"github.com/partnerd/partnerd/internal/program"
	"github.com/partnerd/partnerd/internal/secret"
	"github.com/partnerd/partnerd/internal/store"
)

// CompanyName is the demo program's company.
const CompanyName = "Acme Analytics"

// Options size the program. Scale multiplies customers, payments and
// clicks (1 is about 12,000 customers and 47,000 payments); partners stay.
type Options struct {
	Partners int
	Scale    int
	// Customers, when set, replaces the 12,000 × Scale customers.
	Customers int
	Seed      uint64
	// Clock is the clock the services run on: the seeder walks it through
	// the year so that every record is made when it happened (rewards,
	// approvals and payouts included), and returns it to the present.
	Clock *clock.Shifted
	// Progress is told what is being seeded, when not nil.
	Progress func(step string)
}

// Services are what the seeder writes through.
type Services struct {
	DB       *store.DB
	Program  *program.Service
	Ledger   *ledger.Service
	Importer *importer.Service
}

// Result is what was seeded.
type Result struct {
	Company      program.NewCompany
	Principal    program.Principal
	Partners     int
	Customers    int
	Transactions int
	Refunds      int
	Clicks       int
	Payouts      int
	// DemoPartner is the partner the demo logs in as (and whose token the
	// hub syncs): the one with the most customers.
	DemoPartner string
}

type partner struct {
	key, email, first, last, group string
	weight                         float64
	joined                         time.Time
}

var (
	firsts = []string{"Ava", "Liam", "Noah", "Emma", "Mia", "Lucas", "Zoe", "Ethan", "Chloe", "Mateo", "Aria", "Leo", "Nora", "Omar", "Ines",
		"Yuki", "Ravi", "Sofia", "Jonas", "Amara", "Kai", "Elena", "Tariq", "Maya", "Felix", "Hana", "Diego", "Lena", "Samir", "Freya"}
	lasts = []string{"Nguyen", "Garcia", "Smith", "Müller", "Rossi", "Kowalski", "Haddad", "Okafor", "Tanaka", "Silva", "Dubois", "Larsen",
		"Patel", "Novak", "Cohen", "Moreau", "Jensen", "Costa", "Khan", "Weber"}
	agencies = []string{"Growth Studio", "Northwind Digital", "SaaS Reviews Weekly", "The Ops Podcast", "Pixel & Partners", "Data Drivers",
		"Cloud Advisors", "Startup Stack", "Metric Minds", "B2B Boost"}
	orgs  = []string{"lumen", "brightpath", "corebyte", "fjord", "helix", "kinetic", "monarch", "nimbus", "orbit", "quanta", "redwood", "summit", "tidal", "vertex", "willow", "zenith"}
	tlds  = []string{"io", "com", "co", "dev", "ai"}
	plans = []int64{2900, 4900, 9900, 29900}
)

// Seed writes the demo program. The database should be empty of it.
func Seed(ctx context.Context, sv Services, o Options) (Result, error) {
	if o.Partners < 1 {
		o.Partners = 60
	}
	if o.Scale < 1 {
		o.Scale = 1
	}
	if o.Clock == nil {
		return Result{}, errors.New("demo: the seeder needs the services' clock")
	}
	defer o.Clock.Reset()
	today := time.Now().UTC()
	start := time.Date(today.Year(), today.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, -11, 0)
	o.Clock.Set(start)
	rng := rand.New(rand.NewPCG(o.Seed, 0x5eed))
	step := func(s string) {
		if o.Progress != nil {
			o.Progress(s)
		}
	}
	var res Result
	step("creating the company " + CompanyName)
	nc, err := sv.Program.CreateCompany(ctx, CompanyName, "https://acme-analytics.example")
	if err != nil {
		return res, fmt.Errorf("create company: %w", err)
	}
	res.Company = nc
	p := program.Principal{CompanyID: nc.ID, CompanyKey: nc.Key, CompanyName: nc.Name}
	res.Principal = p
	imp := func(typ string, rows [][]string, noRewards bool) error {
		var buf bytes.Buffer
		w := csv.NewWriter(&buf)
		if err := w.WriteAll(rows); err != nil {
			return err
		}
		im, err := sv.Importer.Import(ctx, p, importer.Options{Type: typ, NoRewards: noRewards}, "demo-"+typ+".csv", int64(buf.Len()), &buf, nil)
		if err != nil {
			return fmt.Errorf("import %s: %w", typ, err)
		}
		if im.Status != importer.StatusDone || im.Rejected > 0 {
			// The seeder made every row: a rejected one is a bug here.
			return fmt.Errorf("import %s: %s, %d rows rejected %s", typ, im.Status, im.Rejected, im.Error)
		}
		return nil
	}

	// Tiers and their offers: everyone earns 20% of payments for a year,
	// Gold partners 30% for life, and a flat $25 for each new customer.
	step("creating groups and offers")
	if err := imp("groups", [][]string{{"key", "name"}, {"gold", "Gold"}}, false); err != nil {
		return res, err
	}
	offer := func(name, trigger, typ string, rate *string, amount *int64, months *int, group *string, hold int) error {
		in := ledger.OfferInput{Set: map[string]bool{"name": true, "trigger": true, "type": true, "hold_days": true}, Name: &name,
			Trigger: &trigger, Type: &typ, HoldDays: &hold}
		if rate != nil {
			in.Set["rate"], in.Rate = true, rate
		}
		if amount != nil {
			usd := "USD"
			in.Set["amount"], in.Amount, in.Set["currency"], in.Currency = true, amount, true, &usd
		}
		if months != nil {
			in.Set["duration_months"], in.DurationMonths = true, months
		}
		if group != nil {
			in.Set["group_key"], in.GroupKey = true, group
		}
		_, err := sv.Ledger.CreateOffer(ctx, p, in)
		return err
	}
	twenty, thirty, year, flat := "20", "30", 12, int64(2500)
	def := defaultGroupKey(ctx, sv, p)
	gold := "gold"
	if err := offer("20% of payments for a year", "transaction", "percent", &twenty, nil, &year, &def, 30); err != nil {
		return res, fmt.Errorf("create offer: %w", err)
	}
	if err := offer("Gold: 30% of payments for life", "transaction", "percent", &thirty, nil, nil, &gold, 30); err != nil {
		return res, fmt.Errorf("create offer: %w", err)
	}
	if err := offer("$25 for each new customer", "customer", "flat", nil, &flat, nil, nil, 14); err != nil {
		return res, fmt.Errorf("create offer: %w", err)
	}

	// Partners: a long tail, as real programs have: a few bring most.
	// They join over the first five months.
	partners := make([]partner, o.Partners)
	for i := range partners {
		first, last := firsts[rng.IntN(len(firsts))], lasts[rng.IntN(len(lasts))]
		pt := partner{key: fmt.Sprintf("%s-%s-%d", strings.ToLower(first), strings.ToLower(strings.ReplaceAll(last, "ü", "u")), i+1),
			first: first, last: last, group: def, weight: 1 / math.Pow(float64(i+1), 0.9),
			joined: start.Add(time.Duration(rng.Int64N(int64(150 * 24 * time.Hour))))}
		if i < len(agencies) && i%2 == 0 {
			pt.first, pt.last = agencies[i], ""
		}
		pt.email = pt.key + "@partners.example"
		if i < o.Partners/6 {
			pt.group = gold
		}
		partners[i] = pt
	}
	res.Partners = len(partners)
	res.DemoPartner = partners[0].key

	// Customers and their monthly payments, by month of the year.
	var total float64
	for _, pt := range partners {
		total += pt.weight
	}
	type month struct{ partners, customers, txs [][]string }
	byMonth := make([]month, 12)
	monthOf := func(t time.Time) int { return (t.Year()-start.Year())*12 + int(t.Month()) - int(start.Month()) }
	for _, pt := range partners {
		m := &byMonth[monthOf(pt.joined)]
		m.partners = append(m.partners, []string{pt.key, pt.email, pt.first, pt.last, pt.group, strconv.FormatInt(pt.joined.UnixMilli(), 10)})
	}
	type signup struct {
		partner string
		at      int64
	}
	var signups []signup
	nCustomers := 12000 * o.Scale
	if o.Customers > 0 {
		nCustomers = o.Customers
	}
	for c := 0; c < nCustomers; c++ {
		pt := partners[pick(rng, partners, total)]
		span := today.Sub(pt.joined)
		if span <= 0 {
			continue
		}
		// Sign-ups grow over the year, as a program does.
		at := pt.joined.Add(time.Duration(math.Pow(rng.Float64(), 0.8) * float64(span)))
		org := orgs[rng.IntN(len(orgs))] + strconv.Itoa(c)
		key := fmt.Sprintf("cus_%06d", c+1)
		m := &byMonth[monthOf(at)]
		m.customers = append(m.customers, []string{key, "billing@" + org + "." + tlds[rng.IntN(len(tlds))], strings.ToUpper(org[:1]) + org[1:] + " Inc",
			pt.key, "js", strconv.FormatInt(at.UnixMilli(), 10)})
		signups = append(signups, signup{pt.key, at.UnixMilli()})
		res.Customers++
		// Monthly payments from sign-up until churn (3% a month) or
		// today; about one payment in forty is refunded days later.
		plan := plans[min(rng.IntN(10)/3, len(plans)-1)]
		for n := 0; ; n++ {
			paid := at.AddDate(0, n, 0).Add(time.Hour)
			if paid.After(today) || (n > 0 && rng.Float64() < 0.03) {
				break
			}
			tk := fmt.Sprintf("txn_%06d_%02d", c+1, n)
			pm := &byMonth[monthOf(paid)]
			pm.txs = append(pm.txs, []string{tk, key, strconv.FormatInt(plan, 10), "USD", strconv.FormatInt(paid.UnixMilli(), 10)})
			res.Transactions++
			if rng.Float64() < 0.025 {
				refund := paid.Add(time.Duration(1+rng.IntN(10)) * 24 * time.Hour)
				if refund.Before(today) {
					rm := &byMonth[monthOf(refund)]
					rm.txs = append(rm.txs, []string{tk + "_refund", key, strconv.FormatInt(-plan, 10), "USD", strconv.FormatInt(refund.UnixMilli(), 10)})
					res.Transactions++
					res.Refunds++
				}
			}
		}
	}

	// The year, month by month, with the clock at each month's end: the
	// month's partners, customers and payments arrive (the offers reward
	// them then), rewards past their hold are approved, and on the first
	// of the next month the previous month is paid out; payouts are
	// marked paid a month later, as a finance team would.
	step(fmt.Sprintf("importing %d partners, %d customers and %d payments (%d refunds) month by month; the offers make their rewards",
		res.Partners, res.Customers, res.Transactions, res.Refunds))
	var unpaid []ledger.Payout
	for i, m := range byMonth {
		monthStart := start.AddDate(0, i, 0)
		end := monthStart.AddDate(0, 1, 0).Add(-time.Minute)
		if end.After(today) {
			end = today
		}
		// The payout run on the first of the month, for the month before;
		// last month's payouts are paid.
		o.Clock.Set(monthStart.Add(time.Hour))
		if i > 0 {
			for _, po := range unpaid {
				if _, err := sv.Ledger.MarkPaid(ctx, p, po.Key, "demo-transfer-"+po.Key[len(po.Key)-6:]); err != nil {
					return res, fmt.Errorf("mark %s paid: %w", po.Key, err)
				}
			}
			run, err := sv.Ledger.RunPayouts(ctx, nc.ID, start.AddDate(0, i-1, 0).Format("2006-01"))
			if err != nil {
				return res, fmt.Errorf("pay out: %w", err)
			}
			unpaid = run.Created
			res.Payouts += len(run.Created)
		}
		o.Clock.Set(end)
		for _, part := range []struct {
			typ  string
			head []string
			rows [][]string
		}{
			{"partners", []string{"partner_key", "email", "first_name", "last_name", "group_key", "joined_at"}, m.partners},
			{"customers", []string{"customer_key", "email", "name", "partner_key", "source_type", "created_at"}, m.customers},
			{"transactions", []string{"key", "customer_key", "amount", "currency", "created_at"}, m.txs},
		} {
			if len(part.rows) == 0 {
				continue
			}
			if err := imp(part.typ, append([][]string{part.head}, part.rows...), false); err != nil {
				return res, err
			}
		}
		if _, err := sv.Ledger.ApprovePendingNow(ctx); err != nil {
			return res, fmt.Errorf("approve rewards: %w", err)
		}
		if err := declineSome(ctx, sv, p, rng, monthStart.UnixMilli()); err != nil {
			return res, err
		}
	}

	// Clicks and tracked sign-ups: about 30 clicks a customer, spread over
	// the days before each sign-up and the partner's whole year.
	step("writing clicks and sign-ups")
	links := map[string]int64{}
	partnershipIDs := map[string]int64{}
	lr, err := sv.DB.Query(ctx, `SELECT p.partner_key, l.id, p.id FROM links l JOIN partnerships p ON p.id = l.partnership_id
		WHERE l.company_id = ? AND l.is_default = 1`, nc.ID)
	if err != nil {
		return res, fmt.Errorf("read links: %w", err)
	}
	for lr.Next() {
		var k string
		var id, pid int64
		if err := lr.Scan(&k, &id, &pid); err != nil {
			lr.Close()
			return res, err
		}
		links[k], partnershipIDs[k] = id, pid
	}
	lr.Close()
	var clicks, signupRows [][]any
	flush := func(force bool) error {
		if len(clicks) >= 20000 || (force && len(clicks) > 0) {
			if err := sv.DB.InsertRows(ctx, "clicks", []string{"xid", "company_id", "partnership_id", "link_id", "referrer", "created_at"}, clicks); err != nil {
				return fmt.Errorf("write clicks: %w", err)
			}
			res.Clicks += len(clicks)
			clicks = clicks[:0]
		}
		return nil
	}
	referrers := []string{"https://www.google.com/", "https://twitter.com/", "https://www.linkedin.com/", "https://news.ycombinator.com/", ""}
	for _, su := range signups {
		for k := 0; k < 30; k++ {
			at := su.at - rng.Int64N(int64(20*24*time.Hour/time.Millisecond))
			if k >= 3 { // most clicks never sign up: spread over the year
				at = start.UnixMilli() + rng.Int64N(today.UnixMilli()-start.UnixMilli())
			}
			clicks = append(clicks, []any{secret.Random(24), nc.ID, partnershipIDs[su.partner], links[su.partner], referrers[rng.IntN(len(referrers))], at})
		}
		signupRows = append(signupRows, []any{nc.ID, partnershipIDs[su.partner], "js", su.at})
		if err := flush(false); err != nil {
			return res, err
		}
	}
	if err := flush(true); err != nil {
		return res, err
	}
	if err := sv.DB.InsertRows(ctx, "signups", []string{"company_id", "partnership_id", "source", "created_at"}, signupRows); err != nil {
		return res, fmt.Errorf("write sign-ups: %w", err)
	}

	return res, nil
}

// pick draws a partner index by weight.
func pick(rng *rand.Rand, ps []partner, total float64) int {
	x := rng.Float64() * total
	for i, p := range ps {
		if x -= p.weight; x <= 0 {
			return i
		}
	}
	return len(ps) - 1
}

func defaultGroupKey(ctx context.Context, sv Services, p program.Principal) string {
	var key string
	if err := sv.DB.QueryRow(ctx, "SELECT key FROM groups WHERE company_id = ? AND is_default = 1", p.CompanyID).Scan(&key); err != nil {
		return ""
	}
	return key
}

// declineSome declines about one in sixty of the rewards approved since a
// time, as a program's fraud and policy review does.
func declineSome(ctx context.Context, sv Services, p program.Principal, rng *rand.Rand, since int64) error {
	reasons := []string{"Self-referral: the partner and the customer share a domain", "Refunded within the first 30 days",
		"Duplicate account", "Outside the program's terms: paid search on our brand"}
	rows, err := sv.DB.Query(ctx, `SELECT key FROM rewards WHERE company_id = ? AND status = 'approved' AND payout_id IS NULL AND amount > 0
		AND updated_at >= ? ORDER BY id`, p.CompanyID, since)
	if err != nil {
		return fmt.Errorf("read rewards: %w", err)
	}
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			rows.Close()
			return err
		}
		if rng.IntN(60) == 0 {
			keys = append(keys, k)
		}
	}
	rows.Close()
	for _, k := range keys {
		why := reasons[rng.IntN(len(reasons))]
		if _, err := sv.Ledger.SetRewardStatus(ctx, p, k, ledger.StatusDeclined, &why); err != nil {
			return fmt.Errorf("decline %s: %w", k, err)
		}
	}
	return nil
}
