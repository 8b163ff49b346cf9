package web

import (
	"context"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"

	"github.com/partnerd/partnerd/internal/accounts"
	"github.com/partnerd/partnerd/internal/errs"
	"github.com/partnerd/partnerd/internal/ledger"
	"github.com/partnerd/partnerd/internal/program"
	"github.com/partnerd/partnerd/internal/stats"
	"github.com/partnerd/partnerd/internal/store"
)

// The vendor's pages: the program of the user's company, production data.

type overviewView struct {
	Stats                                                   overviewStats
	Totals                                                  map[string]int64
	ClicksChart, CustomersChart, RevenueChart, RewardsChart template.HTML
}

func usdFormat(v int64) string   { return moneyWhole(v, "USD") }
func countFormat(v int64) string { return strconv.FormatInt(v, 10) }

func (s *Server) overview(w http.ResponseWriter, r *http.Request, sess *accounts.Session) error {
	_, company, err := s.principal(r.Context(), sess)
	if err != nil {
		return err
	}
	st, err := s.overviewStats(r.Context(), company.ID)
	if err != nil {
		return err
	}
	v := overviewView{Stats: st, Totals: map[string]int64{"clicks": sum(st.Clicks), "signups": sum(st.Signups),
		"customers": sum(st.Customers), "revenue": sum(st.Revenue), "rewards": sum(st.Rewards)},
		ClicksChart:    barChart("Clicks by month", st.Months, st.Clicks, countFormat),
		CustomersChart: barChart("New customers by month", st.Months, st.Customers, countFormat),
		RevenueChart:   barChart("Revenue by month (USD)", st.Months, st.Revenue, usdFormat),
		RewardsChart:   barChart("Rewards by month (USD)", st.Months, st.Rewards, usdFormat)}
	return s.render(w, http.StatusOK, "overview", view{Title: "Overview", Nav: "overview", Session: sess, Company: company, Data: v})
}

type listView[T any] struct {
	Items  []T
	Pager  pager
	Filter map[string]string
	Extra  any
}

// filters reads the named query parameters, trimmed.
func filters(r *http.Request, names ...string) map[string]string {
	f := map[string]string{}
	for _, n := range names {
		f[n] = strings.TrimSpace(r.URL.Query().Get(n))
	}
	return f
}

func name(first, last string) string { return strings.TrimSpace(first + " " + last) }

func (s *Server) partners(w http.ResponseWriter, r *http.Request, sess *accounts.Session) error {
	p, company, err := s.principal(r.Context(), sess)
	if err != nil {
		return err
	}
	f := filters(r, "email", "group", "archived")
	pf := program.PartnershipFilter{Email: f["email"], Group: f["group"], IncludeArchived: f["archived"] == "1"}
	l := listing[program.Partnership]{name: "partners",
		fetch: func(pg store.Page) ([]program.Partnership, store.Result, error) {
			return s.Program.ListPartnerships(r.Context(), p, pf, pg)
		},
		key:     func(x program.Partnership) string { return x.Key },
		csvHead: []string{"key", "partner_key", "email", "name", "group", "joined_at", "archived"},
		csvRow: func(x program.Partnership) []string {
			return []string{x.Key, x.PartnerKey, x.Email, name(x.FirstName, x.LastName), x.Group.Name, csvTime(x.JoinedAt), strconv.FormatBool(x.Archived)}
		}}
	return showList(s, w, r, l, "partners", view{Title: "Partners", Nav: "partners", Session: sess, Company: company}, f, nil)
}

type partnerView struct {
	Partnership program.Partnership
	Totals      stats.Month
	Links       []program.Link
	Customers   []program.Customer
	Rewards     []ledger.Reward
	LinkBase    string
}

func (s *Server) partner(w http.ResponseWriter, r *http.Request, sess *accounts.Session) error {
	p, company, err := s.principal(r.Context(), sess)
	if err != nil {
		return err
	}
	ps, err := s.Program.GetPartnership(r.Context(), p, r.PathValue("key"))
	if err != nil {
		return err
	}
	v := partnerView{Partnership: ps, LinkBase: baseURL(r)}
	if v.Links, err = s.links(r.Context(), p, ps.Key); err != nil {
		return err
	}
	if v.Totals, err = s.Stats.Total(r.Context(), p.CompanyID, ps.ID); err != nil {
		return err
	}
	// The newest ten, uncounted (a bound of 1 reads two rows): the page
	// links to the full lists, which count.
	recent := store.Page{Limit: 10, Desc: true, CountUpTo: 1}
	if v.Customers, _, err = s.Program.ListCustomers(r.Context(), p, program.CustomerFilter{PartnershipKey: ps.Key}, recent); err != nil {
		return err
	}
	if v.Rewards, _, err = s.Ledger.ListRewards(r.Context(), p, ledger.RewardFilter{PartnershipKey: ps.Key}, recent); err != nil {
		return err
	}
	return s.render(w, http.StatusOK, "partner", view{Title: name(ps.FirstName, ps.LastName), Nav: "partners", Session: sess, Company: company, Data: v})
}

// links are a partnership's links with their clicks from the rollups.
func (s *Server) links(ctx context.Context, p program.Principal, key string) ([]program.Link, error) {
	links, err := s.Program.Links(ctx, p, key)
	if err != nil {
		return nil, err
	}
	ids := make([]int64, len(links))
	for i, l := range links {
		ids[i] = l.ID
	}
	clicks, err := s.Stats.LinkClicks(ctx, ids)
	if err != nil {
		return nil, err
	}
	for i := range links {
		links[i].Clicks = clicks[links[i].ID]
	}
	return links, nil
}

// baseURL is where this server is reached, for links people copy.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (s *Server) customers(w http.ResponseWriter, r *http.Request, sess *accounts.Session) error {
	p, company, err := s.principal(r.Context(), sess)
	if err != nil {
		return err
	}
	f := filters(r, "email", "partner", "archived")
	cf := program.CustomerFilter{Email: f["email"], PartnershipKey: f["partner"], IncludeArchived: f["archived"] == "1"}
	l := listing[program.Customer]{name: "customers",
		fetch: func(pg store.Page) ([]program.Customer, store.Result, error) {
			return s.Program.ListCustomers(r.Context(), p, cf, pg)
		},
		key:     func(x program.Customer) string { return x.Key },
		csvHead: []string{"key", "customer_key", "email", "name", "partnership_key", "partner_key", "source", "created_at", "archived"},
		csvRow: func(x program.Customer) []string {
			return []string{x.Key, csvOpt(x.CustomerKey), x.Email, x.Name, x.PartnershipKey, x.PartnerKey, x.SourceType, csvTime(x.CreatedAt), strconv.FormatBool(x.Archived)}
		}}
	return showList(s, w, r, l, "customers", view{Title: "Customers", Nav: "customers", Session: sess, Company: company}, f, nil)
}

func (s *Server) transactions(w http.ResponseWriter, r *http.Request, sess *accounts.Session) error {
	p, company, err := s.principal(r.Context(), sess)
	if err != nil {
		return err
	}
	f := filters(r, "customer", "partner", "currency")
	tf := ledger.TransactionFilter{CustomerKey: f["customer"], PartnershipKey: f["partner"], Currency: strings.ToUpper(f["currency"])}
	l := listing[ledger.Transaction]{name: "transactions",
		fetch: func(pg store.Page) ([]ledger.Transaction, store.Result, error) {
			return s.Ledger.ListTransactions(r.Context(), p, tf, pg)
		},
		key:     func(x ledger.Transaction) string { return x.Key },
		csvHead: []string{"key", "amount", "currency", "customer_key", "customer_email", "partnership_key", "created_at"},
		csvRow: func(x ledger.Transaction) []string {
			return []string{x.Key, csvMoney(x.Amount, x.Currency), x.Currency, x.CustomerKey, x.CustomerEmail, x.PartnershipKey, csvTime(x.CreatedAt)}
		}}
	items, pg, done, err := l.page(w, r)
	if done || err != nil {
		return err
	}
	// The explanation of one transaction, when asked (?explain=key).
	var explained *ledger.TxExplanation
	if k := r.URL.Query().Get("explain"); k != "" {
		e, err := s.Ledger.ExplainTransaction(r.Context(), p, k)
		if err != nil {
			return err
		}
		explained = &e
	}
	return s.render(w, http.StatusOK, "transactions", view{Title: "Transactions", Nav: "transactions", Session: sess, Company: company,
		Data: listView[ledger.Transaction]{Items: items, Pager: pg, Filter: f, Extra: explained}})
}

var rewardStatuses = []string{ledger.StatusHold, ledger.StatusPending, ledger.StatusApproved, ledger.StatusDeclined, ledger.StatusPaid}

func (s *Server) rewards(w http.ResponseWriter, r *http.Request, sess *accounts.Session) error {
	p, company, err := s.principal(r.Context(), sess)
	if err != nil {
		return err
	}
	f := filters(r, "status", "partner", "customer")
	if f["status"] != "" && !contains(rewardStatuses, f["status"]) {
		return errs.E(errs.Invalid, "status: %q is not one of %s", f["status"], strings.Join(rewardStatuses, ", "))
	}
	rf := ledger.RewardFilter{Status: f["status"], PartnershipKey: f["partner"], CustomerKey: f["customer"]}
	l := listing[ledger.Reward]{name: "rewards",
		fetch: func(pg store.Page) ([]ledger.Reward, store.Result, error) {
			return s.Ledger.ListRewards(r.Context(), p, rf, pg)
		},
		key:     func(x ledger.Reward) string { return x.Key },
		csvHead: []string{"key", "status", "amount", "currency", "description", "partnership_key", "partner_key", "customer_email", "decline_reason", "created_at"},
		csvRow: func(x ledger.Reward) []string {
			return []string{x.Key, x.Status, csvMoney(x.Amount, x.Currency), x.Currency, x.Description, x.PartnershipKey, x.PartnerKey,
				csvOpt(x.CustomerEmail), csvOpt(x.DeclineReason), csvTime(x.CreatedAt)}
		}}
	return showList(s, w, r, l, "rewards", view{Title: "Rewards", Nav: "rewards", Session: sess, Company: company, Flash: r.URL.Query().Get("done")}, f, rewardStatuses)
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// reviewRewards approves or declines the checked rewards. Each reward is
// its own change: one that cannot change (already paid, say) is reported
// by key and the others still go through.
func (s *Server) reviewRewards(w http.ResponseWriter, r *http.Request, sess *accounts.Session) error {
	if !sess.User.Can() {
		return errs.E(errs.Forbidden, "a viewer cannot approve or decline rewards")
	}
	p, _, err := s.principal(r.Context(), sess)
	if err != nil {
		return err
	}
	keys := r.PostForm["reward"]
	action := r.PostFormValue("action")
	if len(keys) == 0 {
		return errs.E(errs.Invalid, "no reward was selected")
	}
	if len(keys) > 500 {
		return errs.E(errs.Invalid, "at most 500 rewards at once")
	}
	var status string
	var reason *string
	switch action {
	case "approve":
		status = ledger.StatusApproved
	case "decline":
		status = ledger.StatusDeclined
		why := strings.TrimSpace(r.PostFormValue("reason"))
		if why == "" {
			return errs.E(errs.Invalid, "a reason is required to decline rewards: the partner sees it")
		}
		reason = &why
	default:
		return errs.E(errs.Invalid, "action: %q is not approve or decline", action)
	}
	var failed []string
	for _, k := range keys {
		if _, err := s.Ledger.SetRewardStatus(r.Context(), p, k, status, reason); err != nil {
			if errs.CodeOf(err) == errs.Internal {
				return err
			}
			failed = append(failed, k+": "+errs.MessageOf(err))
		}
	}
	msg := fmt.Sprintf("%d of %d rewards %s.", len(keys)-len(failed), len(keys), status)
	if len(failed) > 0 {
		msg += " Not changed: " + strings.Join(failed, "; ")
	}
	back := safeNext(r.PostFormValue("back"))
	if back == "" {
		back = "/app/rewards"
	}
	sep := "?"
	if strings.Contains(back, "?") {
		sep = "&"
	}
	http.Redirect(w, r, back+sep+"done="+urlQueryEscape(msg), http.StatusSeeOther)
	return nil
}

func (s *Server) payouts(w http.ResponseWriter, r *http.Request, sess *accounts.Session) error {
	p, company, err := s.principal(r.Context(), sess)
	if err != nil {
		return err
	}
	f := filters(r, "period", "status", "partner")
	pf := ledger.PayoutFilter{Period: f["period"], Status: f["status"], PartnershipKey: f["partner"]}
	l := listing[ledger.Payout]{name: "payouts",
		fetch: func(pg store.Page) ([]ledger.Payout, store.Result, error) {
			return s.Ledger.ListPayouts(r.Context(), p, pf, pg)
		},
		key:     func(x ledger.Payout) string { return x.Key },
		csvHead: []string{"key", "period", "status", "amount", "currency", "rewards", "partner_email", "partner_name", "external_reference", "paid_at"},
		csvRow: func(x ledger.Payout) []string {
			paid := ""
			if x.PaidAt != nil {
				paid = csvTime(*x.PaidAt)
			}
			return []string{x.Key, x.Period, x.Status, csvMoney(x.Amount, x.Currency), x.Currency, strconv.Itoa(x.RewardCount),
				x.PartnerEmail, x.PartnerName, csvOpt(x.ExternalReference), paid}
		}}
	return showList(s, w, r, l, "payouts", view{Title: "Payouts", Nav: "payouts", Session: sess, Company: company, Flash: r.URL.Query().Get("done")}, f, nil)
}

func (s *Server) markPaid(w http.ResponseWriter, r *http.Request, sess *accounts.Session) error {
	if !sess.User.Can() {
		return errs.E(errs.Forbidden, "a viewer cannot mark payouts paid")
	}
	p, _, err := s.principal(r.Context(), sess)
	if err != nil {
		return err
	}
	po, err := s.Ledger.MarkPaid(r.Context(), p, r.PathValue("key"), r.PostFormValue("reference"))
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/app/payouts?done="+urlQueryEscape("Payout "+po.Key+" marked paid."), http.StatusSeeOther)
	return nil
}
