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

func TestPercentRoundsHalfAwayFromZero(t *testing.T) {
	cases := []struct {
		amount int64
		rate   string
		want   int64
	}{
		{1999, "12.5", 250},    // 249.875 → 250
		{100, "12.5", 13},      // 12.5 → 13 (half away from zero, not to even)
		{140, "12.5", 18},      // 17.5 → 18
		{-100, "12.5", -13},    // refunds round the same way, mirrored
		{-140, "12.5", -18},    //
		{1001, "20", 200},      // 200.2 → 200
		{3, "33.3333", 1},      // 0.999999 → 1
		{1, "49.9999", 0},      // 0.499999 → 0
		{0, "20", 0},           //
		{999_999, "0.01", 100}, // 99.9999 → 100
	}
	for _, c := range cases {
		r, err := Decimal("rate", c.rate, 4)
		if err != nil {
			t.Fatal(err)
		}
		if got, exact := Percent(c.amount, r); got != c.want {
			t.Errorf("Percent(%d, %s) = %d (exact %s), want %d", c.amount, c.rate, got, exact, c.want)
		}
	}
}

func TestRoundingPerCurrencyExponent(t *testing.T) {
	// The same rule applies whatever the exponent: the amount is already in
	// the currency's minor units, so JPY rounds to whole yen, KWD to fils.
	rate, _ := Decimal("rate", "12.5", 4)
	for _, c := range []struct {
		cur    string
		amount int64
		want   int64
		text   string
	}{
		{"JPY", 1005, 126, "126 JPY"},     // ¥125.625 → ¥126
		{"USD", 1005, 126, "1.26 USD"},    // 125.625 cents → 126
		{"KWD", 1005, 126, "0.126 KWD"},   // 125.625 fils → 126
		{"KWD", 12345, 1543, "1.543 KWD"}, // 1543.125 → 1543
		{"JPY", -1005, -126, "-126 JPY"},  //
	} {
		got, _ := Percent(c.amount, rate)
		if got != c.want || Format(got, c.cur) != c.text {
			t.Errorf("%s: Percent(%d) = %d (%s), want %d (%s)", c.cur, c.amount, got, Format(got, c.cur), c.want, c.text)
		}
	}
}

func TestToUSDUsesExponents(t *testing.T) {
	for _, c := range []struct {
		cur    string
		amount int64
		rate   string
		want   int64
	}{
		{"EUR", 1000, "1.08", 1080},  // €10.00 → $10.80
		{"JPY", 1000, "0.0067", 670}, // ¥1000 → $6.70
		{"KWD", 1000, "3.25", 325},   // 1.000 KWD → $3.25
		{"KWD", 1, "3.25", 0},        // 0.001 KWD → 0.325 cents → 0
		{"GBP", -250, "1.27", -318},  // -£2.50 → -$3.175 → -$3.18
	} {
		r, err := Decimal("rate", c.rate, 8)
		if err != nil {
			t.Fatal(err)
		}
		if got := ToUSD(c.amount, c.cur, r); got != c.want {
			t.Errorf("ToUSD(%d %s @ %s) = %d, want %d", c.amount, c.cur, c.rate, got, c.want)
		}
	}
}

func TestDecimalAndMajorToMinorRefuseBadInput(t *testing.T) {
	for _, s := range []string{"", ".5", "5.", "-1", "1e3", "12.34567", "abc", "1,5", " 5"} {
		if _, err := Decimal("rate", s, 4); err == nil {
			t.Errorf("Decimal(%q) accepted", s)
		}
	}
	if v, err := MajorToMinor("minimum", "5.00", "USD"); err != nil || v != 500 {
		t.Errorf("5.00 USD = %d, %v", v, err)
	}
	if v, err := MajorToMinor("minimum", "5", "JPY"); err != nil || v != 5 {
		t.Errorf("5 JPY = %d, %v", v, err)
	}
	if _, err := MajorToMinor("minimum", "5.5", "JPY"); err == nil {
		t.Error("5.5 JPY accepted")
	}
	if v, err := MajorToMinor("minimum", "5.125", "KWD"); err != nil || v != 5125 {
		t.Errorf("5.125 KWD = %d, %v", v, err)
	}
}
