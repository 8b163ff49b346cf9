package main

import (
	"context"
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/partnerd/partnerd/internal/app"
	"github.com/partnerd/partnerd/internal/ledger"
	"github.com/partnerd/partnerd/internal/program"
)

// The hub's commands, against a program served on 127.0.0.1: connect (a
// refused token stores nothing), sync (twice: the second reads, writes
// nothing), report as text and JSON, and a workspace token.
func TestHubCommands(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src, err := app.Open(ctx, app.Config{DB: filepath.Join(t.TempDir(), "src.db")})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- src.ServeListener(ctx, ln, nil) }()
	defer func() { cancel(); <-done; src.Close() }()
	co, err := src.Program.CreateCompany(ctx, "Acme", "")
	if err != nil {
		t.Fatal(err)
	}
	p := program.Principal{CompanyID: co.ID, CompanyKey: co.Key, CompanyName: co.Name}
	if _, err := src.Ledger.CreateOffer(ctx, p, ledger.OfferInput{Set: map[string]bool{"name": true, "trigger": true, "type": true, "rate": true},
		Name: ptr("Share"), Trigger: ptr("transaction"), Type: ptr("percent"), Rate: ptr("20")}); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Program.CreatePartnership(ctx, p, program.PartnershipInput{Email: ptr("jane@agency.example"), PartnerKey: ptr("jane")}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := src.Program.CreateCustomer(ctx, p, program.CustomerInput{CustomerKey: ptr("u1"), Email: ptr("b@shop.example"), PartnerKey: ptr("jane")}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := src.Ledger.CreateTransaction(ctx, p, ledger.TransactionInput{Customer: program.CustomerRef{ExternalKey: "u1"}, Amount: 4900,
		Currency: "USD", Key: "inv_1"}); err != nil {
		t.Fatal(err)
	}
	tok, err := src.Program.CreatePartnerToken(ctx, co.Key, "jane")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String() + "/api/v2"

	db := filepath.Join(t.TempDir(), "hub.db")
	if _, _, err := runCLI(t, "hub", "connect", "--db", db, "--workspace", "Agency", "--name", "Acme", "--token", "ptok_wrong", "--base-url", base); err == nil ||
		!strings.Contains(err.Error(), "refused the credentials") {
		t.Fatalf("a wrong token: %v", err)
	}
	out, _, err := runCLI(t, "hub", "connect", "--db", db, "--workspace", "Agency", "--name", "Acme", "--token", tok, "--base-url", base)
	if err != nil || !strings.HasPrefix(out, "conn_") {
		t.Fatalf("connect: %q %v", out, err)
	}
	out, progress, err := runCLI(t, "hub", "sync", "--db", db)
	if err != nil || !strings.Contains(out, "customers         1 read,      1 new") || !strings.Contains(progress, "rewards: 1 pages, 1 records") {
		t.Fatalf("sync: %v\n%s\n%s", err, out, progress)
	}
	out, _, err = runCLI(t, "hub", "sync", "--db", db, "--workspace", "Agency")
	if err != nil || strings.Contains(out, " 1 new") || strings.Contains(out, " 1 changed") {
		t.Fatalf("an unchanged re-sync: %v\n%s", err, out)
	}
	out, _, err = runCLI(t, "hub", "report", "--db", db, "--workspace", "Agency")
	if err != nil || !strings.Contains(out, "Acme") || !strings.Contains(out, "49.00") || !strings.Contains(out, "9.80") {
		t.Fatalf("report: %v\n%s", err, out)
	}
	out, _, err = runCLI(t, "hub", "report", "--db", db, "--workspace", "Agency", "--json")
	var rep struct {
		Programs []struct {
			Referrals int
			Money     []struct{ Revenue, Earned int64 }
		}
	}
	if err != nil || json.Unmarshal([]byte(out), &rep) != nil || len(rep.Programs) != 1 || rep.Programs[0].Referrals != 1 ||
		rep.Programs[0].Money[0].Revenue != 4900 || rep.Programs[0].Money[0].Earned != 980 {
		t.Fatalf("report --json: %v\n%s", err, out)
	}
	out, _, err = runCLI(t, "hub", "token", "--db", db, "--workspace", "Agency")
	if err != nil || !strings.HasPrefix(out, "hubk_") {
		t.Fatalf("token: %q %v", out, err)
	}
	if _, _, err := runCLI(t, "hub", "report", "--db", db); err == nil {
		t.Fatal("report without --workspace succeeded")
	}
}
