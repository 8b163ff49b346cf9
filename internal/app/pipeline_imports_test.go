package app_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/partnerd/partnerd/internal/importer"
)

// Lines of the files below, numbered as the report numbers them (the
// header is line 1).
const leadsCSV = `key,external_key,partner_key,amount,currency,approved,status,meta,customer,created_at
L1,cto@a.com,ann,50000,USD,true,open,"{""first_name"":""Cy""}",,2025-06-01
,ops@b.com,ann,,,false,closed,,,
L3,,nobody,,,,,,,
L4,,ann,,,,maybe,,,
L5,,ann,-5,,,,,,
,,ann,,,,,,,
L7,,ann,,,sometimes,,,,
L8,,ann,,ZZZ,,,,,
L9,,bob,,,,,,,
L1,,bob,,,,,,,
L10,,ann,,,,,,c-unknown,
`

const dealsCSV = `key,external_key,source,partner_key,group_key,account_name,amount,currency,close_date,stage,lost_reason,created_at
D1,crm-1,,ann,,"Globex, Inc.",100000,USD,,closed won,,2025-06-01
D2,,vendor,,%s,Initech,,,,open,,
D3,,,ann,,,,,2025-13-01,,,
D4,,,ann,,,,,,haggle,,
D5,,,,,,,,,,,
D6,,vendor,,,,,,,,,
,,,ann,,,,,,,,
D1,,,bob,,,,,,,,
D9,,,ann,,Lost Co,,,,closed lost,no budget,
`

func TestImportLeadsAndDeals(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		e.partnership("ann@agency.io", "ann")
		e.partnership("bob@other.io", "bob")
		e.must("POST", "/api/v2/offers", e.prod, map[string]any{"name": "Lead", "trigger": "lead_approved", "type": "flat", "amount": 1000, "currency": "USD"})
		e.must("POST", "/api/v2/offers", e.prod, map[string]any{"name": "Co-sell", "trigger": "deal_won", "type": "percent", "rate": "10"})

		leads := e.importBytes("leads", []byte(leadsCSV), importer.Options{})
		wantCounts(t, leads, 11, 3, 0, 0, 8)
		wantReport(t, e.report(leads.Key), map[int64][2]string{
			4:  {"partner_key", "does not match any partnership"},
			5:  {"status", "must be one of"},
			6:  {"amount", "from 0"},
			7:  {"key", "needs a key or an external_key"},
			8:  {"approved", "true or false"},
			9:  {"currency", "currency"},
			11: {"partner_key", "does not change"},
			12: {"customer", "does not match any customer"},
		})
		l1 := e.must("GET", "/api/v2/leads/L1", e.prod, nil).data()
		if l1["external_key"] != "cto@a.com" || l1["approved"] != true || num(l1["amount"]) != 50000 || l1["source"] != "import" ||
			num(l1["created_at"]) != 1748736000000 || l1["field_data"].(map[string]any)["first_name"] != "Cy" {
			t.Fatalf("imported lead: %v", l1)
		}
		wantHistory(t, l1, "status:∅>open/import", "approved:∅>true/import")
		if rs := e.rewardsFor("lead", "L1"); len(rs) != 1 || num(rs[0]["amount"]) != 1000 {
			t.Fatalf("an imported approved lead earns like any other: %v", rs)
		}
		if got := e.must("GET", "/api/v2/leads/ops@b.com", e.prod, nil).data(); got["status"] != "closed" || !strings.HasPrefix(got["key"].(string), "lead_") {
			t.Fatalf("lead by external_key: %v", got)
		}

		stages := e.must("GET", "/api/v2/sales-cycles/deals/stages", e.prod, nil).data()
		deals := e.importBytes("deals", []byte(fmt.Sprintf(dealsCSV, stages["group_key"])), importer.Options{})
		wantCounts(t, deals, 9, 3, 0, 0, 6)
		wantReport(t, e.report(deals.Key), map[int64][2]string{
			4: {"close_date", "YYYY-MM-DD"},
			5: {"stage", "must be one of the group's deal stages"},
			6: {"partner_key", "required when 'source' is partner"},
			7: {"group_key", "required when 'source' is vendor"},
			8: {"key", "needs a key or an external_key"},
			9: {"partner_key", "cannot change"},
		})
		d1 := e.must("GET", "/api/v2/deals/D1", e.prod, nil).data()
		if d1["outcome"] != "won" || d1["account_name"] != "Globex, Inc." || d1["close_date"] != "2025-06-01" || d1["origin"] != "import" {
			t.Fatalf("imported deal: %v", d1)
		}
		if rs := e.rewardsFor("deal", "D1"); len(rs) != 1 || num(rs[0]["amount"]) != 10000 {
			t.Fatalf("imported won deal rewards: %v", rs)
		}
		if d2 := e.must("GET", "/api/v2/deals/D2", e.prod, nil).data(); d2["partner_key"] != nil || d2["source"] != "vendor" {
			t.Fatalf("vendor deal: %v", d2)
		}

		// Importing the same files again changes nothing.
		before := [3]int{e.countRows("leads"), e.countRows("deals"), e.countRows("rewards")}
		wantCounts(t, e.importBytes("leads", []byte(leadsCSV), importer.Options{}), 11, 0, 0, 3, 8)
		wantCounts(t, e.importBytes("deals", []byte(fmt.Sprintf(dealsCSV, stages["group_key"])), importer.Options{}), 9, 0, 0, 3, 6)
		if after := [3]int{e.countRows("leads"), e.countRows("deals"), e.countRows("rewards")}; after != before {
			t.Fatalf("rows after the second import %v, before %v", after, before)
		}

		// A later file updates from its non-empty cells, as the API would.
		up := e.importBytes("leads", []byte("key,partner_key,status,approved\nL1,ann,dead,false\n"), importer.Options{})
		wantCounts(t, up, 1, 0, 1, 0, 0)
		l1 = e.must("GET", "/api/v2/leads/L1", e.prod, nil).data()
		if l1["status"] != "dead" || l1["approved"] != false || num(l1["amount"]) != 50000 {
			t.Fatalf("updated lead: %v", l1)
		}
		if n, _ := liveSum(e.rewardsFor("lead", "L1")); n != 0 {
			t.Fatal("an import that un-approves a lead keeps its reward")
		}

		// --no-rewards imports history that earns nothing.
		quiet := e.importBytes("deals", []byte("key,partner_key,stage,amount\nD20,bob,closed won,5000\n"), importer.Options{NoRewards: true})
		wantCounts(t, quiet, 1, 1, 0, 0, 0)
		if rs := e.rewardsFor("deal", "D20"); len(rs) != 0 {
			t.Fatalf("--no-rewards deal earned: %v", rs)
		}
	})
}
