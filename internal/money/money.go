// Package money validates currencies and amounts. Amounts are int64 minor
// units of an ISO 4217 currency, never floats.
package money

import (
	"strings"

	"golang.org/x/text/currency"

	"github.com/partnerd/partnerd/internal/errs"
)

// The range PartnerStack accepts for a transaction amount, in minor units.
const (
	MinAmount = -50_000_000_000
	MaxAmount = 50_000_000_000
)

// Currency checks that code is a known ISO 4217 currency and returns it in
// upper case. field names the input field for the error message.
func Currency(field, code string) (string, error) {
	up := strings.ToUpper(strings.TrimSpace(code))
	if len(up) != 3 {
		return "", errs.E(errs.Invalid, "'%s' must be a 3-letter ISO 4217 currency code", field)
	}
	unit, err := currency.ParseISO(up)
	if err != nil || unit.String() == "XXX" || unit.String() == "XTS" {
		return "", errs.E(errs.Invalid, "'%s' is not a known ISO 4217 currency code: %s", field, code)
	}
	return unit.String(), nil
}

// Exponent is the number of minor-unit digits of a valid currency (JPY 0,
// USD 2, KWD 3).
func Exponent(code string) int {
	unit, err := currency.ParseISO(code)
	if err != nil {
		return 2
	}
	scale, _ := currency.Standard.Rounding(unit)
	return scale
}

// Amount checks that a minor-unit amount lies in the accepted range.
func Amount(field string, v int64) error {
	if v < MinAmount || v > MaxAmount {
		return errs.E(errs.Invalid, "'%s' must be between %d and %d (minor units)", field, int64(MinAmount), int64(MaxAmount))
	}
	return nil
}
