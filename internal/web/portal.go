package web

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/partnerd/partnerd/internal/accounts"
	"github.com/partnerd/partnerd/internal/errs"
	"github.com/partnerd/partnerd/internal/ledger"
	"github.com/partnerd/partnerd/internal/program"
	"github.com/partnerd/partnerd/internal/stats"
	"github.com/partnerd/partnerd/internal/store"
)

// The partner portal: a partner sees its own partnership only, through
// the same scoped principal a partner API token gets.

func (s *Server) partnerPrincipal(ctx context.Context, sess *accounts.Session) (program.Principal, *program.Company, error) {
	c, err := s.Program.CompanyByID(ctx, sess.User.CompanyID)
	if err != nil {
		return program.Principal{}, nil, fmt.Errorf("read company: %w", err)
	}
	return program.Principal{CompanyID: c.ID, CompanyKey: c.Key, CompanyName: c.Name, PartnershipID: sess.User.PartnershipID}, &c, nil
}

// ownPartnership is the partner's partnership.
func (s *Server) ownPartnership(ctx context.Context, p program.Principal) (program.Partnership, error) {
	list, _, err := s.Program.ListPartnerships(ctx, p, program.PartnershipFilter{IncludeArchived: true}, store.Page{Limit: 1})
	if err != nil {
		return program.Partnership{}, err
	}
	if len(list) == 0 {
		return program.Partnership{}, errs.E(errs.NotFound, "your partnership no longer exists")
	}
	return list[0], nil
}

type portalView struct {
	Partnership program.Partnership
	Links       []program.Link
	LinkBase    string
	Stats       stats.Month
	Statuses    []string
	Payouts     []ledger.Payout
}

func (s *Server) portal(w http.ResponseWriter, r *http.Request, sess *accounts.Session) error {
	p, company, err := s.partnerPrincipal(r.Context(), sess)
	if err != nil {
		return err
	}
	ps, err := s.ownPartnership(r.Context(), p)
	if err != nil {
		return err
	}
	v := portalView{Partnership: ps, LinkBase: baseURL(r), Statuses: rewardStatuses}
	if v.Links, err = s.links(r.Context(), p, ps.Key); err != nil {
		return err
	}
	if v.Stats, err = s.Stats.Total(r.Context(), p.CompanyID, ps.ID); err != nil {
		return err
	}
	if v.Payouts, _, err = s.Ledger.ListPayouts(r.Context(), p, ledger.PayoutFilter{}, store.Page{Limit: 6, Desc: true}); err != nil {
		return err
	}
	return s.render(w, http.StatusOK, "portal", view{Title: company.Name + " partner program", Nav: "portal", Session: sess, Company: company, Data: v})
}

func (s *Server) portalCustomers(w http.ResponseWriter, r *http.Request, sess *accounts.Session) error {
	p, company, err := s.partnerPrincipal(r.Context(), sess)
	if err != nil {
		return err
	}
	f := filters(r, "email")
	l := listing[program.Customer]{name: "my-customers",
		fetch: func(pg store.Page) ([]program.Customer, store.Result, error) {
			return s.Program.ListCustomers(r.Context(), p, program.CustomerFilter{Email: f["email"]}, pg)
		},
		key:     func(x program.Customer) string { return x.Key },
		csvHead: []string{"key", "email", "name", "created_at"},
		csvRow:  func(x program.Customer) []string { return []string{x.Key, x.Email, x.Name, csvTime(x.CreatedAt)} }}
	return showList(s, w, r, l, "portal_customers", view{Title: "My customers", Nav: "portal_customers", Session: sess, Company: company}, f, nil)
}

func (s *Server) portalRewards(w http.ResponseWriter, r *http.Request, sess *accounts.Session) error {
	p, company, err := s.partnerPrincipal(r.Context(), sess)
	if err != nil {
		return err
	}
	f := filters(r, "status")
	if f["status"] != "" && !contains(rewardStatuses, f["status"]) {
		return errs.E(errs.Invalid, "status: %q is not a reward status", f["status"])
	}
	l := listing[ledger.Reward]{name: "my-rewards",
		fetch: func(pg store.Page) ([]ledger.Reward, store.Result, error) {
			return s.Ledger.ListRewards(r.Context(), p, ledger.RewardFilter{Status: f["status"]}, pg)
		},
		key:     func(x ledger.Reward) string { return x.Key },
		csvHead: []string{"key", "status", "amount", "currency", "description", "customer_email", "decline_reason", "created_at"},
		csvRow: func(x ledger.Reward) []string {
			return []string{x.Key, x.Status, csvMoney(x.Amount, x.Currency), x.Currency, x.Description, csvOpt(x.CustomerEmail), csvOpt(x.DeclineReason), csvTime(x.CreatedAt)}
		}}
	return showList(s, w, r, l, "portal_rewards", view{Title: "My rewards", Nav: "portal_rewards", Session: sess, Company: company}, f, rewardStatuses)
}

func (s *Server) portalPayouts(w http.ResponseWriter, r *http.Request, sess *accounts.Session) error {
	p, company, err := s.partnerPrincipal(r.Context(), sess)
	if err != nil {
		return err
	}
	l := listing[ledger.Payout]{name: "my-payouts",
		fetch: func(pg store.Page) ([]ledger.Payout, store.Result, error) {
			return s.Ledger.ListPayouts(r.Context(), p, ledger.PayoutFilter{}, pg)
		},
		key:     func(x ledger.Payout) string { return x.Key },
		csvHead: []string{"key", "period", "status", "amount", "currency", "rewards", "external_reference"},
		csvRow: func(x ledger.Payout) []string {
			return []string{x.Key, x.Period, x.Status, csvMoney(x.Amount, x.Currency), x.Currency, strconv.Itoa(x.RewardCount), csvOpt(x.ExternalReference)}
		}}
	return showList(s, w, r, l, "portal_payouts", view{Title: "My payouts", Nav: "portal_payouts", Session: sess, Company: company}, nil, nil)
}

type tokensView struct {
	Tokens []program.PartnerToken
	New    string // a token just made, shown once
	API    string
}

func (s *Server) portalTokens(w http.ResponseWriter, r *http.Request, sess *accounts.Session) error {
	return s.showTokens(w, r, sess, "", "")
}

func (s *Server) showTokens(w http.ResponseWriter, r *http.Request, sess *accounts.Session, fresh, flash string) error {
	p, company, err := s.partnerPrincipal(r.Context(), sess)
	if err != nil {
		return err
	}
	list, err := s.Program.ListPartnerTokens(r.Context(), p)
	if err != nil {
		return err
	}
	if flash == "" {
		flash = r.URL.Query().Get("done")
	}
	return s.render(w, http.StatusOK, "portal_tokens", view{Title: "API tokens", Nav: "portal_tokens", Session: sess, Company: company,
		Flash: flash, Data: tokensView{Tokens: list, New: fresh, API: baseURL(r) + "/api/v2"}})
}

// createToken shows the new token on the response to the POST itself, not
// after a redirect: it is never stored, so it could not be shown again.
func (s *Server) createToken(w http.ResponseWriter, r *http.Request, sess *accounts.Session) error {
	p, _, err := s.partnerPrincipal(r.Context(), sess)
	if err != nil {
		return err
	}
	tok, err := s.Program.CreateOwnPartnerToken(r.Context(), p)
	if err != nil {
		return err
	}
	return s.showTokens(w, r, sess, tok, "A new token: copy it now, it is not shown again.")
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request, sess *accounts.Session) error {
	p, _, err := s.partnerPrincipal(r.Context(), sess)
	if err != nil {
		return err
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return errs.E(errs.NotFound, "no such token")
	}
	if err := s.Program.RevokePartnerToken(r.Context(), p, id); err != nil {
		return err
	}
	http.Redirect(w, r, "/portal/tokens?done="+urlQueryEscape("Token revoked."), http.StatusSeeOther)
	return nil
}
