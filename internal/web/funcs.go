package web

import (
	"html/template"
	"strings"
	"time"

	"github.com/partnerd/partnerd/internal/clock"
	"github.com/partnerd/partnerd/internal/money"
)

func (s *Server) now() int64 { return clock.Millis(s.Clock) }

// funcs are the helpers the templates use.
var funcs = template.FuncMap{
	"money": money.Format,
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
