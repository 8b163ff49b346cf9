package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/partnerd/partnerd/internal/errs"
	"github.com/partnerd/partnerd/internal/money"
	"github.com/partnerd/partnerd/internal/program"
	"github.com/partnerd/partnerd/internal/store"
)

// Rate is what one unit of a currency was worth in US dollars from a day on.
type Rate struct {
	Currency string
	Day      string // YYYY-MM-DD, UTC
	USDRate  string // decimal string
}

// ratePlaces bounds the precision of a loaded rate.
const ratePlaces = 10

// LoadRates stores exchange rates (replacing any for the same currency and
// day). All of them are checked before any is written.
func (s *Service) LoadRates(ctx context.Context, p program.Principal, rates []Rate) (int, error) {
	if len(rates) == 0 {
		return 0, errs.E(errs.Invalid, "'rates' must list at least one rate")
	}
	for i := range rates {
		r := &rates[i]
		cur, err := money.Currency(fmt.Sprintf("rates[%d].currency", i), r.Currency)
		if err != nil {
			return 0, err
		}
		r.Currency = cur
		if _, err := time.Parse("2006-01-02", r.Day); err != nil {
			return 0, errs.E(errs.Invalid, "'rates[%d].date' must be a day, YYYY-MM-DD: %q", i, r.Day)
		}
		v, err := money.Decimal(fmt.Sprintf("rates[%d].usd_rate", i), r.USDRate, ratePlaces)
		if err != nil {
			return 0, err
		}
		if v.Sign() <= 0 {
			return 0, errs.E(errs.Invalid, "'rates[%d].usd_rate' must be more than 0", i)
		}
	}
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		for _, r := range rates {
			if _, err := tx.Exec(ctx, `INSERT INTO exchange_rates (company_id, currency, day, usd_rate) VALUES (?, ?, ?, ?)
				ON CONFLICT (company_id, currency, day) DO UPDATE SET usd_rate = excluded.usd_rate`,
				p.CompanyID, r.Currency, r.Day, r.USDRate); err != nil {
				return fmt.Errorf("store rate: %w", err)
			}
		}
		return nil
	})
	return len(rates), err
}

// usdAmount converts amount to US cents at the latest rate loaded for its
// currency on or before the day of at. It is nil when no rate is known:
// partnerd never guesses a rate or fetches one.
func usdAmount(ctx context.Context, q store.Querier, companyID, amount int64, currency string, at int64) (*int64, error) {
	return rateMemo{}.usd(ctx, q, companyID, amount, currency, at)
}

// rateMemo remembers the rates read for one write (a cause's rewards, a
// batch of imported payments), which mostly share a currency and a day.
type rateMemo map[[2]string]*big.Rat

// usd is usdAmount through the memo.
func (m rateMemo) usd(ctx context.Context, q store.Querier, companyID, amount int64, currency string, at int64) (*int64, error) {
	if currency == "USD" {
		return &amount, nil
	}
	k := [2]string{currency, day(at)}
	r, seen := m[k]
	if !seen {
		var err error
		if r, err = usdRate(ctx, q, companyID, currency, at); err != nil {
			return nil, err
		}
		m[k] = r
	}
	if r == nil {
		return nil, nil
	}
	v := money.ToUSD(amount, currency, r)
	return &v, nil
}

// usdRate is the company's rate for currency on the day of at, or nil when
// it has loaded none for that day or before.
func usdRate(ctx context.Context, q store.Querier, companyID int64, currency string, at int64) (*big.Rat, error) {
	var rate string
	err := q.QueryRow(ctx, `SELECT usd_rate FROM exchange_rates WHERE company_id = ? AND currency = ? AND day <= ?
		ORDER BY day DESC LIMIT 1`, companyID, currency, day(at)).Scan(&rate)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("find exchange rate: %w", err)
	}
	r, ok := new(big.Rat).SetString(rate)
	if !ok {
		return nil, fmt.Errorf("stored exchange rate %q for %s is not a number", rate, currency)
	}
	return r, nil
}
