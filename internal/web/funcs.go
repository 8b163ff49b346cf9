package web

import (
	"html/template"
	"strconv"
	"strings"
	"time"

	"github.com/partnerd/partnerd/internal/clock"
	"github.com/partnerd/partnerd/internal/money"
)

func (s *Server) now() int64 { return clock.Millis(s.Clock) }

// funcs are the helpers the templates use.
var funcs = template.FuncMap{
	"money":      func(v int64, cur string) string { return grouped(money.FormatPlain(v, cur)) + " " + cur },
	"amount":     func(v int64, cur string) string { return grouped(money.FormatPlain(v, cur)) },
	"moneyWhole": moneyWhole,
	"date": func(ms int64) string {
		if ms == 0 {
			return ""
		}
		return time.UnixMilli(ms).UTC().Format("2 Jan 2006")
	},
	"datetime": func(ms int64) string { return time.UnixMilli(ms).UTC().Format("2 Jan 2006 15:04 UTC") },
	"opt": func(p any) string {
		switch v := p.(type) {
		case *string:
			if v != nil {
				return *v
			}
		case *int64:
			if v != nil {
				return time.UnixMilli(*v).UTC().Format("2 Jan 2006")
			}
		}
		return ""
	},
	"name": name,
	"deref64": func(p *int64) int64 {
		if p == nil {
			return 0
		}
		return *p
	},
	"join":  strings.Join,
	"split": strings.Fields,
	"title": func(s string) string {
		if s == "" {
			return s
		}
		return strings.ToUpper(s[:1]) + s[1:]
	},
}

// grouped puts thousands separators in a plain decimal ("-1234567.50" →
// "-1,234,567.50").
func grouped(plain string) string {
	sign := ""
	if strings.HasPrefix(plain, "-") {
		sign, plain = "-", plain[1:]
	}
	whole, frac, hasFrac := strings.Cut(plain, ".")
	var b strings.Builder
	for i, c := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if hasFrac {
		return sign + b.String() + "." + frac
	}
	return sign + b.String()
}

// moneyWhole is an amount rounded to whole units, grouped: "1,243,665 USD".
func moneyWhole(v int64, cur string) string {
	plain := money.FormatPlain(v, cur)
	whole, frac, _ := strings.Cut(plain, ".")
	n, _ := strconv.ParseInt(whole, 10, 64)
	if frac != "" && frac[0] >= '5' {
		if v < 0 {
			n--
		} else {
			n++
		}
	}
	return grouped(strconv.FormatInt(n, 10)) + " " + cur
}
