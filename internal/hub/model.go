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
	history, err := s.changes(ctx, ids)
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

// changes loads the status history of records, by record id.
func (s *Service) changes(ctx context.Context, ids []int64) (map[int64][]StageChange, error) {
	out := map[int64][]StageChange{}
	for len(ids) > 0 {
		n := min(len(ids), 500)
		args := make([]any, n)
		for i, id := range ids[:n] {
			args[i] = id
		}
		rows, err := s.db.Query(ctx, "SELECT record_id, from_value, to_value, at FROM hub_record_changes WHERE record_id IN ("+
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
