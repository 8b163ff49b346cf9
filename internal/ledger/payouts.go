package ledger

import (
	"context"
	"database/sql"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"
	"time"

	"github.com/partnerd/partnerd/internal/errs"
	"github.com/partnerd/partnerd/internal/money"
	"github.com/partnerd/partnerd/internal/outbox"
	"github.com/partnerd/partnerd/internal/program"
	"github.com/partnerd/partnerd/internal/secret"
	"github.com/partnerd/partnerd/internal/store"
)

// Payout statuses.
const (
	PayoutPending = "pending"
	PayoutPaid    = "paid"
)

// Payout is what a partnership is paid for one period in one currency.
type Payout struct {
	ID                int64
	Key               string
	Period            string
	Amount            int64
	Currency          string
	Status            string
	ExternalReference *string
	RewardCount       int
	PaidAt            *int64
	CreatedAt         int64
	UpdatedAt         int64
	PartnershipKey    string
	PartnerKey        string
	PartnerEmail      string
	PartnerName       string
}

const payoutCols = `po.id, po.key, po.period, po.amount, po.currency, po.status, po.external_reference, po.reward_count,
	po.paid_at, po.created_at, po.updated_at, p.key, p.partner_key, p.email, p.first_name, p.last_name`

const payoutFrom = "payouts po JOIN partnerships p ON p.id = po.partnership_id"

func scanPayout(sc store.Scanner) (Payout, error) {
	var po Payout
	var first, last string
	err := sc.Scan(&po.ID, &po.Key, &po.Period, &po.Amount, &po.Currency, &po.Status, &po.ExternalReference, &po.RewardCount,
		&po.PaidAt, &po.CreatedAt, &po.UpdatedAt, &po.PartnershipKey, &po.PartnerKey, &po.PartnerEmail, &first, &last)
	if err != nil {
		return po, fmt.Errorf("scan payout: %w", err)
	}
	po.PartnerName = strings.TrimSpace(first + " " + last)
	return po, nil
}

// ParsePeriod checks a payout period, a month as YYYY-MM, and returns the
// first millisecond after it (UTC).
func ParsePeriod(period string) (end int64, err error) {
	t, err := time.Parse("2006-01", period)
	if err != nil || len(period) != 7 {
		return 0, errs.E(errs.Invalid, "'period' must be a month, YYYY-MM: %q", period)
	}
	return t.AddDate(0, 1, 0).UnixMilli(), nil
}

// RunResult says what a payout run did.
type RunResult struct {
	Period  string
	Created []Payout
	// CarriedOver counts partnership-currency totals left for a later
	// period because they were below the minimum (or not positive).
	CarriedOver int
}

// RunPayouts gathers each partnership's approved, unpaid rewards created
// before the end of period into one payout per currency. Totals below the
// company's minimum (and negative ones, left by clawbacks) stay where they
// are and join the next run. Running a period again pays nothing twice:
// rewards already in a payout are not gathered again.
func (s *Service) RunPayouts(ctx context.Context, companyID int64, period string) (RunResult, error) {
	res := RunResult{Period: period}
	if _, err := ParsePeriod(period); err != nil {
		return res, err
	}
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		var err error
		res, err = s.runPayouts(ctx, tx, companyID, period)
		return err
	})
	return res, err
}

func (s *Service) runPayouts(ctx context.Context, q store.Querier, companyID int64, period string) (RunResult, error) {
	res := RunResult{Period: period}
	end, err := ParsePeriod(period)
	if err != nil {
		return res, err
	}
	if _, err := s.ApprovePending(ctx, q); err != nil {
		return res, err
	}
	var minimum string
	if err := q.QueryRow(ctx, "SELECT payout_minimum FROM companies WHERE id = ?", companyID).Scan(&minimum); err != nil {
		return res, fmt.Errorf("find company: %w", err)
	}
	minRat, err := money.Decimal("payout_minimum", minimum, 3)
	if err != nil {
		return res, err
	}
	rows, err := q.Query(ctx, `SELECT partnership_id, currency, SUM(amount), COUNT(*) FROM rewards
		WHERE company_id = ? AND status = ? AND payout_id IS NULL AND archived = 0 AND test = 0 AND created_at < ?
		GROUP BY partnership_id, currency ORDER BY partnership_id, currency`, companyID, StatusApproved, end)
	if err != nil {
		return res, fmt.Errorf("total rewards: %w", err)
	}
	type total struct {
		partnershipID int64
		currency      string
		amount, count int64
	}
	var totals []total
	for rows.Next() {
		var t total
		if err := rows.Scan(&t.partnershipID, &t.currency, &t.amount, &t.count); err != nil {
			rows.Close()
			return res, fmt.Errorf("scan total: %w", err)
		}
		totals = append(totals, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return res, fmt.Errorf("total rewards: %w", err)
	}
	now := s.now()
	for _, t := range totals {
		if t.amount <= 0 || t.amount < minimumIn(minRat, t.currency) {
			res.CarriedOver++
			continue
		}
		var id int64
		key := secret.Key("pout")
		err := q.QueryRow(ctx, `INSERT INTO payouts (key, company_id, partnership_id, period, amount, currency, status, reward_count,
			created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (company_id, partnership_id, currency, period)
			DO NOTHING RETURNING id`, key, companyID, t.partnershipID, period, t.amount, t.currency, PayoutPending, t.count, now, now).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			// This period already has a payout for the partnership and
			// currency: later rewards wait for the next period's run.
			res.CarriedOver++
			continue
		}
		if err != nil {
			return res, fmt.Errorf("insert payout: %w", err)
		}
		if _, err := q.Exec(ctx, `UPDATE rewards SET payout_id = ?, updated_at = ? WHERE company_id = ? AND partnership_id = ?
			AND currency = ? AND status = ? AND payout_id IS NULL AND archived = 0 AND test = 0 AND created_at < ?`,
			id, now, companyID, t.partnershipID, t.currency, StatusApproved, end); err != nil {
			return res, fmt.Errorf("assign rewards: %w", err)
		}
		if err := outbox.Emit(ctx, q, companyID, outbox.PayoutCreated, outbox.KindPayout, id, now); err != nil {
			return res, err
		}
		po, err := s.payoutBy(ctx, q, program.Principal{CompanyID: companyID}, "po.id = ?", id)
		if err != nil {
			return res, err
		}
		res.Created = append(res.Created, po)
	}
	return res, nil
}

// minimumIn is the company's payout minimum (in major units) in minor units
// of currency, rounded by the one rounding rule.
func minimumIn(min *big.Rat, currency string) int64 {
	scale := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(money.Exponent(currency))), nil)
	return money.Round(new(big.Rat).Mul(min, new(big.Rat).SetInt(scale)))
}

// RunScheduled runs last month's payouts for every company that has not
// had them yet. The payout_runs row commits with the payouts, so with
// several nodes each company's month runs once.
func (s *Service) RunScheduled(ctx context.Context) (int, error) {
	period := time.UnixMilli(s.now()).UTC().AddDate(0, 0, -time.UnixMilli(s.now()).UTC().Day()).Format("2006-01")
	rows, err := s.db.Query(ctx, "SELECT id FROM companies WHERE id NOT IN (SELECT company_id FROM payout_runs WHERE period = ?) ORDER BY id", period)
	if err != nil {
		return 0, fmt.Errorf("find companies to pay: %w", err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, fmt.Errorf("scan company: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	ran := 0
	for _, id := range ids {
		err := s.db.Tx(ctx, func(tx *store.Tx) error {
			var got string
			err := tx.QueryRow(ctx, "INSERT INTO payout_runs (company_id, period, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING RETURNING period",
				id, period, s.now()).Scan(&got)
			if errors.Is(err, sql.ErrNoRows) {
				return nil // another node ran it
			}
			if err != nil {
				return fmt.Errorf("claim payout run: %w", err)
			}
			ran++
			_, err = s.runPayouts(ctx, tx, id, period)
			return err
		})
		if err != nil {
			return ran, err
		}
	}
	return ran, nil
}

func (s *Service) payoutBy(ctx context.Context, q store.Querier, p program.Principal, cond string, args ...any) (Payout, error) {
	query, all := p.Scoped("SELECT "+payoutCols+" FROM "+payoutFrom, "po.company_id", "po.partnership_id", cond, args...)
	return store.One(ctx, q, "payout", scanPayout, query, all...)
}

// GetPayout finds a payout by key.
func (s *Service) GetPayout(ctx context.Context, p program.Principal, key string) (Payout, error) {
	return s.payoutBy(ctx, s.db, p, "po.key = ?", key)
}

// MarkPaid records that the vendor paid a payout; its rewards become paid
// and immutable. Marking a paid payout again with the same reference is a
// no-op; with another reference it is a conflict.
func (s *Service) MarkPaid(ctx context.Context, p program.Principal, key, reference string) (Payout, error) {
	reference = strings.TrimSpace(reference)
	if reference == "" {
		return Payout{}, errs.E(errs.Invalid, "'external_reference' is required: the id of the payment in your payment system")
	}
	var out Payout
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		po, err := s.payoutBy(ctx, tx, p, "po.key = ?", key)
		if err != nil {
			return err
		}
		if po.Status == PayoutPaid {
			if deref(po.ExternalReference) != reference {
				return errs.E(errs.Conflict, "payout %s is already paid with reference %s", key, deref(po.ExternalReference))
			}
			out = po
			return nil
		}
		now := s.now()
		if _, err := tx.Exec(ctx, "UPDATE payouts SET status = ?, external_reference = ?, paid_at = ?, updated_at = ? WHERE id = ?",
			PayoutPaid, reference, now, now, po.ID); err != nil {
			return fmt.Errorf("mark payout paid: %w", err)
		}
		ids, err := idsWhere(ctx, tx, "SELECT id FROM rewards WHERE payout_id = ?", po.ID)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "UPDATE rewards SET status = ?, updated_at = ? WHERE payout_id = ?", StatusPaid, now, po.ID); err != nil {
			return fmt.Errorf("mark rewards paid: %w", err)
		}
		if err := outbox.EmitAll(ctx, tx, p.CompanyID, outbox.RewardUpdated, outbox.KindReward, ids, now); err != nil {
			return err
		}
		if err := outbox.Emit(ctx, tx, p.CompanyID, outbox.PayoutPaid, outbox.KindPayout, po.ID, now); err != nil {
			return err
		}
		out, err = s.payoutBy(ctx, tx, p, "po.id = ?", po.ID)
		return err
	})
	return out, err
}

func idsWhere(ctx context.Context, q store.Querier, query string, args ...any) ([]int64, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list ids: %w", err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("scan id: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// PayoutFilter narrows a payout list.
type PayoutFilter struct {
	Period         string
	Status         string
	PartnershipKey string
}

// ListPayouts lists payouts the principal may see.
func (s *Service) ListPayouts(ctx context.Context, p program.Principal, f PayoutFilter, page store.Page) ([]Payout, store.Result, error) {
	spec := p.List(payoutCols, payoutFrom, "po", "po.partnership_id")
	if f.Period != "" {
		if _, err := ParsePeriod(f.Period); err != nil {
			return nil, store.Result{}, err
		}
		spec.Where("po.period = ?", f.Period)
	}
	if f.Status != "" && f.Status != PayoutPending && f.Status != PayoutPaid {
		return nil, store.Result{}, errs.E(errs.Invalid, "'status' must be one of pending, paid")
	}
	spec.WhereSet("po.status = ?", f.Status)
	spec.WhereRef("po.partnership_id", "partnerships", "key", p.CompanyID, f.PartnershipKey)
	page.Apply(&spec, "po")
	return store.List(ctx, s.db, spec, scanPayout)
}

// ExportPayouts writes a period's payouts as CSV, one row per payout, for a
// vendor's payment system. Amounts are in major units.
func (s *Service) ExportPayouts(ctx context.Context, p program.Principal, period string, w io.Writer) error {
	if _, err := ParsePeriod(period); err != nil {
		return err
	}
	rows, err := s.db.Query(ctx, "SELECT "+payoutCols+" FROM "+payoutFrom+" WHERE po.company_id = ? AND po.period = ? ORDER BY po.id",
		p.CompanyID, period)
	if err != nil {
		return fmt.Errorf("export payouts: %w", err)
	}
	defer rows.Close()
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"payout_key", "period", "partner_key", "partner_email", "partner_name", "amount", "currency",
		"amount_minor", "reward_count", "status", "external_reference", "created_at", "paid_at"})
	for rows.Next() {
		po, err := scanPayout(rows)
		if err != nil {
			return err
		}
		paid := ""
		if po.PaidAt != nil {
			paid = time.UnixMilli(*po.PaidAt).UTC().Format(time.RFC3339)
		}
		_ = cw.Write([]string{po.Key, po.Period, po.PartnerKey, po.PartnerEmail, csvSafe(po.PartnerName),
			money.FormatPlain(po.Amount, po.Currency), po.Currency, fmt.Sprint(po.Amount), fmt.Sprint(po.RewardCount), po.Status,
			deref(po.ExternalReference), time.UnixMilli(po.CreatedAt).UTC().Format(time.RFC3339), paid})
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("export payouts: %w", err)
	}
	cw.Flush()
	return cw.Error()
}

// csvSafe stops a spreadsheet from reading a partner-supplied name as a
// formula.
func csvSafe(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}
