package web

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/partnerd/partnerd/internal/accounts"
	"github.com/partnerd/partnerd/internal/billing"
	"github.com/partnerd/partnerd/internal/errs"
	"github.com/partnerd/partnerd/internal/ledger"
	"github.com/partnerd/partnerd/internal/money"
	"github.com/partnerd/partnerd/internal/program"
	"github.com/partnerd/partnerd/internal/store"
	"github.com/partnerd/partnerd/internal/webhooks"
)

// The vendor's settings: API keys and the tracking snippet, billing
// providers and their inbox, outbound webhooks, offers and groups.

func (s *Server) mustAct(sess *accounts.Session) error {
	if !sess.User.Can() {
		return errs.E(errs.Forbidden, "a viewer cannot change the program's settings")
	}
	return nil
}

type developersView struct {
	Keys      []program.APIKey
	NewPair   *program.KeyPair
	NewToken  string
	Base      string
	PublicKey string // the newest production key, for the snippet
}

func (s *Server) developers(w http.ResponseWriter, r *http.Request, sess *accounts.Session) error {
	return s.showDevelopers(w, r, sess, developersView{}, r.URL.Query().Get("done"))
}

func (s *Server) showDevelopers(w http.ResponseWriter, r *http.Request, sess *accounts.Session, v developersView, flash string) error {
	_, company, err := s.principal(r.Context(), sess)
	if err != nil {
		return err
	}
	if v.Keys, err = s.Program.ListKeys(r.Context(), company.ID); err != nil {
		return err
	}
	v.Base = baseURL(r)
	for _, k := range v.Keys {
		if !k.Test {
			v.PublicKey = k.PublicKey
			break
		}
	}
	return s.render(w, http.StatusOK, "developers", view{Title: "API keys and tracking", Nav: "developers", Session: sess, Company: company, Flash: flash, Data: v})
}

// createKeys shows the new pair on the POST's own response: its secret
// is never stored to be shown again.
func (s *Server) createKeys(w http.ResponseWriter, r *http.Request, sess *accounts.Session) error {
	if err := s.mustAct(sess); err != nil {
		return err
	}
	kp, err := s.Program.CreateKeyPair(r.Context(), sess.User.CompanyID, r.PostFormValue("mode") == "test")
	if err != nil {
		return err
	}
	return s.showDevelopers(w, r, sess, developersView{NewPair: &kp}, "A new key pair: copy the secret key now, it is not shown again.")
}

func (s *Server) revokeKeys(w http.ResponseWriter, r *http.Request, sess *accounts.Session) error {
	if err := s.mustAct(sess); err != nil {
		return err
	}
	pk := r.PathValue("public")
	if err := s.Program.RevokeKey(r.Context(), sess.User.CompanyID, pk); err != nil {
		return err
	}
	http.Redirect(w, r, "/app/developers?done="+urlQueryEscape("Key pair "+pk+" revoked."), http.StatusSeeOther)
	return nil
}

func (s *Server) createTrackingToken(w http.ResponseWriter, r *http.Request, sess *accounts.Session) error {
	if err := s.mustAct(sess); err != nil {
		return err
	}
	_, company, err := s.principal(r.Context(), sess)
	if err != nil {
		return err
	}
	tok, err := s.Program.CreateTrackingToken(r.Context(), company.Key)
	if err != nil {
		return err
	}
	return s.showDevelopers(w, r, sess, developersView{NewToken: tok}, "A new server-to-server token: copy it now, it is not shown again.")
}

type billingView struct {
	Providers  []providerRow
	Events     []billing.Event
	More       bool
	Status     string
	Statuses   []string
	CompanyKey string
}

type providerRow struct {
	Name, URL, TestURL string
	Live, Test         *billing.Config
}

var billingStatuses = []string{"pending", "waiting", "done", "ignored", "failed"}

func (s *Server) billingPage(w http.ResponseWriter, r *http.Request, sess *accounts.Session) error {
	_, company, err := s.principal(r.Context(), sess)
	if err != nil {
		return err
	}
	configs, err := s.Billing.Configs(r.Context(), company.ID)
	if err != nil {
		return err
	}
	v := billingView{Status: r.URL.Query().Get("status"), Statuses: billingStatuses, CompanyKey: company.Key}
	if v.Status != "" && !contains(billingStatuses, v.Status) {
		return errs.E(errs.Invalid, "status: %q is not one of %s", v.Status, strings.Join(billingStatuses, ", "))
	}
	for _, p := range billing.Providers {
		row := providerRow{Name: p, URL: baseURL(r) + "/webhooks/" + p + "/" + company.Key, TestURL: baseURL(r) + "/webhooks/" + p + "/" + company.Key + "/test"}
		for i := range configs {
			if configs[i].Provider == p {
				if configs[i].Test {
					row.Test = &configs[i]
				} else {
					row.Live = &configs[i]
				}
			}
		}
		v.Providers = append(v.Providers, row)
	}
	if v.Events, v.More, err = s.Billing.ListEvents(r.Context(), company.ID, false, billing.EventFilter{Status: v.Status}, 50); err != nil {
		return err
	}
	return s.render(w, http.StatusOK, "billing", view{Title: "Billing webhooks", Nav: "billing", Session: sess, Company: company,
		Flash: r.URL.Query().Get("done"), Data: v})
}

func (s *Server) configureBilling(w http.ResponseWriter, r *http.Request, sess *accounts.Session) error {
	if err := s.mustAct(sess); err != nil {
		return err
	}
	in := billing.ConfigInput{Provider: r.PathValue("provider"), Test: r.PostFormValue("mode") == "test", Secret: strings.TrimSpace(r.PostFormValue("secret")),
		PaymentsFrom: r.PostFormValue("payments_from"), Currency: strings.ToUpper(strings.TrimSpace(r.PostFormValue("currency")))}
	if _, err := s.Billing.Configure(r.Context(), sess.User.CompanyID, in); err != nil {
		return err
	}
	http.Redirect(w, r, "/app/billing?done="+urlQueryEscape(in.Provider+"'s signing secret saved (encrypted)."), http.StatusSeeOther)
	return nil
}

func (s *Server) replayBilling(w http.ResponseWriter, r *http.Request, sess *accounts.Session) error {
	if err := s.mustAct(sess); err != nil {
		return err
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return errs.E(errs.NotFound, "no such event")
	}
	n, err := s.Billing.Replay(r.Context(), sess.User.CompanyID, id, 0)
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/app/billing?done="+urlQueryEscape(fmt.Sprintf("%d event queued to run again.", n)), http.StatusSeeOther)
	return nil
}

type webhooksView struct {
	Hooks      []webhooks.Webhook
	Pager      pager
	Deliveries []webhooks.Delivery
	Selected   *webhooks.Webhook
	Secret     string
}

func (s *Server) webhooksPage(w http.ResponseWriter, r *http.Request, sess *accounts.Session) error {
	p, company, err := s.principal(r.Context(), sess)
	if err != nil {
		return err
	}
	l := listing[webhooks.Webhook]{name: "webhooks",
		fetch: func(pg store.Page) ([]webhooks.Webhook, store.Result, error) {
			return s.Webhooks.List(r.Context(), p, false, pg)
		},
		key:     func(x webhooks.Webhook) string { return x.Key },
		csvHead: []string{"key", "target_url", "events", "created_at"},
		csvRow: func(x webhooks.Webhook) []string {
			return []string{x.Key, x.TargetURL, strings.Join(x.Events, " "), csvTime(x.CreatedAt)}
		}}
	items, pg, done, err := l.page(w, r)
	if done || err != nil {
		return err
	}
	v := webhooksView{Hooks: items, Pager: pg}
	if k := r.URL.Query().Get("deliveries"); k != "" {
		hook, err := s.Webhooks.Get(r.Context(), p, k)
		if err != nil {
			return err
		}
		v.Selected = &hook
		if v.Deliveries, err = s.Webhooks.Deliveries(r.Context(), p, k, 50); err != nil {
			return err
		}
	}
	return s.render(w, http.StatusOK, "webhooks", view{Title: "Webhooks", Nav: "webhooks", Session: sess, Company: company,
		Flash: r.URL.Query().Get("done"), Data: v})
}

func (s *Server) createWebhook(w http.ResponseWriter, r *http.Request, sess *accounts.Session) error {
	if err := s.mustAct(sess); err != nil {
		return err
	}
	p, _, err := s.principal(r.Context(), sess)
	if err != nil {
		return err
	}
	target := strings.TrimSpace(r.PostFormValue("target_url"))
	events := strings.FieldsFunc(r.PostFormValue("events"), func(c rune) bool { return c == ',' || c == ' ' || c == '\n' || c == '\r' })
	hook, err := s.Webhooks.Create(r.Context(), p, webhooks.Input{TargetURL: &target, Events: events})
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/app/webhooks?deliveries="+hook.Key+"&done="+urlQueryEscape("Webhook created: its signing secret is shown on its row."), http.StatusSeeOther)
	return nil
}

func (s *Server) archiveWebhook(w http.ResponseWriter, r *http.Request, sess *accounts.Session) error {
	if err := s.mustAct(sess); err != nil {
		return err
	}
	p, _, err := s.principal(r.Context(), sess)
	if err != nil {
		return err
	}
	if _, err := s.Webhooks.Archive(r.Context(), p, r.PathValue("key")); err != nil {
		return err
	}
	http.Redirect(w, r, "/app/webhooks?done="+urlQueryEscape("Webhook archived: nothing more is sent to it."), http.StatusSeeOther)
	return nil
}

type offersView struct {
	Offers   []ledger.Offer
	Groups   []program.Group
	Triggers []string
}

func (s *Server) offers(w http.ResponseWriter, r *http.Request, sess *accounts.Session) error {
	p, company, err := s.principal(r.Context(), sess)
	if err != nil {
		return err
	}
	v := offersView{Triggers: []string{"transaction", "customer", "action", "lead_approved", "deal_won"}}
	if v.Offers, _, err = s.Ledger.ListOffers(r.Context(), p, false, store.Page{Limit: 100, Desc: true}); err != nil {
		return err
	}
	if v.Groups, _, err = s.Program.ListGroups(r.Context(), p, store.Page{Limit: 100}); err != nil {
		return err
	}
	return s.render(w, http.StatusOK, "offers", view{Title: "Offers and groups", Nav: "offers", Session: sess, Company: company,
		Flash: r.URL.Query().Get("done"), Data: v})
}

// createOffer reads the offer form: the same fields, and the same checks,
// as POST /api/v2/offers. Amounts are in major units here ("25.00").
func (s *Server) createOffer(w http.ResponseWriter, r *http.Request, sess *accounts.Session) error {
	if err := s.mustAct(sess); err != nil {
		return err
	}
	p, _, err := s.principal(r.Context(), sess)
	if err != nil {
		return err
	}
	f := func(k string) string { return strings.TrimSpace(r.PostFormValue(k)) }
	name, trigger, typ := f("name"), f("trigger"), f("type")
	in := ledger.OfferInput{Set: map[string]bool{"name": true, "trigger": true, "type": true}, Name: &name, Trigger: &trigger, Type: &typ}
	if v := f("rate"); v != "" {
		in.Set["rate"], in.Rate = true, &v
	}
	if v := f("amount"); v != "" {
		cur := strings.ToUpper(f("currency"))
		if cur == "" {
			cur = "USD"
		}
		minor, err := moneyMinor(v, cur)
		if err != nil {
			return err
		}
		in.Set["amount"], in.Amount, in.Set["currency"], in.Currency = true, &minor, true, &cur
	}
	for _, field := range []struct {
		name string
		dst  **int
	}{{"duration_months", &in.DurationMonths}, {"hold_days", &in.HoldDays}} {
		if v := f(field.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return errs.E(errs.Invalid, "'%s' must be a whole number: %q", field.name, v)
			}
			in.Set[field.name], *field.dst = true, &n
		}
	}
	if v := f("group_key"); v != "" {
		in.Set["group_key"], in.GroupKey = true, &v
	}
	if _, err := s.Ledger.CreateOffer(r.Context(), p, in); err != nil {
		return err
	}
	http.Redirect(w, r, "/app/offers?done="+urlQueryEscape("Offer "+name+" created: it applies to what happens from now on."), http.StatusSeeOther)
	return nil
}

func (s *Server) archiveOffer(w http.ResponseWriter, r *http.Request, sess *accounts.Session) error {
	if err := s.mustAct(sess); err != nil {
		return err
	}
	p, _, err := s.principal(r.Context(), sess)
	if err != nil {
		return err
	}
	if _, err := s.Ledger.ArchiveOffer(r.Context(), p, r.PathValue("key")); err != nil {
		return err
	}
	http.Redirect(w, r, "/app/offers?done="+urlQueryEscape("Offer archived: rewards it made stay."), http.StatusSeeOther)
	return nil
}

func (s *Server) createGroup(w http.ResponseWriter, r *http.Request, sess *accounts.Session) error {
	if err := s.mustAct(sess); err != nil {
		return err
	}
	p, _, err := s.principal(r.Context(), sess)
	if err != nil {
		return err
	}
	name := strings.TrimSpace(r.PostFormValue("name"))
	if _, err := s.Program.CreateGroup(r.Context(), p, program.GroupInput{Name: name}); err != nil {
		return err
	}
	http.Redirect(w, r, "/app/offers?done="+urlQueryEscape("Group "+name+" created."), http.StatusSeeOther)
	return nil
}

// runPayouts gathers a month's approved rewards into payouts.
func (s *Server) runPayouts(w http.ResponseWriter, r *http.Request, sess *accounts.Session) error {
	if err := s.mustAct(sess); err != nil {
		return err
	}
	period := strings.TrimSpace(r.PostFormValue("period"))
	if period == "" {
		period = time.UnixMilli(s.now()).UTC().AddDate(0, -1, 0).Format("2006-01")
	}
	res, err := s.Ledger.RunPayouts(r.Context(), sess.User.CompanyID, period)
	if err != nil {
		return err
	}
	msg := fmt.Sprintf("%s: %d payouts made", period, len(res.Created))
	if res.CarriedOver > 0 {
		msg += fmt.Sprintf(", %d totals carried over (below the minimum)", res.CarriedOver)
	}
	http.Redirect(w, r, "/app/payouts?period="+period+"&done="+urlQueryEscape(msg+"."), http.StatusSeeOther)
	return nil
}

// moneyMinor reads an amount in major units ("25.00") of currency.
func moneyMinor(v, currency string) (int64, error) { return money.MajorToMinor("amount", v, currency) }

// exportPayouts writes a period's payouts as the payment file the API's
// export gives (one row a payout, with the partner's payment details).
func (s *Server) exportPayouts(w http.ResponseWriter, r *http.Request, sess *accounts.Session) error {
	p, _, err := s.principal(r.Context(), sess)
	if err != nil {
		return err
	}
	period := r.URL.Query().Get("period")
	if _, err := ledger.ParsePeriod(period); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="payouts-%s.csv"`, period))
	return s.Ledger.ExportPayouts(r.Context(), p, period, w)
}
