package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/partnerd/partnerd/internal/program"
)

// Account is an organization an agency referred: the people of one email
// domain (or, at a public mail provider, one person), across programs.
type Account struct {
	Name            string // the domain, or the email for a public mail address
	Domain          string
	Programs        []string
	Contacts        []Contact
	FirstReferredAt int64
}

// Contact is a person an agency referred to a program.
type Contact struct {
	Email       string
	Name        string
	Program     string
	CustomerKey string
	CreatedAt   int64
}

// Deal is an opportunity: a program's own deal where the source has deals
// (a vendor's key pair), or else one per referral that paid, whose stages
// are referred, paying and, when its payments were all refunded, refunded.
type Deal struct {
	Program     string
	Key         string // the deal's key, or the referred customer's
	Origin      string // source or referral
	Name        string // the account's name
	Stage       string
	Amount      int64 // the deal's amount, or the referral's revenue
	Currency    string
	FirstPaidAt *int64
	LastPaidAt  *int64
	History     []StageChange
}

// StageChange is one move of a deal, when the hub saw it (a source deal)
// or when it happened (a referral's payments).
type StageChange struct {
	From *string
	To   string
	At   int64
}

// Accounts groups a workspace's referred customers into organizations.
func (s *Service) Accounts(ctx context.Context, workspace string) ([]Account, error) {
	return cached(ctx, s, workspace, "accounts", func() ([]Account, error) { return s.accounts(ctx, workspace) })
}

// Contacts are the accounts' contacts, newest first.
func (s *Service) Contacts(ctx context.Context, workspace string) ([]Contact, error) {
	return cached(ctx, s, workspace, "contacts", func() ([]Contact, error) {
		accts, err := s.Accounts(ctx, workspace)
		if err != nil {
			return nil, err
		}
		var all []Contact
		for _, a := range accts {
			all = append(all, a.Contacts...)
		}
		sort.SliceStable(all, func(i, j int) bool { return all[i].CreatedAt > all[j].CreatedAt })
		return all, nil
	})
}

func (s *Service) accounts(ctx context.Context, workspace string) ([]Account, error) {
	all, err := s.liveRows(ctx, workspace)
	if err != nil {
		return nil, err
	}
	ps := newPrograms(all)
	byName := map[string]*Account{}
	progs := map[string]map[string]bool{}
	for _, r := range all {
		if r.stream != "customers" || r.archived || r.email == nil {
			continue
		}
		name, domain := deref(r.domain), deref(r.domain)
		if domain == "" || program.PublicMailDomain(domain) {
			name = *r.email // a person, not an organization
		}
		a := byName[name]
		if a == nil {
			a = &Account{Name: name, Domain: domain, FirstReferredAt: r.createdAt}
			byName[name] = a
			progs[name] = map[string]bool{}
		}
		p := ps.of(r).label()
		progs[name][p] = true
		a.Contacts = append(a.Contacts, Contact{Email: *r.email, Name: rawName(r.raw), Program: p, CustomerKey: r.key, CreatedAt: r.createdAt})
		a.FirstReferredAt = min(a.FirstReferredAt, r.createdAt)
	}
	out := make([]Account, 0, len(byName))
	for name, a := range byName {
		for p := range progs[name] {
			a.Programs = append(a.Programs, p)
		}
		sort.Strings(a.Programs)
		out = append(out, *a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// rawName is a record's "name", if it has one.
func rawName(raw string) string {
	var v struct {
		Name string `json:"name"`
	}
	if json.Unmarshal([]byte(raw), &v) != nil {
		return ""
	}
	return v.Name
}

// Deals lists a workspace's deals: each program's own where it has any,
// else one per paying referral.
func (s *Service) Deals(ctx context.Context, workspace string) ([]Deal, error) {
	return cached(ctx, s, workspace, "deals", func() ([]Deal, error) { return s.deals(ctx, workspace) })
}

func (s *Service) deals(ctx context.Context, workspace string) ([]Deal, error) {
	all, err := s.liveRows(ctx, workspace)
	if err != nil {
		return nil, err
	}
	ps := newPrograms(all)
	var out []Deal
	sourceDeals := map[string]bool{} // connections whose source has deals
	var ids []int64
	for _, r := range all {
		if r.stream == "deals" && !r.archived {
			sourceDeals[r.conn] = true
			ids = append(ids, r.id)
		}
	}
	history, err := s.changes(ctx, "status", ids)
	if err != nil {
		return nil, err
	}
	type money struct {
		revenue     int64
		currency    string
		first, last *int64
	}
	paid := map[string]*money{} // conn/customer key
	for _, r := range all {
		if r.stream != "transactions" || r.archived || r.customerRef == nil {
			continue
		}
		k := r.conn + "/" + *r.customerRef
		m := paid[k]
		if m == nil {
			m = &money{currency: deref(r.currency)}
			paid[k] = m
		}
		amount := deref64(r.amount)
		m.revenue += amount
		if amount > 0 {
			at := r.createdAt
			if m.first == nil || at < *m.first {
				m.first = &at
			}
			if m.last == nil || at > *m.last {
				m.last = &at
			}
		}
	}
	for _, r := range all {
		switch {
		case r.stream == "deals" && !r.archived:
			d := Deal{Program: ps.of(r).label(), Key: r.key, Origin: "source", Name: rawString(r.raw, "account_name"),
				Stage: deref(r.status), Amount: deref64(r.amount), Currency: deref(r.currency), History: history[r.id]}
			out = append(out, d)
		case r.stream == "customers" && !r.archived && !sourceDeals[r.conn]:
			m := paid[r.conn+"/"+r.key]
			if m == nil || m.first == nil {
				continue // a referral that never paid is not a deal
			}
			name := deref(r.domain)
			if name == "" || program.PublicMailDomain(name) {
				name = deref(r.email)
			}
			d := Deal{Program: ps.of(r).label(), Key: r.key, Origin: "referral", Name: name, Stage: "paying", Amount: m.revenue,
				Currency: m.currency, FirstPaidAt: m.first, LastPaidAt: m.last,
				History: []StageChange{{To: "referred", At: r.createdAt}, {From: ptr("referred"), To: "paying", At: *m.first}}}
			if m.revenue <= 0 {
				d.Stage = "refunded"
				d.History = append(d.History, StageChange{From: ptr("paying"), To: "refunded", At: *m.last})
			}
			out = append(out, d)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Program+"\x00"+out[i].Key < out[j].Program+"\x00"+out[j].Key })
	return out, nil
}

// changes loads one field's history (status or terms) of records, by
// record id.
func (s *Service) changes(ctx context.Context, field string, ids []int64) (map[int64][]StageChange, error) {
	out := map[int64][]StageChange{}
	for len(ids) > 0 {
		n := min(len(ids), 500)
		args := []any{field}
		for _, id := range ids[:n] {
			args = append(args, id)
		}
		rows, err := s.db.Query(ctx, "SELECT record_id, from_value, to_value, at FROM hub_record_changes WHERE field = ? AND record_id IN ("+
			strings.TrimSuffix(strings.Repeat("?, ", n), ", ")+") ORDER BY id", args...)
		if err != nil {
			return nil, fmt.Errorf("read status history: %w", err)
		}
		for rows.Next() {
			var id int64
			var c StageChange
			var to *string
			if err := rows.Scan(&id, &c.From, &to, &c.At); err != nil {
				rows.Close()
				return nil, fmt.Errorf("scan status history: %w", err)
			}
			c.To = deref(to)
			out[id] = append(out[id], c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read status history: %w", err)
		}
		ids = ids[n:]
	}
	return out, nil
}

// rawString reads one string field of a raw record.
func rawString(raw, field string) string {
	var m map[string]json.RawMessage
	if json.Unmarshal([]byte(raw), &m) != nil {
		return ""
	}
	return deref(text(m[field]))
}

func ptr[T any](v T) *T { return &v }

// Program is one of the agency's programs as a connection sees it: the
// vendor, the partnership with its group (tier), its offers now, and how
// those terms changed between syncs.
type Program struct {
	Connection     string
	Name           string
	CompanyKey     string
	PartnershipKey string
	PartnerKey     string
	Group          json.RawMessage
	Status         string
	Offers         json.RawMessage
	JoinedAt       int64
	Terms          []TermsChange
}

// TermsChange is a program's offers and group as the hub saw them from At on.
type TermsChange struct {
	At    int64
	Terms json.RawMessage
}

// Programs lists a workspace's partnerships (programs), with their terms'
// history.
func (s *Service) Programs(ctx context.Context, workspace string) ([]Program, error) {
	return cached(ctx, s, workspace, "programs", func() ([]Program, error) { return s.programs(ctx, workspace) })
}

func (s *Service) programs(ctx context.Context, workspace string) ([]Program, error) {
	all, err := s.liveRows(ctx, workspace)
	if err != nil {
		return nil, err
	}
	var ids []int64
	for _, r := range all {
		if r.stream == "partnerships" {
			ids = append(ids, r.id)
		}
	}
	history, err := s.changes(ctx, "terms", ids)
	if err != nil {
		return nil, err
	}
	var out []Program
	for _, r := range all {
		if r.stream != "partnerships" {
			continue
		}
		var raw struct {
			PartnerKey string          `json:"partner_key"`
			Group      json.RawMessage `json:"group"`
			Offers     json.RawMessage `json:"offers"`
			JoinedAt   json.RawMessage `json:"joined_at"`
		}
		_ = json.Unmarshal([]byte(r.raw), &raw) // a field of another shape stays empty
		p := Program{Connection: r.conn, Name: prog{deref(r.companyKey), deref(r.companyName)}.label(), CompanyKey: deref(r.companyKey),
			PartnershipKey: r.key, PartnerKey: raw.PartnerKey, Group: nullJSON(raw.Group), Status: deref(r.status), Offers: nullJSON(raw.Offers),
			JoinedAt: millis(raw.JoinedAt)}
		if p.JoinedAt == 0 {
			p.JoinedAt = r.createdAt
		}
		for _, c := range history[r.id] {
			p.Terms = append(p.Terms, TermsChange{At: c.At, Terms: nullJSON(json.RawMessage(c.To))})
		}
		out = append(out, p)
	}
	return out, nil
}

func nullJSON(v json.RawMessage) json.RawMessage {
	if len(v) == 0 || !json.Valid(v) {
		return json.RawMessage("null")
	}
	return v
}

// Referral is a customer the agency referred to a program, with what it
// paid and earned.
type Referral struct {
	Program     string
	CustomerKey string
	ExternalKey string // the vendor's own customer_key, where the source shows it
	Email       string
	Name        string
	// Status is the referral's assignment: active (the partner's, live at
	// the source), archived (the vendor archived the customer), or removed
	// (a sweep no longer found it in the partner's lists: the vendor moved
	// it to another partner or deleted it), with RemovedAt.
	Status        string
	RemovedAt     *int64
	Partnership   string // the partnership it is attributed to
	Attribution   string // how the source says it was attributed (source_type), where it says
	CreatedAt     int64
	Paying        bool
	Revenue       map[string]int64 // by currency
	RewardsEarned map[string]int64 // live rewards, by currency
}

// Referrals lists a workspace's referred customers.
func (s *Service) Referrals(ctx context.Context, workspace string) ([]Referral, error) {
	return cached(ctx, s, workspace, "referrals", func() ([]Referral, error) { return s.referrals(ctx, workspace) })
}

func (s *Service) referrals(ctx context.Context, workspace string) ([]Referral, error) {
	all, err := s.liveRows(ctx, workspace)
	if err != nil {
		return nil, err
	}
	ps := newPrograms(all)
	revenue, earned := map[string]map[string]int64{}, map[string]map[string]int64{}
	paying := map[string]bool{}
	add := func(m map[string]map[string]int64, k, cur string, v int64) {
		if m[k] == nil {
			m[k] = map[string]int64{}
		}
		m[k][cur] += v
	}
	for _, r := range all {
		if r.archived || r.customerRef == nil {
			continue
		}
		k := r.conn + "/" + *r.customerRef
		switch r.stream {
		case "transactions":
			add(revenue, k, deref(r.currency), deref64(r.amount))
			if deref64(r.amount) > 0 {
				paying[k] = true
			}
		case "rewards":
			add(earned, k, deref(r.currency), deref64(r.amount))
		}
	}
	// Customers that left the partner's lists are referrals too: an agency
	// wants to see what it lost, and when.
	removed, err := s.records(ctx, workspace, "r.deleted_at IS NOT NULL AND r.stream = 'customers'")
	if err != nil {
		return nil, err
	}
	var out []Referral
	for _, r := range append(all, removed...) {
		if r.stream != "customers" {
			continue
		}
		k := r.conn + "/" + r.key
		status := "active"
		switch {
		case r.deletedAt != nil:
			status = "removed"
		case r.archived:
			status = "archived"
		}
		ref := Referral{Program: ps.of(r).label(), CustomerKey: r.key, ExternalKey: rawString(r.raw, "customer_key"), Email: deref(r.email),
			Name: rawName(r.raw), Status: status, RemovedAt: r.deletedAt, Partnership: deref(r.partnershipRef),
			Attribution: rawString(r.raw, "source_type"), CreatedAt: r.createdAt, Paying: paying[k],
			Revenue: revenue[k], RewardsEarned: earned[k]}
		if ref.Revenue == nil {
			ref.Revenue = map[string]int64{}
		}
		if ref.RewardsEarned == nil {
			ref.RewardsEarned = map[string]int64{}
		}
		out = append(out, ref)
	}
	// Newest first, as every list: pages and the API show them so, and
	// sorting 43,000 on each page view cost 30 ms.
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt > out[j].CreatedAt })
	return out, nil
}

// Lead is a lead a source holds (a vendor's key pair syncs them), with its
// status history as the hub saw it.
type Lead struct {
	Program     string
	Key         string
	ExternalKey string
	PartnerKey  string
	Status      string
	Approved    bool
	Amount      *int64
	Currency    string
	CreatedAt   int64
	History     []StageChange
}

// Leads lists a workspace's synced leads.
func (s *Service) Leads(ctx context.Context, workspace string) ([]Lead, error) {
	return cached(ctx, s, workspace, "leads", func() ([]Lead, error) { return s.leads(ctx, workspace) })
}

func (s *Service) leads(ctx context.Context, workspace string) ([]Lead, error) {
	all, err := s.liveRows(ctx, workspace)
	if err != nil {
		return nil, err
	}
	ps := newPrograms(all)
	var ids []int64
	for _, r := range all {
		if r.stream == "leads" {
			ids = append(ids, r.id)
		}
	}
	history, err := s.changes(ctx, "status", ids)
	if err != nil {
		return nil, err
	}
	var out []Lead
	for _, r := range all {
		if r.stream != "leads" || r.archived {
			continue
		}
		var raw struct {
			ExternalKey *string         `json:"external_key"`
			PartnerKey  *string         `json:"partner_key"`
			Approved    json.RawMessage `json:"approved"`
		}
		_ = json.Unmarshal([]byte(r.raw), &raw) // a field of another shape stays empty
		out = append(out, Lead{Program: ps.of(r).label(), Key: r.key, ExternalKey: deref(raw.ExternalKey), PartnerKey: deref(raw.PartnerKey),
			Status: deref(r.status), Approved: flag(raw.Approved), Amount: r.amount, Currency: deref(r.currency), CreatedAt: r.createdAt,
			History: history[r.id]})
	}
	return out, nil
}
