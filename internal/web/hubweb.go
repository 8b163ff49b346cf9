package web

import (
	"context"
	"encoding/json"
	"html/template"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/partnerd/partnerd/internal/accounts"
	"github.com/partnerd/partnerd/internal/errs"
	"github.com/partnerd/partnerd/internal/hub"
	"github.com/partnerd/partnerd/internal/store"
)

// The agency's pages: its hub workspace, what it synced and what it earned.

func (s *Server) workspace(ctx context.Context, sess *accounts.Session) (hub.Workspace, error) {
	return s.Hub.WorkspaceByID(ctx, sess.User.WorkspaceID)
}

type connectionRow struct {
	hub.Connection
	Streams []hub.StreamState
	Records int
}

type connectionsView struct {
	Workspace   hub.Workspace
	Connections []connectionRow
	DefaultBase string
	Name, Base  string // the add form, kept after a refusal (never the token)
}

func (s *Server) hubConnections(w http.ResponseWriter, r *http.Request, sess *accounts.Session) error {
	return s.showConnections(w, r, sess, http.StatusOK, "", "", "")
}

func (s *Server) showConnections(w http.ResponseWriter, r *http.Request, sess *accounts.Session, status int, problem, name, base string) error {
	ws, err := s.workspace(r.Context(), sess)
	if err != nil {
		return err
	}
	list, err := s.Hub.Connections(r.Context(), ws.Key)
	if err != nil {
		return err
	}
	v := connectionsView{Workspace: ws, DefaultBase: hub.DefaultBaseURL, Name: name, Base: base}
	for _, c := range list {
		st, err := s.Hub.Streams(r.Context(), c)
		if err != nil {
			return err
		}
		row := connectionRow{Connection: c, Streams: st}
		for _, x := range st {
			row.Records += x.Records
		}
		v.Connections = append(v.Connections, row)
	}
	return s.render(w, status, "hub", view{Title: "Connections", Nav: "hub", Session: sess, Flash: r.URL.Query().Get("done"), Error: problem, Data: v})
}

// hubConnect adds a connection. The token is checked with one read at
// the source before anything is stored; a refusal shows the form again
// without the token.
func (s *Server) hubConnect(w http.ResponseWriter, r *http.Request, sess *accounts.Session) error {
	if !sess.User.Can() {
		return errs.E(errs.Forbidden, "a viewer cannot add connections")
	}
	ws, err := s.workspace(r.Context(), sess)
	if err != nil {
		return err
	}
	name, base := strings.TrimSpace(r.PostFormValue("name")), strings.TrimSpace(r.PostFormValue("base_url"))
	if base == "" {
		base = hub.DefaultBaseURL
	}
	c, err := s.Hub.Connect(r.Context(), hub.ConnectInput{Workspace: ws.Key, Name: name, BaseURL: base, Token: strings.TrimSpace(r.PostFormValue("token"))})
	if err != nil {
		if errs.CodeOf(err) == errs.Internal {
			return err
		}
		return s.showConnections(w, r, sess, http.StatusBadRequest, errs.MessageOf(err), name, base)
	}
	if _, err := s.Hub.SyncSoon(r.Context(), ws, c.Key); err != nil {
		return err
	}
	http.Redirect(w, r, "/hub?done="+urlQueryEscape("Connected "+c.Name+": its first sync starts within a minute."), http.StatusSeeOther)
	return nil
}

func (s *Server) hubSyncNow(w http.ResponseWriter, r *http.Request, sess *accounts.Session) error {
	if !sess.User.Can() {
		return errs.E(errs.Forbidden, "a viewer cannot start syncs")
	}
	ws, err := s.workspace(r.Context(), sess)
	if err != nil {
		return err
	}
	c, err := s.Hub.SyncSoon(r.Context(), ws, r.PathValue("key"))
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/hub?done="+urlQueryEscape(c.Name+" will sync within a minute."), http.StatusSeeOther)
	return nil
}

// reportMissed is how many missed rewards the report shows itself.
const reportMissed = 10

type reportView struct {
	Report      hub.Report
	Missed      []hub.Missed // the newest reportMissed
	MissedTotal int
	Earned      template.HTML
	Chart       string // the currency the chart shows
	Months      []string
	Program     string
}

func (s *Server) hubReport(w http.ResponseWriter, r *http.Request, sess *accounts.Session) error {
	rep, err := hubData(s, r, sess, s.Hub.Report)
	if err != nil {
		return err
	}
	// Earned and paid over time, summed over programs, in the currency
	// with the most earned.
	byCur := map[string]int64{}
	for _, pm := range rep.Programs {
		for _, m := range pm.Money {
			byCur[m.Currency] += m.Earned
		}
	}
	cur := ""
	for c, v := range byCur {
		if cur == "" || v > byCur[cur] || (v == byCur[cur] && c < cur) {
			cur = c
		}
	}
	monthSet := map[string]int64{}
	for _, pm := range rep.Programs {
		for _, m := range pm.Money {
			if m.Currency == cur {
				monthSet[pm.Month] += m.Earned
			}
		}
	}
	var months []string
	for m := range monthSet {
		months = append(months, m)
	}
	sort.Strings(months)
	values := make([]int64, len(months))
	for i, m := range months {
		values[i] = monthSet[m]
	}
	v := reportView{Report: rep, Chart: cur, Months: months, MissedTotal: len(rep.Missed)}
	// The newest missed rewards; all of them on their own, paged page
	// (a program can miss thousands: 6,000 rows made a 1.4 MB page).
	for i := len(rep.Missed) - 1; i >= 0 && len(v.Missed) < reportMissed; i-- {
		v.Missed = append(v.Missed, rep.Missed[i])
	}
	if cur != "" {
		v.Earned = barChart("Rewards earned by month ("+cur+")", months, values, func(x int64) string { return moneyWhole(x, cur) })
	}
	return s.render(w, http.StatusOK, "hub_report", view{Title: "Report", Nav: "hub_report", Session: sess, Data: v})
}

// hubMissed lists every reward the workspace missed, newest first.
func (s *Server) hubMissed(w http.ResponseWriter, r *http.Request, sess *accounts.Session) error {
	rep, err := hubData(s, r, sess, s.Hub.Report)
	if err != nil {
		return err
	}
	f := filters(r, "program", "kind")
	var kept []*hub.Missed
	for i := len(rep.Missed) - 1; i >= 0; i-- {
		m := &rep.Missed[i]
		if (f["program"] == "" || m.Program == f["program"]) && (f["kind"] == "" || m.Kind == f["kind"]) {
			kept = append(kept, m)
		}
	}
	l := memListing("missed", kept, []string{"program", "kind", "key", "amount", "currency", "reason", "at"},
		func(m *hub.Missed) []string {
			amount := ""
			if m.Currency != "" {
				amount = csvMoney(m.Amount, m.Currency)
			}
			return []string{m.Program, m.Kind, m.Key, amount, m.Currency, m.Reason, csvTime(m.At)}
		})
	return showList(s, w, r, l, "hub_missed", view{Title: "Missed rewards", Nav: "hub_report", Session: sess}, f, missedKinds)
}

// missedKinds are the kinds of hub.Missed, for the filter.
var missedKinds = []string{"declined", "held", "expired", "clawed_back", "referral_without_reward", "transaction_without_reward"}

// hubData reads one of the views of the agency user's workspace.
func hubData[T any](s *Server, r *http.Request, sess *accounts.Session, view func(context.Context, string) (T, error)) (T, error) {
	ws, err := s.workspace(r.Context(), sess)
	if err != nil {
		var zero T
		return zero, err
	}
	return view(r.Context(), ws.Key)
}

// indexed is an item of a list held in memory, with its position as its
// cursor: the hub's model is derived on read, so its lists are paged in
// memory.
type indexed[T any] struct {
	I int
	V T
}

// pick points at the items of a cached list that match, in its order.
// The lists are shared and can hold hundreds of thousands of items:
// copying them for every page view cost tens of megabytes and of
// milliseconds, pointers cost eight bytes an item.
func pick[T any](all []T, match func(*T) bool) []*T {
	out := make([]*T, 0, len(all))
	for i := range all {
		if match(&all[i]) {
			out = append(out, &all[i])
		}
	}
	return out
}

func memListing[T any](name string, all []T, head []string, row func(T) []string) listing[indexed[T]] {
	return listing[indexed[T]]{name: name, csvHead: head,
		csvRow: func(x indexed[T]) []string { return row(x.V) },
		key:    func(x indexed[T]) string { return strconv.Itoa(x.I) },
		fetch: func(pg store.Page) ([]indexed[T], store.Result, error) {
			from, to := 0, len(all)
			if pg.After != "" {
				n, err := strconv.Atoi(pg.After)
				if err != nil {
					return nil, store.Result{}, errs.E(errs.Invalid, "after: not a position")
				}
				from = n + 1
			}
			if pg.Before != "" {
				n, err := strconv.Atoi(pg.Before)
				if err != nil {
					return nil, store.Result{}, errs.E(errs.Invalid, "before: not a position")
				}
				to, from = min(n, len(all)), max(0, n-pg.Limit)
			} else {
				to = min(len(all), from+pg.Limit)
			}
			from = min(max(from, 0), len(all))
			to = max(from, to)
			var out []indexed[T]
			for i := from; i < to; i++ {
				out = append(out, indexed[T]{i, all[i]})
			}
			more := to < len(all)
			if pg.Before != "" {
				more = from > 0
			}
			return out, store.Result{HasMore: more, Total: min(len(all), pg.CountUpTo+1)}, nil
		}}
}

func (s *Server) hubReferrals(w http.ResponseWriter, r *http.Request, sess *accounts.Session) error {
	all, err := hubData(s, r, sess, s.Hub.Referrals)
	if err != nil {
		return err
	}
	f := filters(r, "status", "program", "q")
	q := strings.ToLower(f["q"])
	kept := pick(all, func(x *hub.Referral) bool {
		return (f["status"] == "" || x.Status == f["status"]) && (f["program"] == "" || x.Program == f["program"]) &&
			(q == "" || strings.Contains(strings.ToLower(x.Email+" "+x.Name), q))
	})
	l := memListing("referrals", kept, []string{"program", "customer_key", "email", "name", "status", "paying", "created_at"},
		func(x *hub.Referral) []string {
			return []string{x.Program, x.CustomerKey, x.Email, x.Name, x.Status, strconv.FormatBool(x.Paying), csvTime(x.CreatedAt)}
		})
	return showList(s, w, r, l, "hub_referrals", view{Title: "Referrals", Nav: "hub_referrals", Session: sess}, f, nil)
}

func (s *Server) hubAccounts(w http.ResponseWriter, r *http.Request, sess *accounts.Session) error {
	all, err := hubData(s, r, sess, s.Hub.Accounts)
	if err != nil {
		return err
	}
	f := filters(r, "q", "shared")
	q := strings.ToLower(f["q"])
	kept := pick(all, func(a *hub.Account) bool {
		return (q == "" || strings.Contains(strings.ToLower(a.Name), q)) && (f["shared"] != "1" || len(a.Programs) > 1)
	})
	l := memListing("accounts", kept, []string{"account", "domain", "programs", "contacts", "first_referred_at"},
		func(a *hub.Account) []string {
			return []string{a.Name, a.Domain, strings.Join(a.Programs, "; "), strconv.Itoa(len(a.Contacts)), csvTime(a.FirstReferredAt)}
		})
	return showList(s, w, r, l, "hub_accounts", view{Title: "Accounts", Nav: "hub_accounts", Session: sess}, f, nil)
}

type programRow struct {
	hub.Program
	Group  string
	Terms  int
	Offers string
}

func (s *Server) hubPrograms(w http.ResponseWriter, r *http.Request, sess *accounts.Session) error {
	all, err := hubData(s, r, sess, s.Hub.Programs)
	if err != nil {
		return err
	}
	rows := make([]programRow, len(all))
	for i, p := range all {
		rows[i] = programRow{Program: p, Group: jsonName(p.Group), Terms: len(p.Terms), Offers: offerNames(p.Offers)}
	}
	l := memListing("programs", rows, []string{"program", "connection", "partner_key", "group", "status", "offers", "joined_at"},
		func(p programRow) []string {
			return []string{p.Name, p.Connection, p.PartnerKey, p.Group, p.Status, p.Offers, csvTime(p.JoinedAt)}
		})
	return showList(s, w, r, l, "hub_programs", view{Title: "Programs", Nav: "hub_programs", Session: sess}, nil, nil)
}

// jsonName is the "name" of a JSON object the source sent, if it has one.
func jsonName(raw []byte) string {
	var v struct {
		Name string `json:"name"`
	}
	if json.Unmarshal(raw, &v) != nil {
		return ""
	}
	return v.Name
}

// offerNames lists the names (or descriptions) of the source's offers.
func offerNames(raw []byte) string {
	var list []map[string]any
	if json.Unmarshal(raw, &list) != nil {
		return ""
	}
	var names []string
	for _, o := range list {
		for _, k := range []string{"name", "description", "title"} {
			if v, ok := o[k].(string); ok && v != "" {
				names = append(names, v)
				break
			}
		}
	}
	return strings.Join(names, "; ")
}

func (s *Server) hubContacts(w http.ResponseWriter, r *http.Request, sess *accounts.Session) error {
	all, err := hubData(s, r, sess, s.Hub.Contacts) // newest first
	if err != nil {
		return err
	}
	f := filters(r, "q")
	q := strings.ToLower(f["q"])
	kept := pick(all, func(c *hub.Contact) bool { return q == "" || strings.Contains(strings.ToLower(c.Email+" "+c.Name), q) })
	l := memListing("contacts", kept, []string{"email", "name", "program", "customer_key", "referred_at"},
		func(c *hub.Contact) []string {
			return []string{c.Email, c.Name, c.Program, c.CustomerKey, csvTime(c.CreatedAt)}
		})
	return showList(s, w, r, l, "hub_contacts", view{Title: "Contacts", Nav: "hub_contacts", Session: sess}, f, nil)
}

func (s *Server) hubDeals(w http.ResponseWriter, r *http.Request, sess *accounts.Session) error {
	all, err := hubData(s, r, sess, s.Hub.Deals)
	if err != nil {
		return err
	}
	f := filters(r, "stage")
	kept := pick(all, func(d *hub.Deal) bool { return f["stage"] == "" || d.Stage == f["stage"] })
	l := memListing("deals", kept, []string{"program", "key", "origin", "name", "stage", "amount", "currency"},
		func(d *hub.Deal) []string {
			return []string{d.Program, d.Key, d.Origin, d.Name, d.Stage, csvMoney(d.Amount, d.Currency), d.Currency}
		})
	return showList(s, w, r, l, "hub_deals", view{Title: "Deals", Nav: "hub_deals", Session: sess}, f, nil)
}

func (s *Server) hubLeads(w http.ResponseWriter, r *http.Request, sess *accounts.Session) error {
	all, err := hubData(s, r, sess, s.Hub.Leads)
	if err != nil {
		return err
	}
	l := memListing("leads", all, []string{"program", "key", "external_key", "status", "approved", "created_at"},
		func(x hub.Lead) []string {
			return []string{x.Program, x.Key, x.ExternalKey, x.Status, strconv.FormatBool(x.Approved), csvTime(x.CreatedAt)}
		})
	return showList(s, w, r, l, "hub_leads", view{Title: "Leads", Nav: "hub_leads", Session: sess}, nil, nil)
}
