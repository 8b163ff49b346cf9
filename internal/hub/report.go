package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/partnerd/partnerd/internal/program"
)

// Report is what an agency's workspace earned across its programs.
type Report struct {
	Programs       []ProgramMonth
	Missed         []Missed
	Reconciliation []Reconciliation
	SharedAccounts []SharedAccount
}

// ProgramMonth sums one program's month (UTC, by the records' creation).
type ProgramMonth struct {
	Program    string // the vendor company's name
	CompanyKey string
	Month      string // YYYY-MM
	Referrals  int    // customers referred
	Money      []Money
}

// Money is a program month's sums in one currency.
type Money struct {
	Currency string
	Revenue  int64 // the referrals' transactions (refunds subtract)
	Earned   int64 // rewards, whatever became of them
	Approved int64
	Paid     int64
	Pending  int64
	Held     int64
	Declined int64
}

// Missed is a reward the agency did not get, or a payment that earned none.
type Missed struct {
	Program  string
	Kind     string // declined, held, expired, clawed_back, referral_without_reward, transaction_without_reward
	Key      string // the reward, customer or transaction
	Amount   int64
	Currency string
	Reason   string
	At       int64
}

// Reconciliation sets what a connection's rewards say was paid against the
// payouts it received, per currency.
type Reconciliation struct {
	Connection  string
	Currency    string
	RewardsPaid int64
	PayoutsPaid int64
	Difference  int64 // RewardsPaid - PayoutsPaid
}

// SharedAccount is an organization (an email domain that is not a public
// mail provider's) referred in more than one program.
type SharedAccount struct {
	Domain    string
	Programs  []string
	Customers int
}

// row is a live record with its normalized columns.
type row struct {
	conn, stream, key                          string
	status, currency, companyKey, companyName  *string
	partnershipRef, customerRef, txRef, domain *string
	reason                                     *string
	amount                                     *int64
	archived, test                             bool
	createdAt                                  int64
	raw                                        string
	id                                         int64
	email                                      *string
	deletedAt                                  *int64 // when a sweep found it gone from the source
}

// Report reads a workspace's synced records (live, not test data) and
// reports per program and month, missed rewards, payout reconciliation and
// accounts shared between programs.
func (s *Service) Report(ctx context.Context, workspace string) (Report, error) {
	return cached(ctx, s, workspace, "report", func() (Report, error) { return s.report(ctx, workspace) })
}

func (s *Service) report(ctx context.Context, workspace string) (Report, error) {
	all, err := s.liveRows(ctx, workspace)
	if err != nil {
		return Report{}, err
	}
	return buildReport(all), nil
}

// liveRows reads a workspace's live records that are not test data.
func (s *Service) liveRows(ctx context.Context, workspace string) ([]row, error) {
	return s.records(ctx, workspace, "r.deleted_at IS NULL")
}

// records reads a workspace's records that are not test data and meet
// where, in the order the hub stored them.
func (s *Service) records(ctx context.Context, workspace, where string) ([]row, error) {
	rows, err := s.db.Query(ctx, `SELECT c.key, r.stream, r.key, r.status, r.currency, r.company_key, r.company_name, r.partnership_ref,
		r.customer_ref, r.transaction_ref, r.domain, r.reason, r.amount, r.archived, r.test, r.source_created_at, r.raw, r.id, r.email,
		r.deleted_at
		FROM hub_records r JOIN hub_connections c ON c.id = r.connection_id JOIN hub_workspaces w ON w.id = c.workspace_id
		WHERE (w.key = ? OR w.name = ?) AND `+where+` ORDER BY r.id`, workspace, workspace)
	if err != nil {
		return nil, fmt.Errorf("read records: %w", err)
	}
	defer rows.Close()
	var all []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.conn, &r.stream, &r.key, &r.status, &r.currency, &r.companyKey, &r.companyName, &r.partnershipRef,
			&r.customerRef, &r.txRef, &r.domain, &r.reason, &r.amount, &r.archived, &r.test, &r.createdAt, &r.raw, &r.id, &r.email,
			&r.deletedAt); err != nil {
			return nil, fmt.Errorf("scan record: %w", err)
		}
		if !r.test {
			all = append(all, r)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read records: %w", err)
	}
	return all, nil
}

type prog struct{ key, name string }

// programs resolves a record's program: its own company, else its
// partnership's, else its customer's.
type programs struct {
	partnerships map[string]prog // conn/partnership key
	customers    map[string]row  // conn/customer key
}

func newPrograms(all []row) programs {
	ps := programs{partnerships: map[string]prog{}, customers: map[string]row{}}
	for _, r := range all {
		switch r.stream {
		case "partnerships":
			ps.partnerships[r.conn+"/"+r.key] = prog{deref(r.companyKey), deref(r.companyName)}
		case "customers":
			ps.customers[r.conn+"/"+r.key] = r
		}
	}
	return ps
}

func (ps programs) of(r row) prog {
	if r.companyKey != nil {
		return prog{*r.companyKey, deref(r.companyName)}
	}
	if r.partnershipRef != nil {
		if p, ok := ps.partnerships[r.conn+"/"+*r.partnershipRef]; ok {
			return p
		}
	}
	if r.customerRef != nil && r.stream != "customers" {
		if cu, ok := ps.customers[r.conn+"/"+*r.customerRef]; ok {
			return ps.of(cu)
		}
	}
	return prog{"", "(unknown program)"}
}

func (p prog) label() string {
	if p.name == "" {
		return p.key
	}
	return p.name
}

func buildReport(all []row) Report {
	ps := newPrograms(all)
	programOf := ps.of
	label := func(p prog) string { return p.label() }
	type monthKey struct{ company, month string }
	months := map[monthKey]*ProgramMonth{}
	money := map[monthKey]map[string]*Money{}
	month := func(p prog, ms int64) *ProgramMonth {
		k := monthKey{p.key, time.UnixMilli(ms).UTC().Format("2006-01")}
		if months[k] == nil {
			months[k] = &ProgramMonth{Program: label(p), CompanyKey: p.key, Month: k.month}
			money[k] = map[string]*Money{}
		}
		return months[k]
	}
	at := func(p prog, ms int64, currency string) *Money {
		month(p, ms)
		k := monthKey{p.key, time.UnixMilli(ms).UTC().Format("2006-01")}
		if money[k][currency] == nil {
			money[k][currency] = &Money{Currency: currency}
		}
		return money[k][currency]
	}
	var rep Report
	rewardedTx, rewardedCustomer := map[string]bool{}, map[string]bool{}
	paidCustomer := map[string]bool{}
	type reconKey struct{ conn, currency string }
	recon := map[reconKey]*Reconciliation{}
	reconAt := func(conn, currency string) *Reconciliation {
		k := reconKey{conn, currency}
		if recon[k] == nil {
			recon[k] = &Reconciliation{Connection: conn, Currency: currency}
		}
		return recon[k]
	}
	for _, r := range all {
		if r.stream != "rewards" || r.archived {
			continue
		}
		if r.txRef != nil {
			rewardedTx[r.conn+"/"+*r.txRef] = true
		}
		if r.customerRef != nil {
			rewardedCustomer[r.conn+"/"+*r.customerRef] = true
		}
	}
	for _, r := range all {
		p := programOf(r)
		cur, amount := deref(r.currency), deref64(r.amount)
		switch r.stream {
		case "customers":
			if !r.archived {
				month(p, r.createdAt).Referrals++
			}
		case "transactions":
			if r.archived {
				continue
			}
			at(p, r.createdAt, cur).Revenue += amount
			if amount > 0 && r.customerRef != nil {
				paidCustomer[r.conn+"/"+*r.customerRef] = true
			}
			if amount > 0 && !rewardedTx[r.conn+"/"+r.key] {
				rep.Missed = append(rep.Missed, Missed{Program: label(p), Kind: "transaction_without_reward", Key: r.key, Amount: amount,
					Currency: cur, Reason: "a payment the partnership earned nothing on", At: r.createdAt})
			}
		case "rewards":
			if r.archived {
				continue // reversed before payout: not a reward any more
			}
			m := at(p, r.createdAt, cur)
			m.Earned += amount
			switch deref(r.status) {
			case "approved":
				m.Approved += amount
			case "paid":
				m.Paid += amount
				reconAt(r.conn, cur).RewardsPaid += amount
			case "pending":
				m.Pending += amount
			case "hold":
				m.Held += amount
				rep.Missed = append(rep.Missed, Missed{Program: label(p), Kind: "held", Key: r.key, Amount: amount, Currency: cur,
					Reason: orText(r.reason, "on hold"), At: r.createdAt})
			case "declined":
				m.Declined += amount
				rep.Missed = append(rep.Missed, Missed{Program: label(p), Kind: "declined", Key: r.key, Amount: amount, Currency: cur,
					Reason: orText(r.reason, "declined"), At: r.createdAt})
			}
			if amount < 0 {
				rep.Missed = append(rep.Missed, Missed{Program: label(p), Kind: "clawed_back", Key: r.key, Amount: amount, Currency: cur,
					Reason: "a reward taken back after its cause was reversed", At: r.createdAt})
			}
			if paymentStatus(r.raw) == "expired" {
				rep.Missed = append(rep.Missed, Missed{Program: label(p), Kind: "expired", Key: r.key, Amount: amount, Currency: cur,
					Reason: "expired before it was withdrawn", At: r.createdAt})
			}
		case "payouts":
			if st := deref(r.status); st == "paid" || st == "successful" {
				reconAt(r.conn, cur).PayoutsPaid += amount
			}
		}
	}
	for _, r := range all {
		if r.stream == "customers" && !r.archived && paidCustomer[r.conn+"/"+r.key] && !rewardedCustomer[r.conn+"/"+r.key] {
			rep.Missed = append(rep.Missed, Missed{Program: label(programOf(r)), Kind: "referral_without_reward", Key: r.key,
				Reason: "a paying referral that earned no reward", At: r.createdAt})
		}
	}
	for k, m := range months {
		for _, mo := range money[k] {
			m.Money = append(m.Money, *mo)
		}
		sort.Slice(m.Money, func(i, j int) bool { return m.Money[i].Currency < m.Money[j].Currency })
		rep.Programs = append(rep.Programs, *m)
	}
	sort.Slice(rep.Programs, func(i, j int) bool {
		a, b := rep.Programs[i], rep.Programs[j]
		return a.Program+"\x00"+a.Month < b.Program+"\x00"+b.Month
	})
	sort.SliceStable(rep.Missed, func(i, j int) bool { return rep.Missed[i].At < rep.Missed[j].At })
	for _, r := range recon {
		r.Difference = r.RewardsPaid - r.PayoutsPaid
		rep.Reconciliation = append(rep.Reconciliation, *r)
	}
	sort.Slice(rep.Reconciliation, func(i, j int) bool {
		return rep.Reconciliation[i].Connection+rep.Reconciliation[i].Currency < rep.Reconciliation[j].Connection+rep.Reconciliation[j].Currency
	})
	rep.SharedAccounts = sharedAccounts(all, programOf, label)
	return rep
}

// sharedAccounts groups referred customers by organization (their email
// domain, public mail providers aside) and keeps those in several programs.
func sharedAccounts(all []row, programOf func(row) prog, label func(prog) string) []SharedAccount {
	type acc struct {
		programs  map[string]bool
		customers int
	}
	byDomain := map[string]*acc{}
	for _, r := range all {
		if r.stream != "customers" || r.archived || r.domain == nil || program.PublicMailDomain(*r.domain) {
			continue
		}
		a := byDomain[*r.domain]
		if a == nil {
			a = &acc{programs: map[string]bool{}}
			byDomain[*r.domain] = a
		}
		a.programs[label(programOf(r))] = true
		a.customers++
	}
	var out []SharedAccount
	for d, a := range byDomain {
		if len(a.programs) < 2 {
			continue
		}
		sa := SharedAccount{Domain: d, Customers: a.customers}
		for p := range a.programs {
			sa.Programs = append(sa.Programs, p)
		}
		sort.Strings(sa.Programs)
		out = append(out, sa)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Domain < out[j].Domain })
	return out
}

// paymentStatus is PartnerStack's partner-side payment_status of a reward.
func paymentStatus(raw string) string {
	var v struct {
		PaymentStatus string `json:"payment_status"`
	}
	if !strings.Contains(raw, "payment_status") || json.Unmarshal([]byte(raw), &v) != nil {
		return ""
	}
	return v.PaymentStatus
}

func deref64(v *int64) int64 {
	if v == nil {
		return 0
	}
	return *v
}

func orText(s *string, def string) string {
	if s == nil || *s == "" {
		return def
	}
	return *s
}
