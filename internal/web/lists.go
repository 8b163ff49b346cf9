package web

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/partnerd/partnerd/internal/errs"
	"github.com/partnerd/partnerd/internal/money"
	"github.com/partnerd/partnerd/internal/store"
)

const (
	pageSize   = 50
	exportPage = 250
	// countUpTo bounds the count a list page shows ("10000+ in all"):
	// counting a list of a million payments on every page view would cost
	// more than the page.
	countUpTo = 10000
)

// listing is one of the app's lists: how to read a page of it from its
// domain service, and how it looks as CSV. Every list is paged and
// filtered on the server, newest first, and exports with ?format=csv.
type listing[T any] struct {
	name    string // the CSV file's name
	fetch   func(page store.Page) ([]T, store.Result, error)
	key     func(T) string
	csvHead []string
	csvRow  func(T) []string
}

// pager is what a list template shows under the table.
type pager struct {
	Total      string // "1234", or "10000+" past countUpTo
	Prev, Next string // URLs, empty when there is nothing that way
	CSV        string
}

// page reads the page the request asks for, or, for ?format=csv, writes
// the whole filtered list as CSV (done is then true).
func (l listing[T]) page(w http.ResponseWriter, r *http.Request) (items []T, p pager, done bool, err error) {
	q := r.URL.Query()
	if q.Get("format") == "csv" {
		return nil, p, true, l.export(w, r)
	}
	pg := store.Page{Limit: pageSize, After: q.Get("after"), Before: q.Get("before"), Desc: true, CountUpTo: countUpTo}
	items, res, err := l.fetch(pg)
	if err != nil {
		return nil, p, false, err
	}
	p.Total = strconv.Itoa(res.Total)
	if res.Total > countUpTo {
		p.Total = strconv.Itoa(countUpTo) + "+"
	}
	link := func(param, cursor string) string {
		v := url.Values{}
		for k, vs := range q {
			if k != "after" && k != "before" {
				v[k] = vs
			}
		}
		v.Set(param, cursor)
		return r.URL.Path + "?" + v.Encode()
	}
	if len(items) > 0 {
		back, forward := pg.After != "", res.HasMore
		if pg.Before != "" {
			back, forward = res.HasMore, true
		}
		if back {
			p.Prev = link("before", l.key(items[0]))
		}
		if forward {
			p.Next = link("after", l.key(items[len(items)-1]))
		}
	}
	v := url.Values{}
	for k, vs := range q {
		if k != "after" && k != "before" {
			v[k] = vs
		}
	}
	v.Set("format", "csv")
	p.CSV = r.URL.Path + "?" + v.Encode()
	return items, p, false, nil
}

// export streams every item of the filtered list, a page at a time.
func (l listing[T]) export(w http.ResponseWriter, r *http.Request) error {
	pg := store.Page{Limit: exportPage, Desc: true, CountUpTo: 1}
	items, res, err := l.fetch(pg)
	if err != nil {
		return err // nothing written yet: an error page
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-%s.csv"`, l.name, time.Now().UTC().Format("2006-01-02")))
	cw := csv.NewWriter(w)
	if err := cw.Write(l.csvHead); err != nil {
		return nil // the client went away
	}
	for {
		for _, it := range items {
			if err := cw.Write(safeCells(l.csvRow(it))); err != nil {
				return nil
			}
		}
		if !res.HasMore || len(items) == 0 || r.Context().Err() != nil {
			break
		}
		pg.After = l.key(items[len(items)-1])
		if items, res, err = l.fetch(pg); err != nil {
			// Headers are sent: the truncation is said in the file.
			_ = cw.Write([]string{"# export stopped: " + errs.MessageOf(err)})
			break
		}
	}
	cw.Flush()
	return nil
}

// safeCells defuses cells a spreadsheet would run as a formula.
func safeCells(row []string) []string {
	for i, c := range row {
		if c != "" && (c[0] == '=' || c[0] == '+' || c[0] == '-' || c[0] == '@' || c[0] == '\t' || c[0] == '\r') {
			if _, err := strconv.ParseFloat(c, 64); err != nil {
				row[i] = "'" + c
			}
		}
	}
	return row
}

// csvMoney is an amount in major units, as a spreadsheet reads it.
func csvMoney(amount int64, currency string) string { return money.FormatPlain(amount, currency) }

func csvTime(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339) }

func csvOpt(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// showList renders a list page, or writes its CSV export: the page's
// items and pager with its filter and anything else the template shows.
func showList[T any](s *Server, w http.ResponseWriter, r *http.Request, l listing[T], name string, v view, filter map[string]string, extra any) error {
	items, pg, done, err := l.page(w, r)
	if done || err != nil {
		return err
	}
	v.Data = listView[T]{Items: items, Pager: pg, Filter: filter, Extra: extra}
	return s.render(w, http.StatusOK, name, v)
}
