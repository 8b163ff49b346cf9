package money

import (
	"testing"

	"github.com/partnerd/partnerd/internal/errs"
)

func TestCurrency(t *testing.T) {
	for in, want := range map[string]string{"USD": "USD", "usd": "USD", " eur ": "EUR", "JPY": "JPY", "KWD": "KWD"} {
		got, err := Currency("currency", in)
		if err != nil || got != want {
			t.Errorf("Currency(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "US", "USDD", "ABC", "XXX", "XTS", "12$"} {
		if _, err := Currency("currency", in); errs.CodeOf(err) != errs.Invalid {
			t.Errorf("Currency(%q) accepted (err %v)", in, err)
		}
	}
}

func TestExponent(t *testing.T) {
	for code, want := range map[string]int{"JPY": 0, "USD": 2, "EUR": 2, "KWD": 3, "BHD": 3} {
		if got := Exponent(code); got != want {
			t.Errorf("Exponent(%s) = %d, want %d", code, got, want)
		}
	}
}

func TestAmount(t *testing.T) {
	for _, v := range []int64{MinAmount, -1, 0, 1, MaxAmount} {
		if err := Amount("amount", v); err != nil {
			t.Errorf("Amount(%d): %v", v, err)
		}
	}
	for _, v := range []int64{MinAmount - 1, MaxAmount + 1} {
		if err := Amount("amount", v); err == nil {
			t.Errorf("Amount(%d) accepted", v)
		}
	}
}
