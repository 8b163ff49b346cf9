package api

import (
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/partnerd/partnerd/internal/errs"
	"github.com/partnerd/partnerd/internal/store"
)

// Paging limits, as on PartnerStack.
const (
	defaultLimit = 10
	maxLimit     = 250
)

// parsePage reads the standard list parameters: limit, starting_after,
// ending_before, order_by and the epoch-ms time windows. order_by may name
// created_at, updated_at and the extra integer columns given.
func parsePage(q url.Values, orderCols ...string) (store.Page, error) {
	p := store.Page{Limit: defaultLimit, OrderBy: "created_at", Desc: true}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			return p, errs.E(errs.Invalid, "'limit' must be an integer from 1 to %d", maxLimit)
		}
		p.Limit = n
	}
	p.After, p.Before = q.Get("starting_after"), q.Get("ending_before")
	if p.After != "" && p.Before != "" {
		return p, errs.E(errs.Invalid, "'starting_after' and 'ending_before' cannot be used together")
	}
	if v := q.Get("order_by"); v != "" {
		desc := strings.HasPrefix(v, "-")
		col := strings.TrimPrefix(v, "-")
		allowed := append([]string{"created_at", "updated_at"}, orderCols...)
		if !slices.Contains(allowed, col) {
			names := make([]string, 0, 2*len(allowed))
			for _, a := range allowed {
				names = append(names, a, "-"+a)
			}
			return p, errs.E(errs.Invalid, "'order_by' must be one of %s", strings.Join(names, ", "))
		}
		p.OrderBy, p.Desc = col, desc
	}
	for _, w := range []struct {
		name string
		dst  **int64
	}{{"min_created", &p.MinCreated}, {"max_created", &p.MaxCreated}, {"min_updated", &p.MinUpdated}, {"max_updated", &p.MaxUpdated}} {
		if v := q.Get(w.name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return p, errs.E(errs.Invalid, "'%s' must be a time in epoch milliseconds (a non-negative integer)", w.name)
			}
			*w.dst = &n
		}
	}
	return p, nil
}

// parseBool reads a boolean query parameter.
func parseBool(q url.Values, name string) (bool, error) {
	switch strings.ToLower(q.Get(name)) {
	case "":
		return false, nil
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	}
	return false, errs.E(errs.Invalid, "'%s' must be true or false", name)
}

// listParams reads the standard paging parameters and include_archived.
func listParams(q url.Values) (store.Page, bool, error) {
	page, err := parsePage(q)
	if err != nil {
		return page, false, err
	}
	archived, err := parseBool(q, "include_archived")
	return page, archived, err
}
