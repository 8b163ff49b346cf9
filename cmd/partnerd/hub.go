package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/partnerd/partnerd/internal/hub"
)

func hubCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "connect" {
		return hubConnect(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "sync" {
		return hubSync(ctx, args[1:], stdout, stderr)
	}
	fmt.Fprint(stderr, "usage: partnerd hub connect|sync [flags]\n")
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
