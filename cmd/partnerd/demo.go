package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/partnerd/partnerd/internal/accounts"
	"github.com/partnerd/partnerd/internal/app"
	"github.com/partnerd/partnerd/internal/clock"
	"github.com/partnerd/partnerd/internal/demo"
	"github.com/partnerd/partnerd/internal/hub"
	"github.com/partnerd/partnerd/internal/program"
)

// The demo's logins. They are printed, and they are the same on every
// machine: the demo is for looking around, never for real data.
const (
	demoPassword   = "partnerd-demo"
	demoVendor     = "owner@acme-analytics.example"
	demoAgency     = "agency@northwind.example"
	demoWorkspace  = "Northwind Agency"
	demoConnection = "Acme Analytics (this demo)"
)

func demoCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, db := newFlags("demo [--db FILE] [--addr HOST:PORT] [--scale N]",
		"Seeds a realistic partner program into a new database and serves it: a vendor dashboard, a partner portal and an\n"+
			"agency hub whose connection syncs from this same server. Prints the URL and the logins. Run it again on the same\n"+
			"database to serve it again without seeding.", stderr)
	fs.Lookup("db").DefValue = "./partnerd-demo.db"
	if os.Getenv("PARTNERD_DB") == "" {
		*db = "./partnerd-demo.db"
	}
	addr := fs.String("addr", envOr("PARTNERD_ADDR", "127.0.0.1:8080"), "listen address (env PARTNERD_ADDR)")
	scale := fs.Int("scale", 1, "multiply the customers, payments and clicks (1: about 12,000 customers and 47,000 payments)")
	partners := fs.Int("partners", 60, "how many partners")
	customers := fs.Int("customers", 0, "how many customers, instead of 12,000 × scale")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The seeder walks this clock through the year it seeds, then returns
	// it to the present before the server starts.
	clk := &clock.Shifted{}
	a, err := app.Open(ctx, app.Config{DB: *db, Addr: *addr, Clock: clk, Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		return err
	}
	defer a.Close()
	seeded, partnerKey, err := demoState(ctx, a)
	if err != nil {
		return err
	}
	if !seeded {
		began := time.Now()
		res, err := demo.Seed(ctx, demo.Services{DB: a.DB, Program: a.Program, Ledger: a.Ledger, Importer: a.Importer},
			demo.Options{Partners: *partners, Scale: *scale, Customers: *customers, Seed: 1, Clock: clk, Progress: func(s string) { fmt.Fprintln(stdout, "demo:", s) }})
		if err != nil {
			return fmt.Errorf("seed the demo: %w", err)
		}
		fmt.Fprintf(stdout, "demo: seeded %d partners, %d customers, %d payments (%d refunds), %d clicks and %d payouts in %s\n",
			res.Partners, res.Customers, res.Transactions, res.Refunds, res.Clicks, res.Payouts, time.Since(began).Round(100*time.Millisecond))
		partnerKey = res.DemoPartner
		if err := demoUsers(ctx, a, res.Principal, partnerKey); err != nil {
			return err
		}
		// The tables were empty when the database was opened: the
		// planner's statistics are taken again now that they are not.
		if err := a.DB.Optimize(ctx); err != nil {
			return err
		}
	}
	company, err := demoCompany(ctx, a)
	if err != nil {
		return err
	}
	return a.Serve(ctx, func(bound string) {
		base := "http://" + bound
		// The agency's connection reads this very server, as a partner,
		// through the same API a PartnerStack token would. It is made again
		// on each start, with a new token, since the address may differ.
		token, err := a.Program.CreatePartnerToken(ctx, company, partnerKey)
		if err != nil {
			fmt.Fprintln(stderr, "demo: a partner token for the hub:", err)
		} else {
			c, err := a.Hub.Connect(ctx, hub.ConnectInput{Workspace: demoWorkspace, Name: demoConnection, BaseURL: base + "/api/v2", Token: token})
			if err != nil {
				fmt.Fprintln(stderr, "demo: connecting the hub:", err)
			} else {
				// The first sync now, not at the schedule's next look.
				go func() {
					if _, err := a.Hub.Sync(ctx, c.Key, nil); err != nil && ctx.Err() == nil {
						fmt.Fprintln(stderr, "demo: the hub's first sync:", err)
					} else if err == nil {
						_ = a.Hub.Warm(ctx, demoWorkspace)
					}
				}()
			}
		}
		fmt.Fprintf(stdout, `
partnerd demo is running at %[1]s  (Ctrl-C stops it; the data stays in %[2]s)

  Vendor dashboard   %[1]s/login         %[3]s / %[6]s
  Partner portal     %[1]s/portal/login  %[4]s@partners.example / %[6]s
  Agency hub         %[1]s/login         %[5]s / %[6]s
`, base, *db, demoVendor, partnerKey, demoAgency, demoPassword)
	})
}

// demoState tells whether the database holds the demo already, and its
// partner's key.
func demoState(ctx context.Context, a *app.App) (bool, string, error) {
	var n int
	if err := a.DB.QueryRow(ctx, "SELECT COUNT(*) FROM companies WHERE name = ?", demo.CompanyName).Scan(&n); err != nil {
		return false, "", fmt.Errorf("look for the demo: %w", err)
	}
	if n == 0 {
		var others int
		if err := a.DB.QueryRow(ctx, "SELECT COUNT(*) FROM companies").Scan(&others); err != nil {
			return false, "", err
		}
		if others > 0 {
			return false, "", errors.New("this database holds another program: give the demo a database of its own (--db)")
		}
		return false, "", nil
	}
	var email string
	err := a.DB.QueryRow(ctx, `SELECT u.email FROM web_users u WHERE u.kind = 'partner' ORDER BY u.id LIMIT 1`).Scan(&email)
	if err != nil {
		return true, "", fmt.Errorf("find the demo's partner: %w", err)
	}
	return true, email[:len(email)-len("@partners.example")], nil
}

// demoCompany is the demo company's key.
func demoCompany(ctx context.Context, a *app.App) (string, error) {
	var key string
	if err := a.DB.QueryRow(ctx, "SELECT key FROM companies WHERE name = ?", demo.CompanyName).Scan(&key); err != nil {
		return "", fmt.Errorf("find the demo company: %w", err)
	}
	return key, nil
}

// demoUsers makes the demo's three logins.
func demoUsers(ctx context.Context, a *app.App, p program.Principal, partnerKey string) error {
	ps, err := a.Program.GetPartnership(ctx, p, partnerKey)
	if err != nil {
		return err
	}
	ws, err := a.Hub.EnsureWorkspace(ctx, demoWorkspace)
	if err != nil {
		return err
	}
	for _, in := range []accounts.UserInput{
		{Kind: accounts.Vendor, Email: demoVendor, Name: "Olivia Owner", Role: accounts.Owner, CompanyID: p.CompanyID},
		{Kind: accounts.Partner, Email: ps.Email, Name: name2(ps), Role: accounts.Viewer, CompanyID: p.CompanyID, PartnershipID: ps.ID},
		{Kind: accounts.Agency, Email: demoAgency, Name: "Nadia Northwind", Role: accounts.Owner, WorkspaceID: ws.ID},
	} {
		in.Password = demoPassword
		if _, err := a.Accounts.CreateUser(ctx, in); err != nil {
			return fmt.Errorf("create the demo's %s login: %w", in.Kind, err)
		}
	}
	return nil
}

func name2(ps program.Partnership) string { return ps.FirstName + " " + ps.LastName }
