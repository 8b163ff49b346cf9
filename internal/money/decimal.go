package money

import (
	"fmt"
	"math/big"
	"strings"

	"github.com/partnerd/partnerd/internal/errs"
)

// Rounding is the one rounding rule partnerd applies to money: a computed
// amount is rounded to the currency's minor unit, half away from zero
// (12.5 cents → 13, -12.5 → -13), once, at the end of a calculation.
const Rounding = "half away from zero, to the currency's minor unit"

// Decimal parses a non-negative decimal string such as "20" or "12.5" with
// at most places digits after the point. field names the input for errors.
func Decimal(field, s string, places int) (*big.Rat, error) {
	bad := errs.E(errs.Invalid, "'%s' must be a non-negative decimal string with at most %d decimal places, such as \"12.5\": %q", field, places, s)
	whole, frac, dot := strings.Cut(s, ".")
	if whole == "" || len(whole) > 12 || (dot && (frac == "" || len(frac) > places)) {
		return nil, bad
	}
	for _, part := range []string{whole, frac} {
		for _, c := range part {
			if c < '0' || c > '9' {
				return nil, bad
			}
		}
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return nil, bad
	}
	return r, nil
}

// Round rounds r to an integer, half away from zero.
func Round(r *big.Rat) int64 {
	num, den := new(big.Int).Set(r.Num()), r.Denom()
	neg := num.Sign() < 0
	num.Abs(num)
	q, m := new(big.Int).QuoRem(num, den, new(big.Int))
	if m.Lsh(m, 1).Cmp(den) >= 0 {
		q.Add(q, big.NewInt(1))
	}
	if neg {
		q.Neg(q)
	}
	return q.Int64()
}

// Percent returns rate percent of amount (both in the same minor units),
// rounded by the Rounding rule, and the exact unrounded value as a string
// for explanations.
func Percent(amount int64, rate *big.Rat) (int64, string) {
	exact := new(big.Rat).Mul(new(big.Rat).SetInt64(amount), rate)
	exact.Quo(exact, big.NewRat(100, 1))
	return Round(exact), exact.FloatString(6)
}

// ToUSD converts a minor-unit amount of currency to US cents at usdRate
// dollars per unit of currency.
func ToUSD(amount int64, currency string, usdRate *big.Rat) int64 {
	r := new(big.Rat).Mul(new(big.Rat).SetInt64(amount), usdRate)
	// minor units of currency → units → cents
	r.Mul(r, new(big.Rat).SetFrac(big.NewInt(100), new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(Exponent(currency))), nil)))
	return Round(r)
}

// Format writes a minor-unit amount in major units with the currency's
// exponent, e.g. 1250 USD → "12.50 USD", 1250 JPY → "1250 JPY".
func Format(amount int64, currency string) string {
	return FormatPlain(amount, currency) + " " + currency
}

// FormatPlain is Format without the currency code ("12.50").
func FormatPlain(amount int64, currency string) string {
	exp := Exponent(currency)
	sign := ""
	if amount < 0 {
		sign, amount = "-", -amount
	}
	if exp == 0 {
		return fmt.Sprintf("%s%d", sign, amount)
	}
	div := int64(1)
	for i := 0; i < exp; i++ {
		div *= 10
	}
	return fmt.Sprintf("%s%d.%0*d", sign, amount/div, exp, amount%div)
}

// MajorToMinor converts a decimal amount in major units ("5.00") to minor
// units of currency, refusing more decimal places than the currency has.
func MajorToMinor(field, s, currency string) (int64, error) {
	exp := Exponent(currency)
	r, err := Decimal(field, s, 3)
	if err != nil {
		return 0, err
	}
	r.Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(exp)), nil)))
	if !r.IsInt() {
		return 0, errs.E(errs.Invalid, "'%s' has more decimal places than %s allows (%d)", field, currency, exp)
	}
	return r.Num().Int64(), nil
}
