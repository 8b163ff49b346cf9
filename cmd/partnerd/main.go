// Command partnerd runs a partner program engine with a PartnerStack-
// compatible API. Subcommands only parse flags and call into internal/.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/partnerd/partnerd/internal/app"
	"github.com/partnerd/partnerd/internal/program"
	"github.com/partnerd/partnerd/internal/store"
)

const usage = `partnerd: a partner program engine with a PartnerStack-compatible API

Usage:
  partnerd demo             seed a realistic program into ./partnerd-demo.db and serve it, with logins
  partnerd serve            run the HTTP server (applies migrations first)
  partnerd migrate          apply database migrations and exit
  partnerd program create   create a company (a vendor's program) and print its keys
  partnerd program configure
                            change a company's website, link domain, cookie domain,
                            attribution window and allowed origins
  partnerd program tracking-token
                            print a new token for server-to-server conversions
  partnerd partner token    print a new API token for one partnership
  partnerd offer create|list
                            create or list a company's offers
  partnerd payouts run|export
                            gather a month's approved rewards into payouts, or export them as CSV
  partnerd rewards recompute
                            rebuild every unpaid reward from its causes
  partnerd billing configure
                            store a billing provider's webhook secret (encrypted)
  partnerd events list|replay
                            see the billing inbox, or run its events again
  partnerd import TYPE FILE.csv
                            import groups, partners, customers, transactions, leads, deals or rewards
  partnerd export           write every object type as CSV and JSON lines
  partnerd hub connect|sync connect an agency to a program by token; sync it (read-only)
  partnerd user create      create a web app user: vendor, partner (portal) or agency
  partnerd version          print the version

Every command takes --db (env PARTNERD_DB): a SQLite file path (default
./partnerd.db) or a postgres:// URL. Run "partnerd COMMAND --help" for more.
`

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "partnerd:", err)
		}
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stderr)
	case "migrate":
		return migrate(ctx, args[1:], stdout, stderr)
	case "program":
		switch {
		case len(args) >= 2 && args[1] == "create":
			return programCreate(ctx, args[2:], stdout, stderr)
		case len(args) >= 2 && args[1] == "configure":
			return programConfigure(ctx, args[2:], stdout, stderr)
		case len(args) >= 2 && args[1] == "tracking-token":
			return trackingToken(ctx, args[2:], stdout, stderr)
		}
		fmt.Fprint(stderr, "usage: partnerd program create|configure|tracking-token [flags]\n")
		return errors.New("unknown program command")
	case "partner":
		if len(args) < 2 || args[1] != "token" {
			fmt.Fprint(stderr, "usage: partnerd partner token --company KEY --partner-key PK\n")
			return errors.New("unknown partner command")
		}
		return partnerToken(ctx, args[2:], stdout, stderr)
	case "offer":
		return offerCmd(ctx, args[1:], stdout, stderr)
	case "payouts":
		return payoutsCmd(ctx, args[1:], stdout, stderr)
	case "rewards":
		return rewardsCmd(ctx, args[1:], stdout, stderr)
	case "billing":
		return billingCmd(ctx, args[1:], stdout, stderr)
	case "events":
		return eventsCmd(ctx, args[1:], stdout, stderr)
	case "import":
		return importCmd(ctx, args[1:], stdout, stderr)
	case "export":
		return exportCmd(ctx, args[1:], stdout, stderr)
	case "hub":
		return hubCmd(ctx, args[1:], stdout, stderr)
	case "user":
		return userCmd(ctx, args[1:], stdout, stderr)
	case "demo":
		return demoCmd(ctx, args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "partnerd", app.Version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

// envOr returns the environment variable's value, or def.
func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func newFlags(name, summary string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	db := fs.String("db", envOr("PARTNERD_DB", "./partnerd.db"), "database: SQLite file path or postgres:// URL (env PARTNERD_DB)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: partnerd %s\n\n%s\n\nFlags:\n", name, summary)
		fs.PrintDefaults()
	}
	return fs, db
}

func logger(w io.Writer, format string) *slog.Logger {
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, nil))
	}
	return slog.New(slog.NewJSONHandler(w, nil))
}

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	fs, db := newFlags("serve [flags]", "Runs the HTTP API. Stops gracefully on SIGINT or SIGTERM.", stderr)
	addr := fs.String("addr", envOr("PARTNERD_ADDR", "127.0.0.1:8080"), "listen address (env PARTNERD_ADDR)")
	logFormat := fs.String("log-format", envOr("PARTNERD_LOG_FORMAT", "json"), "log format: json or text (env PARTNERD_LOG_FORMAT)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	a, err := app.Open(ctx, app.Config{DB: *db, Addr: *addr, Logger: logger(stderr, *logFormat)})
	if err != nil {
		return err
	}
	defer a.Close()
	return a.Serve(ctx, nil)
}

func migrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, db := newFlags("migrate [flags]", "Applies the embedded database migrations.", stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	d, err := store.Open(ctx, *db)
	if err != nil {
		return err
	}
	defer d.Close()
	applied, err := d.Migrate(ctx)
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintln(stdout, "database is up to date")
	}
	for _, m := range applied {
		fmt.Fprintln(stdout, "applied", m)
	}
	return nil
}

func openQuiet(ctx context.Context, db string) (*app.App, error) {
	return app.Open(ctx, app.Config{DB: db, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
}

type keyPairJSON struct {
	PublicKey string `json:"public_key"`
	SecretKey string `json:"secret_key"`
}

func programCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, db := newFlags("program create --name NAME [--website URL] [--json]",
		"Creates a company with production and test key pairs, a default group and the test partner gstest.\nThe secret keys are shown once and stored only as hashes.", stderr)
	name := fs.String("name", "", "the company's name (required)")
	website := fs.String("website", "", "the company's website, where referral links point by default")
	asJSON := fs.Bool("json", false, "print the keys as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *name == "" {
		fs.Usage()
		return errors.New("--name is required")
	}
	a, err := openQuiet(ctx, *db)
	if err != nil {
		return err
	}
	defer a.Close()
	c, err := a.Program.CreateCompany(ctx, *name, *website)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(struct {
			CompanyKey string      `json:"company_key"`
			Production keyPairJSON `json:"production"`
			Test       keyPairJSON `json:"test"`
		}{c.Key, keyPairJSON{c.Production.PublicKey, c.Production.SecretKey}, keyPairJSON{c.Test.PublicKey, c.Test.SecretKey}})
	}
	fmt.Fprintf(stdout, "company %s (%s)\n\nproduction  public key %s\n            secret key %s\ntest        public key %s\n            secret key %s\n\nThe secret keys are not shown again.\n",
		c.Key, c.Name, c.Production.PublicKey, c.Production.SecretKey, c.Test.PublicKey, c.Test.SecretKey)
	return nil
}

func partnerToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, db := newFlags("partner token --company KEY --partner-key PK",
		"Prints a new API token for one partnership. The partner uses it as\n\"Authorization: Bearer TOKEN\" to read its partnerships, customers and transactions.", stderr)
	company := fs.String("company", "", "the company key (required)")
	partnerKey := fs.String("partner-key", "", "the partner key of the partnership (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *company == "" || *partnerKey == "" {
		fs.Usage()
		return errors.New("--company and --partner-key are required")
	}
	a, err := openQuiet(ctx, *db)
	if err != nil {
		return err
	}
	defer a.Close()
	tok, err := a.Program.CreatePartnerToken(ctx, *company, *partnerKey)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return fmt.Sprint(*l) }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func programConfigure(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, db := newFlags("program configure --company KEY [flags]",
		"Changes a company's tracking and payout settings. Only the flags given change. A running\nserver sees a tracking change within 30 seconds.", stderr)
	company := fs.String("company", "", "the company key (required)")
	website := fs.String("website", "", "where referral links point by default (http or https URL)")
	linkDomain := fs.String("link-domain", "", "a host of the vendor's that points at partnerd, e.g. go.example.com: GET /{slug} there is a referral link")
	cookieDomain := fs.String("cookie-domain", "", "the vendor's registrable domain, e.g. example.com: redirects served under it set attribution cookies")
	days := fs.Int("attribution-days", 0, "how long a click is remembered, 1 to 730 (default for new programs 90)")
	payoutMinimum := fs.String("payout-minimum", "", "the smallest payout total in major units, e.g. 50.00 (default 5.00); less carries over")
	var origins stringList
	fs.Var(&origins, "allowed-origin", "an origin, e.g. https://app.example.com, whose pages may call createSignup (repeatable; replaces the list)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *company == "" {
		fs.Usage()
		return errors.New("--company is required")
	}
	var in program.CompanySettings
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "website":
			in.Website = website
		case "link-domain":
			in.LinkDomain = linkDomain
		case "cookie-domain":
			in.CookieDomain = cookieDomain
		case "attribution-days":
			in.AttributionDays = days
		case "allowed-origin":
			list := []string(origins)
			in.AllowedOrigins = &list
		case "payout-minimum":
			in.PayoutMinimum = payoutMinimum
		}
	})
	a, err := openQuiet(ctx, *db)
	if err != nil {
		return err
	}
	defer a.Close()
	c, err := a.Program.ConfigureCompany(ctx, *company, in)
	if err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(map[string]any{"company_key": c.Key, "website": c.Website, "link_domain": c.LinkDomain,
		"cookie_domain": c.CookieDomain, "attribution_days": c.AttributionDays, "allowed_origins": c.AllowedOrigins,
		"payout_minimum": c.PayoutMinimum})
}

func trackingToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, db := newFlags("program tracking-token --company KEY",
		"Prints a new token for PartnerStack's server-to-server call, POST /conversion/xid\nwith \"Authorization: Bearer TOKEN\". It is shown once and stored only as a hash.", stderr)
	company := fs.String("company", "", "the company key (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *company == "" {
		fs.Usage()
		return errors.New("--company is required")
	}
	a, err := openQuiet(ctx, *db)
	if err != nil {
		return err
	}
	defer a.Close()
	tok, err := a.Program.CreateTrackingToken(ctx, *company)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}
