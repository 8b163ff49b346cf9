package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/partnerd/partnerd/internal/errs"
	"github.com/partnerd/partnerd/internal/hub"
)

// UseHub sets the partner hub's service.
func (s *Server) UseHub(h *hub.Service) { s.hub = h }

type workspaceKey struct{}

// hubOnly authenticates a hub workspace token (Bearer hubk_…): a workspace
// sees only its own connections and reports.
func (s *Server) hubOnly(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, cred, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		var err error
		if !strings.EqualFold(scheme, "Bearer") || !hub.IsToken(strings.TrimSpace(cred)) {
			err = errs.E(errs.Unauthorized, "Unauthorized: the hub's endpoints need a workspace token (Bearer hubk_…, from partnerd hub token)")
		} else {
			var ws hub.Workspace
			if ws, err = s.hub.Authenticate(r.Context(), strings.TrimSpace(cred)); err == nil {
				err = h(w, r.WithContext(context.WithValue(r.Context(), workspaceKey{}, ws)))
			}
		}
		if err != nil {
			s.writeError(w, r, err)
		}
	})
}

func workspaceOf(r *http.Request) hub.Workspace {
	ws, _ := r.Context().Value(workspaceKey{}).(hub.Workspace)
	return ws
}

var createHubConnectionSchema = schema{strict: true, fields: []field{
	{name: "name", kind: kString, required: true, min: 1, max: 255},
	{name: "base_url", kind: kString, nullable: true, max: 2000},
	{name: "token", kind: kString, nullable: true, max: 2000},
	{name: "public_key", kind: kString, nullable: true, max: 255},
	{name: "secret_key", kind: kString, nullable: true, max: 2000},
}}

type workspaceJSON struct {
	Key  string `json:"key"`
	Name string `json:"name"`
}

type hubConnectionJSON struct {
	Key          string        `json:"key"`
	Name         string        `json:"name"`
	BaseURL      string        `json:"base_url"`
	Auth         string        `json:"auth"`
	Status       string        `json:"status"`
	StatusReason *string       `json:"status_reason"`
	LastSyncAt   *int64        `json:"last_sync_at"`
	NextSyncAt   int64         `json:"next_sync_at"`
	CreatedAt    int64         `json:"created_at"`
	UpdatedAt    int64         `json:"updated_at"`
	Workspace    workspaceJSON `json:"workspace"`
}

func renderHubConnection(ws hub.Workspace) func(hub.Connection) hubConnectionJSON {
	return func(c hub.Connection) hubConnectionJSON {
		return hubConnectionJSON{Key: c.Key, Name: c.Name, BaseURL: c.BaseURL, Auth: c.AuthKind, Status: c.Status, StatusReason: c.StatusReason,
			LastSyncAt: c.LastSyncAt, NextSyncAt: c.NextSyncAt, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt,
			Workspace: workspaceJSON{Key: ws.Key, Name: ws.Name}}
	}
}

func (s *Server) createHubConnection(w http.ResponseWriter, r *http.Request) error {
	b, err := decodeBody(w, r, createHubConnectionSchema)
	if err != nil {
		return err
	}
	ws := workspaceOf(r)
	in := hub.ConnectInput{Workspace: ws.Key, Name: *b.str("name")}
	for name, dst := range map[string]*string{"base_url": &in.BaseURL, "token": &in.Token, "public_key": &in.PublicKey, "secret_key": &in.SecretKey} {
		if v := b.str(name); v != nil {
			*dst = *v
		}
	}
	c, err := s.hub.Connect(r.Context(), in)
	return reply(w, c, err, renderHubConnection(ws), "Connection saved")
}

func (s *Server) listHubConnections(w http.ResponseWriter, r *http.Request) error {
	ws := workspaceOf(r)
	items, err := s.hub.Connections(r.Context(), ws.Key)
	if err != nil {
		return err
	}
	writeData(w, list{Items: renderAll(items, renderHubConnection(ws)), Total: len(items)}, "Connections retrieved")
	return nil
}

func (s *Server) getHubConnection(w http.ResponseWriter, r *http.Request) error {
	ws := workspaceOf(r)
	c, err := s.hub.WorkspaceConnection(r.Context(), ws, r.PathValue("key"))
	return reply(w, c, err, renderHubConnection(ws), "Connection retrieved")
}

func (s *Server) syncHubConnection(w http.ResponseWriter, r *http.Request) error {
	ws := workspaceOf(r)
	c, err := s.hub.SyncSoon(r.Context(), ws, r.PathValue("key"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, envelope{Data: renderHubConnection(ws)(c), Message: "Sync queued: it starts within a minute", Status: http.StatusAccepted})
	return nil
}

type streamJSON struct {
	Stream        string `json:"stream"`
	Records       int    `json:"records"`
	Deleted       int    `json:"deleted"`
	HighWater     int64  `json:"high_water"`
	InFlight      bool   `json:"in_flight"`
	LastSweepAt   int64  `json:"last_sweep_at"`
	LastSuccessAt *int64 `json:"last_success_at"`
}

func (s *Server) hubConnectionStreams(w http.ResponseWriter, r *http.Request) error {
	c, err := s.hub.WorkspaceConnection(r.Context(), workspaceOf(r), r.PathValue("key"))
	if err != nil {
		return err
	}
	sts, err := s.hub.Streams(r.Context(), c)
	if err != nil {
		return err
	}
	items := renderAll(sts, func(st hub.StreamState) streamJSON { return streamJSON(st) })
	writeData(w, list{Items: items, Total: len(items)}, "Streams retrieved")
	return nil
}

type moneyJSON struct {
	Currency string `json:"currency"`
	Revenue  int64  `json:"revenue"`
	Earned   int64  `json:"earned"`
	Approved int64  `json:"approved"`
	Paid     int64  `json:"paid"`
	Pending  int64  `json:"pending"`
	Held     int64  `json:"held"`
	Declined int64  `json:"declined"`
}

type programMonthJSON struct {
	Program    string      `json:"program"`
	CompanyKey string      `json:"company_key"`
	Month      string      `json:"month"`
	Referrals  int         `json:"referrals"`
	Money      []moneyJSON `json:"money"`
}

type missedJSON struct {
	Program  string `json:"program"`
	Kind     string `json:"kind"`
	Key      string `json:"key"`
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
	Reason   string `json:"reason"`
	At       int64  `json:"at"`
}

type reconciliationJSON struct {
	Connection  string `json:"connection"`
	Currency    string `json:"currency"`
	RewardsPaid int64  `json:"rewards_paid"`
	PayoutsPaid int64  `json:"payouts_paid"`
	Difference  int64  `json:"difference"`
}

type sharedAccountJSON struct {
	Domain    string   `json:"domain"`
	Programs  []string `json:"programs"`
	Customers int      `json:"customers"`
}

type hubReportJSON struct {
	Programs       []programMonthJSON   `json:"programs"`
	Missed         []missedJSON         `json:"missed"`
	Reconciliation []reconciliationJSON `json:"reconciliation"`
	SharedAccounts []sharedAccountJSON  `json:"shared_accounts"`
}

func (s *Server) hubReport(w http.ResponseWriter, r *http.Request) error {
	rep, err := s.hub.Report(r.Context(), workspaceOf(r).Key)
	if err != nil {
		return err
	}
	out := hubReportJSON{
		Programs: renderAll(rep.Programs, func(p hub.ProgramMonth) programMonthJSON {
			return programMonthJSON{Program: p.Program, CompanyKey: p.CompanyKey, Month: p.Month, Referrals: p.Referrals,
				Money: renderAll(p.Money, func(m hub.Money) moneyJSON { return moneyJSON(m) })}
		}),
		Missed:         renderAll(rep.Missed, func(m hub.Missed) missedJSON { return missedJSON(m) }),
		Reconciliation: renderAll(rep.Reconciliation, func(c hub.Reconciliation) reconciliationJSON { return reconciliationJSON(c) }),
		SharedAccounts: renderAll(rep.SharedAccounts, func(a hub.SharedAccount) sharedAccountJSON { return sharedAccountJSON(a) }),
	}
	writeData(w, out, "Report")
	return nil
}

type contactJSON struct {
	Email       string `json:"email"`
	Name        string `json:"name"`
	Program     string `json:"program"`
	CustomerKey string `json:"customer_key"`
	CreatedAt   int64  `json:"created_at"`
}

type accountJSON struct {
	Name            string        `json:"name"`
	Domain          string        `json:"domain"`
	Programs        []string      `json:"programs"`
	Contacts        []contactJSON `json:"contacts"`
	FirstReferredAt int64         `json:"first_referred_at"`
}

func (s *Server) hubAccounts(w http.ResponseWriter, r *http.Request) error {
	accts, err := s.hub.Accounts(r.Context(), workspaceOf(r).Key)
	if err != nil {
		return err
	}
	items := renderAll(accts, func(a hub.Account) accountJSON {
		return accountJSON{Name: a.Name, Domain: a.Domain, Programs: a.Programs, FirstReferredAt: a.FirstReferredAt,
			Contacts: renderAll(a.Contacts, func(c hub.Contact) contactJSON { return contactJSON(c) })}
	})
	writeData(w, list{Items: items, Total: len(items)}, "Accounts retrieved")
	return nil
}

type stageChangeJSON struct {
	From *string `json:"from"`
	To   string  `json:"to"`
	At   int64   `json:"at"`
}

type hubDealJSON struct {
	Program     string            `json:"program"`
	Key         string            `json:"key"`
	Origin      string            `json:"origin"`
	Name        string            `json:"name"`
	Stage       string            `json:"stage"`
	Amount      int64             `json:"amount"`
	Currency    string            `json:"currency"`
	FirstPaidAt *int64            `json:"first_paid_at"`
	LastPaidAt  *int64            `json:"last_paid_at"`
	History     []stageChangeJSON `json:"history"`
}

func (s *Server) hubDeals(w http.ResponseWriter, r *http.Request) error {
	deals, err := s.hub.Deals(r.Context(), workspaceOf(r).Key)
	if err != nil {
		return err
	}
	items := renderAll(deals, func(d hub.Deal) hubDealJSON {
		return hubDealJSON{Program: d.Program, Key: d.Key, Origin: d.Origin, Name: d.Name, Stage: d.Stage, Amount: d.Amount,
			Currency: d.Currency, FirstPaidAt: d.FirstPaidAt, LastPaidAt: d.LastPaidAt,
			History: renderAll(d.History, func(c hub.StageChange) stageChangeJSON { return stageChangeJSON(c) })}
	})
	writeData(w, list{Items: items, Total: len(items)}, "Deals retrieved")
	return nil
}

type termsChangeJSON struct {
	At    int64           `json:"at"`
	Terms json.RawMessage `json:"terms"`
}

type hubProgramJSON struct {
	Connection     string            `json:"connection"`
	Name           string            `json:"name"`
	CompanyKey     string            `json:"company_key"`
	PartnershipKey string            `json:"partnership_key"`
	PartnerKey     string            `json:"partner_key"`
	Group          json.RawMessage   `json:"group"`
	Status         string            `json:"status"`
	Offers         json.RawMessage   `json:"offers"`
	JoinedAt       int64             `json:"joined_at"`
	Terms          []termsChangeJSON `json:"terms_history"`
}

func (s *Server) hubPrograms(w http.ResponseWriter, r *http.Request) error {
	progs, err := s.hub.Programs(r.Context(), workspaceOf(r).Key)
	if err != nil {
		return err
	}
	items := renderAll(progs, func(p hub.Program) hubProgramJSON {
		return hubProgramJSON{Connection: p.Connection, Name: p.Name, CompanyKey: p.CompanyKey, PartnershipKey: p.PartnershipKey,
			PartnerKey: p.PartnerKey, Group: p.Group, Status: p.Status, Offers: p.Offers, JoinedAt: p.JoinedAt,
			Terms: renderAll(p.Terms, func(t hub.TermsChange) termsChangeJSON { return termsChangeJSON(t) })}
	})
	writeData(w, list{Items: items, Total: len(items)}, "Programs retrieved")
	return nil
}

type referralJSON struct {
	Program       string           `json:"program"`
	CustomerKey   string           `json:"customer_key"`
	ExternalKey   string           `json:"external_key"`
	Email         string           `json:"email"`
	Name          string           `json:"name"`
	Status        string           `json:"status"`
	RemovedAt     *int64           `json:"removed_at"`
	Partnership   string           `json:"partnership_key"`
	Attribution   string           `json:"attribution"`
	CreatedAt     int64            `json:"created_at"`
	Paying        bool             `json:"paying"`
	Revenue       map[string]int64 `json:"revenue"`
	RewardsEarned map[string]int64 `json:"rewards_earned"`
}

func (s *Server) hubReferrals(w http.ResponseWriter, r *http.Request) error {
	refs, err := s.hub.Referrals(r.Context(), workspaceOf(r).Key)
	if err != nil {
		return err
	}
	items := renderAll(refs, func(x hub.Referral) referralJSON { return referralJSON(x) })
	writeData(w, list{Items: items, Total: len(items)}, "Referrals retrieved")
	return nil
}

type hubLeadJSON struct {
	Program     string            `json:"program"`
	Key         string            `json:"key"`
	ExternalKey string            `json:"external_key"`
	PartnerKey  string            `json:"partner_key"`
	Status      string            `json:"status"`
	Approved    bool              `json:"approved"`
	Amount      *int64            `json:"amount"`
	Currency    string            `json:"currency"`
	CreatedAt   int64             `json:"created_at"`
	History     []stageChangeJSON `json:"history"`
}

func (s *Server) hubLeads(w http.ResponseWriter, r *http.Request) error {
	leads, err := s.hub.Leads(r.Context(), workspaceOf(r).Key)
	if err != nil {
		return err
	}
	items := renderAll(leads, func(l hub.Lead) hubLeadJSON {
		return hubLeadJSON{Program: l.Program, Key: l.Key, ExternalKey: l.ExternalKey, PartnerKey: l.PartnerKey, Status: l.Status,
			Approved: l.Approved, Amount: l.Amount, Currency: l.Currency, CreatedAt: l.CreatedAt,
			History: renderAll(l.History, func(c hub.StageChange) stageChangeJSON { return stageChangeJSON(c) })}
	})
	writeData(w, list{Items: items, Total: len(items)}, "Leads retrieved")
	return nil
}
