package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/partnerd/partnerd/internal/billing"
)

func billingCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "configure" {
		fmt.Fprint(stderr, "usage: partnerd billing configure --company KEY --provider P --secret S [--test] [--payments-from charge|invoice] [--currency C]\n")
		return errors.New("unknown billing command")
	}
	fs, db := newFlags("billing configure --company KEY --provider stripe|chargebee|chargify|recurly --secret S [flags]",
		"Stores a billing provider's webhook secret for a company, encrypted (PARTNERD_SECRET_KEY, or on SQLite a key file\nbeside the database), and prints the path the provider must post to.", stderr)
	company := fs.String("company", "", "company key (required)")
	provider := fs.String("provider", "", "stripe, chargebee, chargify or recurly (required)")
	sec := fs.String("secret", "", "Stripe endpoint secret (whsec_…), Chargebee basic-auth user:password, Chargify site shared key, Recurly endpoint key")
	test := fs.Bool("test", false, "configure the test-mode endpoint (its events never earn)")
	from := fs.String("payments-from", "", "stripe: charge (charge.succeeded, the default) or invoice (invoice.payment_succeeded)")
	currency := fs.String("currency", "", "chargify, recurly: the site's currency, for payments that name none (default USD)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	a, p, err := openCompany(ctx, *db, *company)
	if err != nil {
		fs.Usage()
		return err
	}
	defer a.Close()
	c, err := a.Billing.Configure(ctx, p.CompanyID, billing.ConfigInput{Provider: *provider, Test: *test, Secret: *sec, PaymentsFrom: *from,
		Currency: *currency})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, billing.WebhookPath(c.Provider, *company, c.Test))
	return nil
}

func eventsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "list" {
		return eventsList(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "replay" {
		return eventsReplay(ctx, args[1:], stdout, stderr)
	}
	fmt.Fprint(stderr, "usage: partnerd events list|replay --company KEY [flags]\n")
	return errors.New("unknown events command")
}

func eventsList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, db := newFlags("events list --company KEY [--failed] [--status S] [--test] [--limit N]",
		"Lists a company's billing inbox, newest first: provider, event, status and the reason.", stderr)
	company := fs.String("company", "", "company key (required)")
	failed := fs.Bool("failed", false, "only events whose processing failed")
	status := fs.String("status", "", "only this status: pending, done, waiting, failed or ignored")
	test := fs.Bool("test", false, "the test-mode inbox")
	limit := fs.Int("limit", 50, "how many, 1 to 1000")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *failed {
		if *status != "" && *status != billing.StatusFailed {
			return errors.New("--failed and --status disagree")
		}
		*status = billing.StatusFailed
	}
	if *limit < 1 || *limit > 1000 {
		return errors.New("--limit must be from 1 to 1000")
	}
	a, p, err := openCompany(ctx, *db, *company)
	if err != nil {
		fs.Usage()
		return err
	}
	defer a.Close()
	evs, more, err := a.Billing.ListEvents(ctx, p.CompanyID, *test, billing.EventFilter{Status: *status}, *limit)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tRECEIVED\tPROVIDER\tEVENT\tTYPE\tSTATUS\tATTEMPTS\tREASON")
	for _, e := range evs {
		reason := ""
		if e.Reason != nil {
			reason = strings.ReplaceAll(*e.Reason, "\n", " ")
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", e.ID, time.UnixMilli(e.ReceivedAt).UTC().Format(time.RFC3339), e.Provider,
			e.EventID, e.Type, e.Status, e.Attempts, reason)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if more {
		fmt.Fprintf(stdout, "(more: raise --limit)\n")
	}
	return nil
}

func eventsReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, db := newFlags("events replay --company KEY (--id ID | --since TIME)",
		"Makes billing events due again: one by id, or all received since TIME (RFC 3339, or a duration ago such as 24h).\nA running server processes them within a second. Payments are keyed by the provider's id, so a replay never adds money twice.", stderr)
	company := fs.String("company", "", "company key (required)")
	id := fs.Int64("id", 0, "an event id (from events list)")
	since := fs.String("since", "", "replay every event received since this time")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if (*id > 0) == (*since != "") {
		fs.Usage()
		return errors.New("give exactly one of --id or --since")
	}
	var from int64
	if *since != "" {
		if d, err := time.ParseDuration(*since); err == nil && d > 0 {
			from = time.Now().Add(-d).UnixMilli()
		} else if t, err := time.Parse(time.RFC3339, *since); err == nil {
			from = t.UnixMilli()
		} else {
			return fmt.Errorf("--since must be RFC 3339 (2026-11-01T00:00:00Z) or a duration (24h): %q", *since)
		}
	}
	a, p, err := openCompany(ctx, *db, *company)
	if err != nil {
		fs.Usage()
		return err
	}
	defer a.Close()
	n, err := a.Billing.Replay(ctx, p.CompanyID, *id, from)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d events queued to replay\n", n)
	return nil
}
