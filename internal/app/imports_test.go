package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/partnerd/partnerd/internal/importer"
	"github.com/partnerd/partnerd/internal/outbox"
	"github.com/partnerd/partnerd/internal/program"
	"github.com/partnerd/partnerd/internal/store"
	"github.com/partnerd/partnerd/internal/store/storetest"
)

const fixtures = "../importer/testdata/"

func (e *env) principal() program.Principal {
	return program.Principal{CompanyID: e.company.ID, CompanyKey: e.company.Key}
}

// importFile runs a file through the importer as the CLI does.
func (e *env) importFile(typ, path string, opts importer.Options) importer.Import {
	e.t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.importBytes(typ, data, opts)
}

func (e *env) importBytes(typ string, data []byte, opts importer.Options) importer.Import {
	e.t.Helper()
	opts.Type = typ
	im, err := e.app.Importer.Import(context.Background(), e.principal(), opts, typ+".csv", int64(len(data)), bytes.NewReader(data), nil)
	if err != nil && im.Key == "" {
		e.t.Fatalf("import %s: %v", typ, err)
	}
	return im
}

func (e *env) report(key string) []importer.RowError {
	e.t.Helper()
	var out []importer.RowError
	if err := e.app.Importer.Report(context.Background(), e.principal(), key, func(r importer.RowError) error {
		out = append(out, r)
		return nil
	}); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// wantReport checks a report row for row: each line's column and a part
// of its reason, and no other line.
func wantReport(t *testing.T, got []importer.RowError, want map[int64][2]string) {
	t.Helper()
	seen := map[int64]bool{}
	for _, r := range got {
		w, ok := want[r.Line]
		if !ok {
			t.Errorf("line %d rejected unexpectedly: %s: %s", r.Line, r.Column, r.Reason)
			continue
		}
		seen[r.Line] = true
		if r.Column != w[0] || !strings.Contains(r.Reason, w[1]) {
			t.Errorf("line %d: want column %q with reason containing %q, got %q: %q", r.Line, w[0], w[1], r.Column, r.Reason)
		}
	}
	for line, w := range want {
		if !seen[line] {
			t.Errorf("line %d was not rejected (want %s: %s)", line, w[0], w[1])
		}
	}
}

func wantCounts(t *testing.T, im importer.Import, rows, created, updated, unchanged, rejected int64) {
	t.Helper()
	got := [5]int64{im.Records, im.Created, im.Updated, im.Unchanged, im.Rejected}
	if want := [5]int64{rows, created, updated, unchanged, rejected}; got != want {
		t.Fatalf("import %s (%s): rows/created/updated/unchanged/rejected = %v, want %v (error %q)", im.Key, im.Type, got, want, im.Error)
	}
}

// importFixtures imports every fixture in order and checks each report.
func importFixtures(t *testing.T, e *env) {
	t.Helper()
	groups := e.importFile("groups", fixtures+"groups.csv", importer.Options{})
	wantCounts(t, groups, 5, 1, 0, 1, 3)
	wantReport(t, e.report(groups.Key), map[int64][2]string{
		4: {"name", "required"},
		5: {"key", "may contain only"},
		6: {"features", "JSON object"},
	})

	partners := e.importFile("partners", fixtures+"partners.csv", importer.Options{})
	wantCounts(t, partners, 14, 2, 0, 1, 11)
	wantReport(t, e.report(partners.Key), map[int64][2]string{
		5:  {"Partner_email", "not a valid email"},
		6:  {"Partner_email", "required"},
		7:  {"partner_key", "may contain only"},
		8:  {"Partner_group", "does not match any group"},
		9:  {"Partner_joined_date", "ISO 8601"},
		10: {"Test", "true or false"},
		11: {"Meta", "JSON object"},
		12: {"", "3 fields; the header has 10"},
		13: {"Partner_last", "not valid UTF-8"},
		14: {"", "malformed CSV"},
		15: {"Partner_email", "belongs to another partnership"},
	})
	if len(partners.Warnings) != 1 || !strings.Contains(partners.Warnings[0], `"Notes"`) {
		t.Fatalf("warnings: %v", partners.Warnings)
	}

	customers := e.importFile("customers", fixtures+"customers.csv", importer.Options{})
	wantCounts(t, customers, 9, 3, 0, 0, 6)
	wantReport(t, e.report(customers.Key), map[int64][2]string{
		4:  {"partner_key", "does not match any partnership"},
		5:  {"customer_key", "needs a customer_key"},
		6:  {"email", "not a valid email"},
		7:  {"partner_key", "attribution does not change"},
		8:  {"source_type", "must be one of"},
		10: {"created_at", "ISO 8601"},
	})

	txs := e.importFile("transactions", fixtures+"transactions.csv", importer.Options{})
	wantCounts(t, txs, 12, 4, 0, 1, 7)
	wantReport(t, e.report(txs.Key), map[int64][2]string{
		5:  {"amount", "whole number of minor units"},
		6:  {"key", "required"},
		7:  {"customer_key", "does not match any customer"},
		8:  {"currency", "currency"},
		9:  {"created_at", "one day from now"},
		10: {"amount", "required"},
		12: {"amount", "already stored with amount 1999"},
	})

	rewards := e.importFile("rewards", fixtures+"rewards.csv", importer.Options{})
	wantCounts(t, rewards, 9, 2, 0, 1, 6)
	wantReport(t, e.report(rewards.Key), map[int64][2]string{
		4:  {"status", "must be one of"},
		5:  {"partner_key", "does not match any partnership"},
		6:  {"customer_key", "attributed to another partner"},
		7:  {"transaction_key", "does not match any transaction"},
		8:  {"key", "required"},
		10: {"amount", "already stored with amount 399"},
	})
}

func TestImportFixturesReportEveryBadRow(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		// A transaction offer: imported payments earn like any other.
		e.must("POST", "/api/v2/offers", e.prod, map[string]any{"name": "Share", "trigger": "transaction", "type": "percent", "rate": "10"})
		importFixtures(t, e)

		// What the good rows say arrived intact: quoting, BOM, CRLF inside
		// a quoted field, tags, meta, groups by name, epoch and zoned times.
		bob := e.must("GET", "/api/v2/partnerships/bob", e.prod, nil).data()
		if bob["first_name"] != "Bob, Jr" || bob["last_name"] != "Smith\nthe Second" {
			t.Fatalf("bob: %v %q", bob["first_name"], bob["last_name"])
		}
		if bob["joined_at"].(float64) != 1704067200000 {
			t.Fatalf("bob joined_at %v", bob["joined_at"])
		}
		ada := e.must("GET", "/api/v2/partnerships/ada", e.prod, nil).data()
		if fmt.Sprint(ada["tags"]) != "[vip eu]" || ada["group"].(map[string]any)["name"] != "Resellers" {
			t.Fatalf("ada: tags %v group %v", ada["tags"], ada["group"])
		}
		c1 := e.must("GET", "/api/v2/customers/c1", e.prod, nil).data()
		if c1["name"] != `Carla "CJ" Jones` || c1["provider_key"] != "cus_stripe_1" {
			t.Fatalf("c1: %v", c1)
		}
		c2 := e.must("GET", "/api/v2/customers/c2", e.prod, nil).data()
		if c2["created_at"].(float64) != 1706860800000 { // 2024-02-02T10:00:00+02:00
			t.Fatalf("c2 created_at %v", c2["created_at"])
		}
		t2 := e.must("GET", "/api/v2/transactions/t2", e.prod, nil).data()
		if t2["currency"] != "EUR" || t2["amount"].(float64) != 500 {
			t.Fatalf("t2: %v", t2)
		}
		// 10% of t1 (1999 → 200), of t12 (700 → 70) and of t2 (500 EUR →
		// 50 EUR); the refund t3 reverses nothing it did not earn.
		got := []string{}
		for _, r := range e.must("GET", "/api/v2/rewards?limit=250", e.prod, nil).items() {
			got = append(got, fmt.Sprintf("%v:%v:%v", r["source"], r["amount"], r["currency"]))
		}
		sort.Strings(got)
		if want := "[import:1000:USD import:399:USD offer:-50:USD offer:200:USD offer:50:EUR offer:70:USD]"; fmt.Sprint(got) != want {
			t.Fatalf("rewards %v, want %s", got, want)
		}
		r1 := e.must("GET", "/api/v2/rewards/r1", e.prod, nil).data()
		if r1["reward_status"] != "paid" || r1["transaction"] == nil {
			t.Fatalf("r1: %v", r1)
		}
	})
}

func TestImportingTwiceCreatesNothing(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		importFixtures(t, e)
		// Events are fanned out and removed in the background, so what the
		// second import emits is counted as deliveries to a webhook that
		// hears every event from now on.
		e.tick()
		rc := newReceiver(t, 0)
		e.must("POST", "/api/v2/webhooks", e.prod, map[string]any{"target_url": rc.url, "events": outbox.Names})
		before := map[string]int{}
		tables := []string{"groups", "partnerships", "customers", "transactions", "rewards", "links"}
		for _, tb := range tables {
			before[tb] = e.countRows(tb)
		}
		for _, f := range []struct {
			typ            string
			rows, unchange int64
		}{{"groups", 5, 2}, {"partners", 14, 3}, {"customers", 9, 3}, {"transactions", 12, 5}, {"rewards", 9, 3}} {
			im := e.importFile(f.typ, fixtures+f.typ+".csv", importer.Options{})
			if im.Created != 0 || im.Updated != 0 || im.Unchanged != f.unchange || im.Records != f.rows {
				t.Fatalf("second import of %s: %+v", f.typ, im)
			}
		}
		for _, tb := range tables {
			if n := e.countRows(tb); n != before[tb] {
				t.Fatalf("%s: %d rows after the second import, %d before", tb, n, before[tb])
			}
		}
		for {
			n, err := e.app.Webhooks.Fanout(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				break
			}
		}
		// The server's monthly payout run starts with it and may record a
		// payout.created at any moment: that one is not the import's.
		if n := e.countRows("deliveries WHERE event NOT LIKE 'payout.%'"); n != 0 {
			t.Fatalf("the second import emitted %d events", n)
		}
	})
}

func TestAtomicAndDryRunImportsWriteNothingWhenTheySay(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		e.importFile("groups", fixtures+"groups.csv", importer.Options{})
		before := e.countRows("partnerships")
		dry := e.importFile("partners", fixtures+"partners.csv", importer.Options{DryRun: true})
		wantCounts(t, dry, 14, 2, 0, 1, 11)
		if dry.Status != importer.StatusDone || len(e.report(dry.Key)) != 11 {
			t.Fatalf("dry run: %+v, %d report rows", dry, len(e.report(dry.Key)))
		}
		atomic := e.importFile("partners", fixtures+"partners.csv", importer.Options{Atomic: true})
		if atomic.Status != importer.StatusRejected || atomic.Rejected != 11 {
			t.Fatalf("atomic: %+v", atomic)
		}
		if n := e.countRows("partnerships"); n != before {
			t.Fatalf("%d partnerships after a dry run and a rejected atomic import, %d before", n, before)
		}
		good := []byte("email,partner_key\nx1@example.com,x1\nx2@example.com,x2\nx1@example.com,x1\n")
		dry = e.importBytes("partners", good, importer.Options{DryRun: true, Atomic: true})
		wantCounts(t, dry, 3, 2, 0, 1, 0)
		if n := e.countRows("partnerships"); n != before {
			t.Fatalf("a dry run wrote %d partnerships", n-before)
		}
		ok := e.importBytes("partners", good, importer.Options{Atomic: true})
		wantCounts(t, ok, 3, 2, 0, 1, 0)
		if ok.Status != importer.StatusDone || e.countRows("partnerships") != before+2 {
			t.Fatalf("atomic import of good rows: %+v", ok)
		}
		// A type partnerd does not import: a clear refusal naming the ones it does.
		_, err := e.app.Importer.Import(context.Background(), e.principal(), importer.Options{Type: "payouts"}, "x.csv", 1,
			strings.NewReader("a\n"), nil)
		if err == nil || !strings.Contains(err.Error(), "'type' must be one of groups, partners, customers, transactions, leads, deals, rewards") {
			t.Fatalf("payouts: %v", err)
		}
	})
}

func TestImportWithoutRewardsEarnsNothing(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		e.must("POST", "/api/v2/offers", e.prod, map[string]any{"name": "Share", "trigger": "transaction", "type": "percent", "rate": "10"})
		e.must("POST", "/api/v2/offers", e.prod, map[string]any{"name": "Signup", "trigger": "customer", "type": "flat", "amount": 500, "currency": "USD"})
		e.partnership("p@example.com", "p")
		e.importBytes("customers", []byte("customer_key,email,partner_key\nh1,h1@example.com,p\n"), importer.Options{NoRewards: true})
		e.importBytes("transactions", []byte("key,customer_key,amount\nh-1,h1,1000\n"), importer.Options{NoRewards: true})
		if n := e.countRows("rewards"); n != 0 {
			t.Fatalf("history earned %d rewards", n)
		}
		e.importBytes("customers", []byte("customer_key,email,partner_key\nn1,n1@example.com,p\n"), importer.Options{})
		e.importBytes("transactions", []byte("key,customer_key,amount\nn-1,n1,1000\n"), importer.Options{})
		if n := e.countRows("rewards"); n != 2 {
			t.Fatalf("a normal import earned %d rewards, want a sign-up and a share", n)
		}
	})
}

// TestExportImportRoundTrip builds a program through the API, exports it,
// imports the CSV files into a fresh database and exports again: the files
// of the importable types must be the same, except for the default group
// and test partner every program starts with (they keep their own keys).
func TestExportImportRoundTrip(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		e.must("POST", "/api/v2/offers", e.prod, map[string]any{"name": "Share", "trigger": "transaction", "type": "percent", "rate": "20"})
		g := e.must("POST", "/api/v2/groups", e.prod, map[string]any{"name": "Gold Tier", "features": map[string]any{"x": 1}}).data()
		e.tick()
		e.must("POST", "/api/v2/partnerships", e.prod, map[string]any{"email": "ann@example.com", "partner_key": "ann", "first_name": "Ann, \"A\"",
			"group_key": g["key"], "tags": []string{"a", "b"}, "meta": map[string]any{"k": "v\nw"}, "manager_email": "m@example.com"})
		e.partnership("ben@example.com", "ben")
		e.must("DELETE", "/api/v2/partnerships/ben", e.prod, nil)
		e.customer("k1", "k1@example.com", "ann")
		e.customer("k2", "k2@example.com", "ann")
		e.tick()
		e.must("POST", "/api/v2/customers", e.test, map[string]any{"customer_key": "tk", "email": "t@example.com", "partner_key": "gstest"})
		e.txn("k1", 10000, "USD", map[string]any{"key": "pay-1", "product_key": "pro", "metadata": map[string]any{"n": 1}})
		e.txn("k1", 2500, "EUR", map[string]any{"key": "pay-2"})
		e.txn("k2", 999, "USD", map[string]any{"key": "pay-3"})
		e.must("DELETE", "/api/v2/transactions/pay-3", e.prod, nil)
		e.must("DELETE", "/api/v2/customers/k2", e.prod, nil)
		e.tick()
		e.must("POST", "/api/v2/rewards", e.prod, map[string]any{"amount": 700, "currency": "USD", "description": "Bonus",
			"target": map[string]any{"type": "partnership", "key": "ann"}})

		// The pipeline: a group's own stages, leads and deals with their
		// history, conversions, rewards, a partnerless vendor deal.
		e.must("PUT", "/api/v2/sales-cycles/deals/stages", e.prod, map[string]any{"group_key": g["key"], "stages": []map[string]any{
			{"name": "Intro", "outcome": "open"}, {"name": "Signed", "outcome": "won"}, {"name": "Lost", "outcome": "lost"}}})
		e.must("POST", "/api/v2/offers", e.prod, map[string]any{"name": "Lead", "trigger": "lead_approved", "type": "flat", "amount": 500, "currency": "USD"})
		e.must("POST", "/api/v2/offers", e.prod, map[string]any{"name": "Co-sell", "trigger": "deal_won", "type": "percent", "rate": "10"})
		e.tick()
		lead := e.must("POST", "/api/v2/leads", e.prod, map[string]any{"partner_key": "ann", "external_key": "lead@x.com", "amount": 900,
			"fields": []map[string]any{{"name": "Size", "value": "50"}}, "meta": map[string]any{"first_name": "Lu"}}).data()
		for _, approved := range []bool{true, false, true} {
			e.tick()
			e.must("PATCH", "/api/v2/leads/"+lead["key"].(string), e.prod, map[string]any{"approved": approved})
		}
		e.tick()
		e.must("POST", "/api/v2/leads/"+lead["key"].(string)+"/convert", e.prod, map[string]any{"email": "lu@x.com", "customer_key": "lu"})
		e.tick()
		gone := e.must("POST", "/api/v2/leads", e.prod, map[string]any{"partner_key": "ann", "status": "dead"}).data()
		e.must("DELETE", "/api/v2/leads/"+gone["key"].(string), e.prod, nil)
		e.tick()
		deal := e.must("POST", "/api/v2/deals", e.prod, map[string]any{"partner_key": "ann", "account_name": "Globex", "amount": 40000,
			"currency": "EUR", "contact_first_name": "Hank", "external_key": "crm-7"}).data()
		e.tick()
		e.must("PATCH", "/api/v2/deals/"+deal["key"].(string), e.prod, map[string]any{"stage": "Signed"})
		e.tick()
		lost := e.must("POST", "/api/v2/deals", e.prod, map[string]any{"partner_key": "ann", "stage": "Signed", "amount": 100}).data()
		e.tick()
		e.must("PATCH", "/api/v2/deals/"+lost["key"].(string), e.prod, map[string]any{"stage": "Lost", "lost_reason": "went elsewhere"})
		e.tick()
		e.must("POST", "/api/v2/deals", e.prod, map[string]any{"source": "vendor", "group_key": g["key"], "account_name": "Initech", "close_date": "2026-05-01"})

		dirA, dirB := t.TempDir(), t.TempDir()
		if _, err := e.app.Importer.ExportAll(context.Background(), e.principal(), dirA); err != nil {
			t.Fatal(err)
		}
		fresh := start(t, freshDSN(t, e))
		for _, typ := range importer.Types() {
			opts := importer.Options{}
			if typ == "transactions" || typ == "customers" || typ == "leads" || typ == "deals" {
				opts.NoRewards = true // the rewards come from rewards.csv
			}
			im := fresh.importFile(typ, filepath.Join(dirA, typ+".csv"), opts)
			if im.Rejected != 0 || im.Status != importer.StatusDone {
				t.Fatalf("import %s: %+v %v", typ, im, fresh.report(im.Key))
			}
		}
		if _, err := fresh.app.Importer.ExportAll(context.Background(), fresh.principal(), dirB); err != nil {
			t.Fatal(err)
		}
		// The objects every program starts with, by their keys in each.
		startKeys := func(env *env) []string {
			var g, p string
			env.app.DB.QueryRow(context.Background(), "SELECT key FROM groups WHERE company_id = ? AND is_default = 1", env.company.ID).Scan(&g)
			env.app.DB.QueryRow(context.Background(), "SELECT key FROM partnerships WHERE company_id = ? AND partner_key = 'gstest'", env.company.ID).Scan(&p)
			return []string{g, p}
		}
		ka, kb := startKeys(e), startKeys(fresh)
		for _, typ := range importer.Types() {
			a := readLines(t, filepath.Join(dirA, typ+".csv"), ka)
			b := readLines(t, filepath.Join(dirB, typ+".csv"), kb)
			if a != b {
				t.Errorf("%s.csv differs after the round trip:\n--- exported\n%s\n--- re-exported\n%s", typ, a, b)
			}
		}
		if n := e.countRows("rewards"); n < 8 {
			t.Fatalf("the round trip exercised only %d rewards", n)
		}
		// The deal's reward still names its deal, and pays once: a change
		// to the deal settles against the imported rewards, not beside them.
		rs := fresh.rewardsFor("deal", deal["key"].(string))
		if len(rs) != 1 || num(rs[0]["amount"]) != 4000 || rs[0]["currency"] != "EUR" {
			t.Fatalf("imported deal rewards: %v", rs)
		}
		fresh.must("PATCH", "/api/v2/deals/"+deal["key"].(string), fresh.prod, map[string]any{"amount": 50000})
		if n, sum := liveSum(fresh.rewardsFor("deal", deal["key"].(string))); n != 1 || sum != 4000 {
			t.Fatalf("a change to an imported deal paid it again: %v", fresh.rewardsFor("deal", deal["key"].(string)))
		}
	})
}

// readLines reads an export, with the start objects' keys replaced by
// placeholders and their own rows (whose times are those of each
// program's creation) left out.
func readLines(t *testing.T, path string, start []string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, start[0]+",") || strings.HasPrefix(line, start[1]+",") {
			continue
		}
		line = strings.ReplaceAll(line, start[0], "<default group>")
		out = append(out, strings.ReplaceAll(line, start[1], "<test partner>"))
	}
	return strings.Join(out, "\n")
}

// freshDSN is a new, empty database of e's engine.
func freshDSN(t *testing.T, e *env) string {
	if e.app.DB.Dialect() == store.Postgres {
		return storetest.PostgresDSN(t)
	}
	return storetest.SQLiteDSN(t)
}

// upload posts a multipart import through the API and validates the answer
// against the contract.
func (e *env) upload(a auth, fields map[string]string, file []byte) resp {
	e.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for k, v := range fields {
		mw.WriteField(k, v)
	}
	if file != nil {
		fw, _ := mw.CreateFormFile("file", "upload.csv")
		fw.Write(file)
	}
	mw.Close()
	req, _ := http.NewRequest("POST", e.base+"/api/v2/imports", bytes.NewReader(body.Bytes()))
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", a.header)
	hr, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer hr.Body.Close()
	out := resp{status: hr.StatusCode, header: hr.Header}
	out.raw, _ = io.ReadAll(hr.Body)
	if err := json.Unmarshal(out.raw, &out.body); err != nil {
		e.t.Fatalf("upload: %d %q", hr.StatusCode, out.raw)
	}
	e.validate(req, body.Bytes(), out)
	return out
}

func TestImportsAndExportsThroughTheAPI(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		e.partnership("p@example.com", "p")
		e.fails(400, "multipart/form-data", "POST", "/api/v2/imports", e.prod, nil)
		if r := e.upload(e.prod, map[string]string{"type": "customers"}, nil); r.status != 400 || !strings.Contains(r.message(), "'file' is a required part") {
			t.Fatalf("no file: %d %s", r.status, r.raw)
		}
		if r := e.upload(e.prod, map[string]string{"type": "payouts"}, []byte("a\n")); r.status != 400 || !strings.Contains(r.message(), "'type' must be one of") {
			t.Fatalf("payouts: %d %s", r.status, r.raw)
		}
		if r := e.upload(e.prod, map[string]string{"type": "customers", "atomic": "maybe"}, []byte("a\n")); r.status != 400 {
			t.Fatalf("bad flag: %d %s", r.status, r.raw)
		}
		csv := []byte("customer_key,email,partner_key\nu1,u1@example.com,p\nu2,not-an-email,p\nu3,u3@example.com,p\n")
		r := e.upload(e.prod, map[string]string{"type": "customers"}, csv)
		if r.status != 202 || r.data()["status"] != "queued" {
			t.Fatalf("upload: %d %s", r.status, r.raw)
		}
		key := r.data()["key"].(string)
		// The server's worker runs it; wait for it to finish.
		var im map[string]any
		for i := 0; i < 200; i++ {
			im = e.must("GET", "/api/v2/imports/"+key, e.prod, nil).data()
			if im["status"] == "done" {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if im["status"] != "done" || im["created"].(float64) != 2 || im["rejected"].(float64) != 1 || im["rows"].(float64) != 3 {
			t.Fatalf("import: %v", im)
		}
		errsOf := im["errors"].([]any)
		if len(errsOf) != 1 || errsOf[0].(map[string]any)["line"].(float64) != 3 || errsOf[0].(map[string]any)["column"] != "email" {
			t.Fatalf("errors: %v", errsOf)
		}
		if e.countRows("import_chunks") != 0 {
			t.Fatal("the uploaded file was kept after the import")
		}
		e.must("GET", "/api/v2/customers/u3", e.prod, nil)
		if n := e.count("/api/v2/imports", e.prod); n != 1 {
			t.Fatalf("%d imports listed", n)
		}
		for _, c := range []struct{ format, want string }{{"csv", "line,column,reason,value\n3,email,"}, {"json", `[{"line":3,"column":"email"`}} {
			hr, err := http.Get(e.base + "/api/v2/imports/" + key + "/report?format=" + c.format)
			if err != nil {
				t.Fatal(err)
			}
			hr.Body.Close()
			if hr.StatusCode != 401 {
				t.Fatalf("report without keys: %d", hr.StatusCode)
			}
			b := e.download("GET", "/api/v2/imports/"+key+"/report?format="+c.format, e.prod)
			if !strings.HasPrefix(b, c.want) {
				t.Fatalf("report %s: %q", c.format, b)
			}
		}
		// Another company sees none of it.
		_, other := e.newCompany("Other")
		e.fails(404, "", "GET", "/api/v2/imports/"+key, other, nil)

		out := e.download("GET", "/api/v2/exports/customers?format=jsonl", e.prod)
		if lines := strings.Count(out, "\n"); lines != 2 || !strings.Contains(out, `"customer_key":"u1"`) {
			t.Fatalf("jsonl export: %q", out)
		}
		out = e.download("GET", "/api/v2/exports/customers", e.prod)
		if !strings.HasPrefix(out, "key,customer_key,email,") || strings.Count(out, "\n") != 3 {
			t.Fatalf("csv export: %q", out)
		}
		e.fails(404, "there is no export", "GET", "/api/v2/exports/nothing", e.prod, nil)
		e.fails(400, "'format'", "GET", "/api/v2/exports/customers?format=xml", e.prod, nil)
	})
}

// download GETs a non-JSON body with auth and requires 200.
func (e *env) download(method, path string, a auth) string {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.base+path, nil)
	req.Header.Set("Authorization", a.header)
	hr, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer hr.Body.Close()
	b, _ := io.ReadAll(hr.Body)
	if hr.StatusCode != 200 {
		e.t.Fatalf("%s %s: %d %s", method, path, hr.StatusCode, b)
	}
	return string(b)
}
