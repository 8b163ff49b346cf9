package app_test

import (
	"fmt"
	"net/url"
	"reflect"
	"testing"
)

func TestPartnershipLifecycle(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		g := e.must("POST", "/api/v2/groups", e.prod, map[string]any{"name": "Agency Partners!", "features": map[string]any{"deals_enabled": true}}).data()
		if g["slug"] != "agencypartners" || g["default"] != false {
			t.Fatalf("group: %v", g)
		}
		e.fails(409, "already exists", "POST", "/api/v2/groups", e.prod, map[string]any{"name": "agency partners"})

		e.tick()
		p := e.must("POST", "/api/v2/partnerships", e.prod, map[string]any{
			"email": "Jane.Doe@Example.com", "first_name": "Jane", "last_name": "Doe", "group_key": g["key"],
			"manager_email": "boss@acme.test", "manager_name": "Boss", "tags": []string{"vip", "emea"},
			"fields": []map[string]any{{"api_name": "tier", "value": "gold"}}, "meta": map[string]any{"region": "EU"},
		}).data()
		if p["partner_key"] != "janedoe" || p["email"] != "jane.doe@example.com" || p["test"] != false || p["status"] != "active" {
			t.Fatalf("partnership: %v", p)
		}
		if p["group"].(map[string]any)["key"] != g["key"] || !reflect.DeepEqual(p["tags"], []any{"vip", "emea"}) {
			t.Fatalf("group or tags not stored: %v", p)
		}
		if p["m_data"].(map[string]any)["region"] != "EU" || len(p["meta"].(map[string]any)) != 0 {
			t.Fatalf("meta is read back under m_data and empty under meta: %v", p)
		}
		key := p["key"].(string)
		// Retrieve by partnership key, partner key or email (any case).
		for _, id := range []string{key, "janedoe", "JANE.DOE@example.com"} {
			got := e.must("GET", "/api/v2/partnerships/"+url.PathEscape(id), e.prod, nil).data()
			if got["key"] != key {
				t.Fatalf("get by %s: %v", id, got)
			}
		}
		e.fails(404, "not found", "GET", "/api/v2/partnerships/nobody", e.prod, nil)

		// A second partner with the same email local part gets another key.
		p2 := e.partnership("jane.doe@other.test", "")
		if p2["partner_key"] != "janedoe2" {
			t.Fatalf("derived partner key: %v", p2["partner_key"])
		}
		e.fails(409, "already used", "POST", "/api/v2/partnerships", e.prod, map[string]any{"email": "jane.doe@example.com"})
		e.fails(409, "already used", "POST", "/api/v2/partnerships", e.prod, map[string]any{"email": "new@example.com", "partner_key": "janedoe"})
		e.fails(400, "group_key", "POST", "/api/v2/partnerships", e.prod, map[string]any{"email": "new@example.com", "group_key": "grup_nope"})
		e.fails(400, "partner_key", "POST", "/api/v2/partnerships", e.prod, map[string]any{"email": "new@example.com", "partner_key": "has space"})

		// PATCH changes only what is sent; null clears the manager.
		e.tick()
		up := e.must("PATCH", "/api/v2/partnerships/"+key, e.prod, map[string]any{"first_name": "Janet", "manager_email": nil, "partner_key": "janet"}).data()
		if up["first_name"] != "Janet" || up["last_name"] != "Doe" || up["partner_key"] != "janet" {
			t.Fatalf("patch: %v", up)
		}
		if up["manager"].(map[string]any)["manager_email"] != nil || up["manager"].(map[string]any)["manager_name"] != "Boss" {
			t.Fatalf("patch manager: %v", up["manager"])
		}
		if up["updated_at"].(float64) <= p["updated_at"].(float64) {
			t.Fatalf("updated_at did not move: %v -> %v", p["updated_at"], up["updated_at"])
		}
		e.fails(409, "already used", "PATCH", "/api/v2/partnerships/janet", e.prod, map[string]any{"partner_key": "janedoe2"})
		e.fails(400, "cannot change", "PATCH", "/api/v2/partnerships/gstest", e.prod, map[string]any{"partner_key": "other"})

		// DELETE archives: gone from lists, still retrievable, filter brings it back.
		del := e.must("DELETE", "/api/v2/partnerships/janet", e.prod, nil).data()
		if del["archived"] != true || del["status"] != "archived" {
			t.Fatalf("archive: %v", del)
		}
		if n := e.count("/api/v2/partnerships", e.prod); n != 2 { // gstest + janedoe2
			t.Fatalf("archived partnership still listed: total %d", n)
		}
		if n := e.count("/api/v2/partnerships?include_archived=true", e.prod); n != 3 {
			t.Fatalf("include_archived: total %d", n)
		}
		e.fails(400, "archived", "POST", "/api/v2/customers", e.prod, map[string]any{"customer_key": "c", "email": "c@x.test", "partner_key": "janet"})
	})
}

func TestPartnershipFilters(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		g := e.must("POST", "/api/v2/groups", e.prod, map[string]any{"name": "Resellers"}).data()
		a := e.partnership("a@p.test", "alpha")
		e.tick()
		b := e.must("POST", "/api/v2/partnerships", e.prod, map[string]any{"email": "b@p.test", "partner_key": "beta", "group_key": g["key"]}).data()
		cases := map[string][]string{
			"group_key=" + g["key"].(string):       {b["key"].(string)},
			"group=Re-Sellers":                     {b["key"].(string)},
			"partner_key=alpha":                    {a["key"].(string)},
			"partnership_key=" + b["key"].(string): {b["key"].(string)},
			"email=A@P.TEST":                       {a["key"].(string)},
			"partner_key=nobody":                   nil,
		}
		for q, want := range cases {
			got := e.must("GET", "/api/v2/partnerships?"+q, e.prod, nil).keys()
			if !reflect.DeepEqual(got, want) {
				t.Errorf("?%s: got %v, want %v", q, got, want)
			}
		}
	})
}

// TestPaging walks lists with every cursor and order the API offers,
// including items created in the same millisecond.
func TestPaging(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		// An empty list.
		empty := e.must("GET", "/api/v2/customers", e.prod, nil)
		if len(empty.items()) != 0 || empty.data()["has_more"] != false || empty.data()["total"].(float64) != 0 {
			t.Fatalf("empty list: %s", empty.raw)
		}
		if string(empty.raw) == "" || empty.data()["items"] == nil {
			t.Fatal("empty list must carry items: []")
		}
		e.partnership("p@p.test", "pager")
		var created []string // oldest first
		for i := 0; i < 23; i++ {
			if i%3 != 0 {
				e.tick() // every third customer shares its millisecond with the one before
			}
			c := e.must("POST", "/api/v2/customers", e.prod, map[string]any{"customer_key": fmt.Sprintf("c%02d", i), "email": fmt.Sprintf("c%d@x.test", i), "partner_key": "pager"}).data()
			created = append(created, c["key"].(string))
		}
		newest := reverse(created)

		// Exactly limit items: has_more false. One fewer than all: true.
		r := e.must("GET", "/api/v2/customers?limit=23", e.prod, nil)
		if len(r.items()) != 23 || r.data()["has_more"] != false || r.data()["total"].(float64) != 23 {
			t.Fatalf("limit=23 of 23: has_more %v, %d items", r.data()["has_more"], len(r.items()))
		}
		if !reflect.DeepEqual(r.keys(), newest) {
			t.Fatalf("default order is not newest first:\n got %v\nwant %v", r.keys(), newest)
		}
		if r := e.must("GET", "/api/v2/customers?limit=22", e.prod, nil); r.data()["has_more"] != true {
			t.Fatal("limit=22 of 23: has_more should be true")
		}
		// The default limit is 10.
		if n := len(e.must("GET", "/api/v2/customers", e.prod, nil).items()); n != 10 {
			t.Fatalf("default limit: %d items", n)
		}

		// Forward with starting_after, in both orders.
		for _, tc := range []struct {
			order string
			want  []string
		}{{"", newest}, {"-created_at", newest}, {"created_at", created}} {
			var walked []string
			cursor := ""
			pages := 0
			for {
				q := "/api/v2/customers?limit=5&order_by=" + tc.order
				if cursor != "" {
					q += "&starting_after=" + cursor
				}
				page := e.must("GET", q, e.prod, nil)
				walked = append(walked, page.keys()...)
				pages++
				if page.data()["has_more"] != true {
					break
				}
				cursor = page.keys()[len(page.keys())-1]
			}
			if !reflect.DeepEqual(walked, tc.want) || pages != 5 {
				t.Fatalf("order %q: walked %d pages\n got %v\nwant %v", tc.order, pages, walked, tc.want)
			}
		}

		// Backward with ending_before: the page just before a key, in list order.
		r = e.must("GET", "/api/v2/customers?limit=5&ending_before="+newest[12], e.prod, nil)
		if !reflect.DeepEqual(r.keys(), newest[7:12]) || r.data()["has_more"] != true {
			t.Fatalf("ending_before: got %v (has_more %v), want %v", r.keys(), r.data()["has_more"], newest[7:12])
		}
		r = e.must("GET", "/api/v2/customers?limit=5&ending_before="+newest[3], e.prod, nil)
		if !reflect.DeepEqual(r.keys(), newest[0:3]) || r.data()["has_more"] != false {
			t.Fatalf("ending_before near the start: got %v (has_more %v)", r.keys(), r.data()["has_more"])
		}
		r = e.must("GET", "/api/v2/customers?limit=5&starting_after="+newest[22], e.prod, nil)
		if len(r.items()) != 0 || r.data()["has_more"] != false {
			t.Fatalf("after the last item: %s", r.raw)
		}
		// Cursors by the customer's internal key only; unknown ones are errors.
		e.fails(400, "'starting_after' refers to an unknown key", "GET", "/api/v2/customers?starting_after=cus_nope", e.prod, nil)
		e.fails(400, "'ending_before' refers to an unknown key", "GET", "/api/v2/customers?ending_before=cus_nope", e.prod, nil)
		e.fails(400, "cannot be used together", "GET", "/api/v2/customers?starting_after="+newest[1]+"&ending_before="+newest[0], e.prod, nil)
		for _, bad := range []string{"0", "251", "-1", "ten", "1.5"} {
			e.fails(400, "'limit'", "GET", "/api/v2/customers?limit="+bad, e.prod, nil)
		}
		e.must("GET", "/api/v2/customers?limit=250", e.prod, nil)
		e.fails(400, "'order_by'", "GET", "/api/v2/customers?order_by=email", e.prod, nil)
	})
}

func TestTimeWindowsAndUpdatedOrder(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		e.partnership("p@p.test", "win")
		var at []float64
		var keys []string
		for i := 0; i < 5; i++ {
			e.clock.Advance(1000_000)
			c := e.customer(fmt.Sprintf("w%d", i), fmt.Sprintf("w%d@x.test", i), "win")
			at = append(at, c["created_at"].(float64))
			keys = append(keys, c["key"].(string))
		}
		q := fmt.Sprintf("/api/v2/customers?order_by=created_at&min_created=%.0f&max_created=%.0f", at[1], at[3])
		if got := e.must("GET", q, e.prod, nil).keys(); !reflect.DeepEqual(got, keys[1:4]) {
			t.Fatalf("created window (inclusive): got %v want %v", got, keys[1:4])
		}
		// Touch w1 later: it becomes the most recently updated.
		e.clock.Advance(1000_000)
		up := e.must("PATCH", "/api/v2/customers/w1", e.prod, map[string]any{"name": "renamed"}).data()
		q = fmt.Sprintf("/api/v2/customers?min_updated=%.0f", up["updated_at"].(float64))
		if got := e.must("GET", q, e.prod, nil).keys(); !reflect.DeepEqual(got, []string{keys[1]}) {
			t.Fatalf("min_updated: got %v", got)
		}
		if got := e.must("GET", fmt.Sprintf("/api/v2/customers?max_updated=%.0f&order_by=updated_at", at[0]), e.prod, nil).keys(); !reflect.DeepEqual(got, keys[:1]) {
			t.Fatalf("max_updated: got %v", got)
		}
		got := e.must("GET", "/api/v2/customers?order_by=-updated_at&limit=1", e.prod, nil).keys()
		if got[0] != keys[1] {
			t.Fatalf("-updated_at: first is %v, want %v", got[0], keys[1])
		}
		for _, p := range []string{"min_created", "max_created", "min_updated", "max_updated"} {
			e.fails(400, "'"+p+"'", "GET", "/api/v2/customers?"+p+"=yesterday", e.prod, nil)
		}
	})
}

func reverse(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[len(s)-1-i] = v
	}
	return out
}
