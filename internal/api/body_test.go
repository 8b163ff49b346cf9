package api

import (
	"strings"
	"testing"

	"github.com/partnerd/partnerd/internal/errs"
)

// FuzzParseBody: no body, however malformed, panics or yields anything but
// a valid body or an Invalid error that names what is wrong.
func FuzzParseBody(f *testing.F) {
	for _, seed := range []string{
		`{"customer_key":"c","amount":100,"currency":"USD","key":"abcd","metadata":{"a":"b"}}`,
		`{"amount":1e3}`, `{"amount":"1"}`, `{"amount":99999999999999999999}`, `[]`, `{`, ``, `null`,
		`{"customer_key":null,"amount":-5,"currency":"usd","test":true,"created_at":0}`, `{"x":1}`, `{"amount":1}{}`,
		"{\"currency\":\"\xff\xfe\"}", `{"amount":-0}`, `{"amount":0x10}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		b, err := parseBody([]byte(in), createTransactionSchema)
		if err != nil {
			if errs.CodeOf(err) != errs.Invalid || errs.MessageOf(err) == "" {
				t.Fatalf("%q: error %v is not a caller-facing Invalid", in, err)
			}
			return
		}
		// A body that passed has its required, typed fields.
		if b.int("amount") == nil || b.str("currency") == nil {
			t.Fatalf("%q: accepted without amount or currency", in)
		}
		if cur := *b.str("currency"); len([]rune(cur)) != 3 {
			t.Fatalf("%q: accepted currency %q", in, cur)
		}
		if a := *b.int("amount"); a < -50_000_000_000 || a > 50_000_000_000 {
			t.Fatalf("%q: accepted amount %d", in, a)
		}
	})
}

func TestParseBodyMessagesNameTheField(t *testing.T) {
	for in, want := range map[string]string{
		`{"currency":"USD"}`:                  "'amount' is a required property",
		`{"amount":1,"currency":"USD","k":1}`: "('k' was unexpected)",
		`{"amount":true,"currency":"USD"}`:    "'amount' is not of type 'integer'",
	} {
		_, err := parseBody([]byte(in), createTransactionSchema)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", in, err, want)
		}
	}
}
