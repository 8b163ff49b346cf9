package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/partnerd/partnerd/internal/app"
	"github.com/partnerd/partnerd/internal/ledger"
	"github.com/partnerd/partnerd/internal/program"
)

func TestOfferPayoutAndRecomputeCommands(t *testing.T) {
	ctx := context.Background()
	db, co := cliCompany(t)

	if _, _, err := runCLI(t, "offer", "create", "--db", db, "--company", co, "--name", "Rev", "--trigger", "transaction", "--type", "percent", "--rate", "200"); err == nil || !strings.Contains(err.Error(), "'rate'") {
		t.Fatalf("a bad rate was accepted: %v", err)
	}
	if _, _, err := runCLI(t, "offer", "create", "--db", db, "--company", co, "--name", "Rev", "--trigger", "transaction", "--type", "percent", "--duration-months", "x"); err == nil {
		t.Fatal("a non-integer --duration-months was accepted")
	}
	key, _, err := runCLI(t, "offer", "create", "--db", db, "--company", co, "--name", "Rev share", "--trigger", "transaction", "--type", "percent", "--rate", "12.5", "--duration-months", "12")
	if err != nil || !strings.HasPrefix(key, "offr_") {
		t.Fatalf("offer create: %q %v", key, err)
	}
	list, _, err := runCLI(t, "offer", "list", "--db", db, "--company", co)
	if err != nil || !strings.Contains(list, strings.TrimSpace(key)) || !strings.Contains(list, "12.5%") {
		t.Fatalf("offer list:\n%s %v", list, err)
	}

	// Data for a payout, through the services the API uses.
	a, err := app.Open(ctx, app.Config{DB: db})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := a.Program.CompanyByKey(ctx, co)
	p := program.Principal{CompanyID: c.ID}
	pk, email := "ann", "ann@agency.io"
	if _, err := a.Program.CreatePartnership(ctx, p, program.PartnershipInput{Email: &email, PartnerKey: &pk}); err != nil {
		t.Fatal(err)
	}
	ck, cemail := "c1", "c1@client.com"
	if _, _, err := a.Program.CreateCustomer(ctx, p, program.CustomerInput{CustomerKey: &ck, Email: &cemail, PartnerKey: &pk}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Ledger.CreateTransaction(ctx, p, ledger.TransactionInput{Customer: program.CustomerRef{Key: "c1"}, Amount: 10000, Currency: "USD"}); err != nil {
		t.Fatal(err)
	}
	a.Close()
	period := time.Now().UTC().Format("2006-01")

	out, _, err := runCLI(t, "rewards", "recompute", "--db", db, "--company", co)
	if err != nil || !strings.Contains(out, "0 rewards created, 0 updated, 0 archived") {
		t.Fatalf("recompute of unchanged data: %q %v", out, err)
	}
	// A minimum above the 12.50 owed carries it over; a bad one changes nothing.
	if _, _, err := runCLI(t, "program", "configure", "--db", db, "--company", co, "--payout-minimum", "-1"); err == nil || !strings.Contains(err.Error(), "'payout-minimum'") {
		t.Fatalf("a negative minimum was accepted: %v", err)
	}
	out, _, err = runCLI(t, "program", "configure", "--db", db, "--company", co, "--payout-minimum", "20.00")
	if err != nil || !strings.Contains(out, `"payout_minimum":"20.00"`) {
		t.Fatalf("configure --payout-minimum: %q %v", out, err)
	}
	out, _, err = runCLI(t, "payouts", "run", "--db", db, "--company", co, "--period", period)
	if err != nil || !strings.Contains(out, "0 payouts created, 1 totals carried over") {
		t.Fatalf("payouts run under a 20.00 minimum: %q %v", out, err)
	}
	if _, _, err := runCLI(t, "program", "configure", "--db", db, "--company", co, "--payout-minimum", "12.50"); err != nil {
		t.Fatal(err)
	}
	out, _, err = runCLI(t, "payouts", "run", "--db", db, "--company", co, "--period", period)
	if err != nil || !strings.Contains(out, "ann\t1250 USD\t1 rewards") || !strings.Contains(out, "1 payouts created") {
		t.Fatalf("payouts run: %q %v", out, err)
	}
	out, _, err = runCLI(t, "payouts", "run", "--db", db, "--company", co, "--period", period)
	if err != nil || !strings.Contains(out, "0 payouts created") {
		t.Fatalf("second run: %q %v", out, err)
	}
	csv, _, err := runCLI(t, "payouts", "export", "--db", db, "--company", co, "--period", period)
	if err != nil || !strings.Contains(csv, ",ann,ann@agency.io,,12.50,USD,1250,1,pending,") {
		t.Fatalf("export:\n%s %v", csv, err)
	}
	if _, _, err := runCLI(t, "payouts", "run", "--db", db, "--company", co, "--period", "2026-13"); err == nil {
		t.Fatal("a bad period was accepted")
	}
	if _, _, err := runCLI(t, "payouts", "run", "--db", db, "--company", "comp_nope", "--period", period); err == nil {
		t.Fatal("an unknown company was accepted")
	}
}
