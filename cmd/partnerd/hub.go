package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/partnerd/partnerd/internal/hub"
	"github.com/partnerd/partnerd/internal/money"
)

func hubCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "connect" {
		return hubConnect(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "sync" {
		return hubSync(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "report" {
		return hubReport(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "token" {
		return hubToken(ctx, args[1:], stdout, stderr)
	}
	fmt.Fprint(stderr, "usage: partnerd hub connect|sync|report|token [flags]\n")
	return errors.New("unknown hub command")
}

func hubConnect(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, db := newFlags("hub connect --workspace W --name NAME (--token TOKEN | --public-key PK --secret-key SK) [--base-url URL]",
		"Connects an agency's workspace to a program: a PartnerStack (or partnerd) partner token, or a vendor's key pair.\n"+
			"The credentials are checked with one read, then stored encrypted (PARTNERD_SECRET_KEY, or on SQLite a key file\n"+
			"beside the database). Prints the connection's key. The token may also come from PARTNERD_HUB_TOKEN.", stderr)
	ws := fs.String("workspace", "", "the workspace (an agency): its key or name; created on first use (required)")
	name := fs.String("name", "", "a name for the connection, unique in the workspace (required)")
	token := fs.String("token", os.Getenv("PARTNERD_HUB_TOKEN"), "a partner API token (Bearer)")
	pub := fs.String("public-key", "", "a vendor's public key (Basic, with --secret-key)")
	sec := fs.String("secret-key", "", "a vendor's secret key")
	base := fs.String("base-url", hub.DefaultBaseURL, "the source's v2 API")
	if err := fs.Parse(args); err != nil {
		return err
	}
	a, err := openQuiet(ctx, *db)
	if err != nil {
		return err
	}
	defer a.Close()
	c, err := a.Hub.Connect(ctx, hub.ConnectInput{Workspace: *ws, Name: *name, BaseURL: *base, Token: *token, PublicKey: *pub, SecretKey: *sec})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, c.Key)
	return nil
}

func hubSync(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, db := newFlags("hub sync [--connection KEY | --workspace W]",
		"Syncs connections now, read-only and incrementally, printing progress. Without flags, every active connection.", stderr)
	conn := fs.String("connection", "", "one connection's key")
	ws := fs.String("workspace", "", "every connection of one workspace")
	if err := fs.Parse(args); err != nil {
		return err
	}
	a, err := openQuiet(ctx, *db)
	if err != nil {
		return err
	}
	defer a.Close()
	var keys []string
	if *conn != "" {
		keys = []string{*conn}
	} else {
		list, err := a.Hub.Connections(ctx, *ws)
		if err != nil {
			return err
		}
		for _, c := range list {
			if c.Status == hub.StatusActive {
				keys = append(keys, c.Key)
			}
		}
	}
	var failed error
	for _, k := range keys {
		res, err := a.Hub.Sync(ctx, k, func(stream string, pages, records int) {
			fmt.Fprintf(stderr, "%s %s: %d pages, %d records\n", k, stream, pages, records)
		})
		for _, r := range res {
			sweep := ""
			if r.Sweep {
				sweep = fmt.Sprintf(", full sweep: %d gone", r.Deleted)
			}
			fmt.Fprintf(stdout, "%s %-12s %6d read, %6d new, %6d changed, %4d requests%s\n", k, r.Stream, r.Records, r.Created, r.Changed, r.Requests, sweep)
		}
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", k, err)
			failed = fmt.Errorf("a sync failed: %w", err)
		}
	}
	return failed
}

func hubReport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, db := newFlags("hub report --workspace W [--json]",
		"Reports what a workspace's programs hold, as last synced: per program and month, referrals, revenue and rewards by\n"+
			"status; missed rewards with their reasons; rewards paid against payouts received; organizations in several programs.", stderr)
	ws := fs.String("workspace", "", "the workspace: its key or name (required)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *ws == "" {
		fs.Usage()
		return errors.New("--workspace is required")
	}
	a, err := openQuiet(ctx, *db)
	if err != nil {
		return err
	}
	defer a.Close()
	rep, err := a.Hub.Report(ctx, *ws)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROGRAM\tMONTH\tREFERRALS\tCURRENCY\tREVENUE\tEARNED\tAPPROVED\tPAID\tPENDING\tHELD\tDECLINED")
	for _, p := range rep.Programs {
		if len(p.Money) == 0 {
			fmt.Fprintf(tw, "%s\t%s\t%d\t\t\t\t\t\t\t\t\n", p.Program, p.Month, p.Referrals)
		}
		for i, m := range p.Money {
			refs := ""
			if i == 0 {
				refs = fmt.Sprint(p.Referrals)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Program, p.Month, refs, m.Currency, amt(m.Revenue, m.Currency),
				amt(m.Earned, m.Currency), amt(m.Approved, m.Currency), amt(m.Paid, m.Currency), amt(m.Pending, m.Currency),
				amt(m.Held, m.Currency), amt(m.Declined, m.Currency))
		}
	}
	tw.Flush()
	fmt.Fprintf(stdout, "\nMissed (%d)\n", len(rep.Missed))
	tw = tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	for _, m := range rep.Missed {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s %s\t%s\n", m.Program, m.Kind, m.Key, amt(m.Amount, m.Currency), m.Currency, m.Reason)
	}
	tw.Flush()
	fmt.Fprintln(stdout, "\nPayouts")
	tw = tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	for _, r := range rep.Reconciliation {
		fmt.Fprintf(tw, "%s\t%s\trewards paid %s\tpayouts received %s\tdifference %s\n", r.Connection, r.Currency, amt(r.RewardsPaid, r.Currency),
			amt(r.PayoutsPaid, r.Currency), amt(r.Difference, r.Currency))
	}
	tw.Flush()
	fmt.Fprintln(stdout, "\nOrganizations in several programs")
	for _, s := range rep.SharedAccounts {
		fmt.Fprintf(stdout, "%s: %s (%d people)\n", s.Domain, strings.Join(s.Programs, ", "), s.Customers)
	}
	return nil
}

// amt prints an amount in minor units as a decimal in its currency's
// exponent (JPY has none, KWD three).
func amt(v int64, currency string) string { return money.FormatPlain(v, currency) }

func hubToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, db := newFlags("hub token --workspace W",
		"Makes an API token for a workspace (created on first use): Bearer for /api/hub/…. It is shown once and stored as a hash.", stderr)
	ws := fs.String("workspace", "", "the workspace: its key or name (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	a, err := openQuiet(ctx, *db)
	if err != nil {
		return err
	}
	defer a.Close()
	tok, err := a.Hub.CreateToken(ctx, *ws)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}
