// Package app wires partnerd together: config → store → services → HTTP
// server → shutdown. It is the only place that knows every package.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/partnerd/partnerd/internal/accounts"
	"github.com/partnerd/partnerd/internal/api"
	"github.com/partnerd/partnerd/internal/billing"
	"github.com/partnerd/partnerd/internal/clock"
	"github.com/partnerd/partnerd/internal/hub"
	"github.com/partnerd/partnerd/internal/importer"
	"github.com/partnerd/partnerd/internal/ledger"
	"github.com/partnerd/partnerd/internal/pipeline"
	"github.com/partnerd/partnerd/internal/program"
	"github.com/partnerd/partnerd/internal/secret"
	"github.com/partnerd/partnerd/internal/stats"
	"github.com/partnerd/partnerd/internal/store"
	"github.com/partnerd/partnerd/internal/tracking"
	"github.com/partnerd/partnerd/internal/web"
	"github.com/partnerd/partnerd/internal/webhooks"
)

// Version is set at build time with -ldflags "-X .../internal/app.Version=...".
var Version = "dev"

// Config is what partnerd needs to run.
type Config struct {
	DB     string // SQLite path or postgres:// URL
	Addr   string // listen address
	Clock  clock.Clock
	Logger *slog.Logger
	// ShutdownTimeout bounds how long in-flight requests may take to finish.
	ShutdownTimeout time.Duration
	// WebhookEvery is how often queued webhooks are sent (default 500 ms).
	WebhookEvery time.Duration
	// BillingEvery is how often the billing inbox is processed (default 500 ms).
	BillingEvery time.Duration
	// ImportEvery is how often uploaded imports are looked for (default 1 s).
	ImportEvery time.Duration
	// Hub tunes the partner hub's syncs (zero: hub.DefaultConfig).
	Hub hub.Config
	// HubEvery is how often connections due a sync are looked for (default 1 min).
	HubEvery time.Duration
	// StatsEvery is how often the dashboard's rollups are brought up to
	// date (default 5 s).
	StatsEvery time.Duration
	// SecretKey encrypts billing providers' secrets (32 bytes). When nil it
	// comes from PARTNERD_SECRET_KEY or, on SQLite, a key file beside the
	// database (created on first use); on PostgreSQL without either, no
	// provider can be configured.
	SecretKey []byte
}

// App is a running partnerd: its database, services and HTTP handler.
type App struct {
	cfg      Config
	DB       *store.DB
	Program  *program.Service
	Ledger   *ledger.Service
	Tracking *tracking.Service
	Webhooks *webhooks.Service
	Billing  *billing.Service
	Importer *importer.Service
	Pipeline *pipeline.Service
	Hub      *hub.Service
	Accounts *accounts.Service
	Stats    *stats.Service
	API      *api.Server
	Handler  http.Handler
}

// Open opens the database, applies migrations and builds the services.
func Open(ctx context.Context, cfg Config) (*App, error) {
	if cfg.Clock == nil {
		cfg.Clock = clock.System{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 30 * time.Second
	}
	if cfg.WebhookEvery == 0 {
		cfg.WebhookEvery = 500 * time.Millisecond
	}
	if cfg.BillingEvery == 0 {
		cfg.BillingEvery = 500 * time.Millisecond
	}
	if cfg.ImportEvery == 0 {
		cfg.ImportEvery = time.Second
	}
	if cfg.HubEvery == 0 {
		cfg.HubEvery = time.Minute
	}
	db, err := store.Open(ctx, cfg.DB)
	if err != nil {
		return nil, err
	}
	applied, err := db.Migrate(ctx)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate: %w", err)
	}
	for _, m := range applied {
		cfg.Logger.Info("applied migration", slog.String("name", m))
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	prog := program.New(db, cfg.Clock)
	if err := prog.EnsureDefaultLinks(ctx); err != nil {
		db.Close()
		return nil, err
	}
	led := ledger.New(db, cfg.Clock, prog)
	trk, err := tracking.New(ctx, db, cfg.Clock, prog, cfg.Logger, reg)
	if err != nil {
		db.Close()
		return nil, err
	}
	key := cfg.SecretKey
	if key == nil {
		keyFile := ""
		if db.Dialect() == store.SQLite {
			keyFile = strings.TrimPrefix(cfg.DB, "sqlite://") + ".key"
		}
		if key, err = secret.LoadKey(keyFile, true); err != nil {
			db.Close()
			return nil, err
		}
	}
	var box *secret.Box
	if key != nil {
		if box, err = secret.NewBox(key); err != nil {
			db.Close()
			return nil, err
		}
	}
	bill := billing.New(db, cfg.Clock, prog, led, box)
	// A new customer earns its sign-up rewards and lets billing events
	// that waited for it go on, in the transaction that creates it.
	signup := func(ctx context.Context, q store.Querier, cu program.Customer) error {
		if err := led.RewardSignup(ctx, q, cu); err != nil {
			return err
		}
		return bill.CustomerCreated(ctx, q, cu)
	}
	prog.OnCustomerCreated(signup)
	// Approving a lead or winning a deal earns in the same transaction;
	// undoing it reverses.
	pipe := pipeline.New(db, cfg.Clock, prog)
	pipe.OnChange(led.SettleLead, led.SettleDeal)
	// Imported customers run the same hook, or only billing's part when
	// the import is history that earns nothing (--no-rewards).
	imp := importer.New(db, cfg.Clock, prog, led, pipe, importer.Hooks{Signup: signup, NoRewards: bill.CustomerCreated})
	if cfg.Hub.Limits.MaxAttempts == 0 {
		if cfg.Hub, err = hub.ConfigFromEnv(os.Getenv); err != nil {
			db.Close()
			return nil, err
		}
	}
	// Connection tokens are sealed with the same key as billing secrets.
	hb := hub.New(db, cfg.Clock, box, cfg.Hub)
	srv := api.New(prog, led, trk, db.Ping, cfg.Logger, api.NewMetrics(reg))
	srv.UseBilling(bill)
	srv.UseImporter(imp)
	srv.UsePipeline(pipe)
	srv.UseHub(hb)
	hooks := webhooks.New(db, cfg.Clock, srv.RenderEvent, nil)
	srv.UseWebhooks(hooks)
	srv.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	users := accounts.New(db, cfg.Clock)
	rollups := stats.New(db, cfg.Clock)
	site, err := web.New(web.Deps{DB: db, Clock: cfg.Clock, Log: cfg.Logger, Accounts: users, Program: prog, Ledger: led, Hub: hb, Stats: rollups, Importer: imp, Billing: bill, Webhooks: hooks})
	if err != nil {
		db.Close()
		return nil, err
	}
	site.Routes(srv)
	return &App{cfg: cfg, DB: db, Program: prog, Ledger: led, Tracking: trk, Webhooks: hooks, Billing: bill, Importer: imp, Pipeline: pipe, Hub: hb,
		Accounts: users, Stats: rollups, API: srv, Handler: srv}, nil
}

// runSchedules approves rewards whose hold period is over every 30 seconds
// and runs last month's payouts once a month (checked hourly).
func (a *App) runSchedules(ctx context.Context) {
	approve := time.NewTicker(30 * time.Second)
	defer approve.Stop()
	payouts := time.NewTicker(time.Hour)
	defer payouts.Stop()
	every := a.cfg.StatsEvery
	if every <= 0 {
		every = 5 * time.Second
	}
	rollups := time.NewTicker(every)
	defer rollups.Stop()
	runPayouts := func() {
		if n, err := a.Ledger.RunScheduled(ctx); err != nil && ctx.Err() == nil {
			a.cfg.Logger.Error("scheduled payout run", slog.Any("err", err))
		} else if n > 0 {
			a.cfg.Logger.Info("scheduled payout run", slog.Int("companies", n))
		}
	}
	runPayouts()
	for {
		select {
		case <-ctx.Done():
			return
		case <-approve.C:
			if _, err := a.Ledger.ApprovePendingNow(ctx); err != nil && ctx.Err() == nil {
				a.cfg.Logger.Error("approve matured rewards", slog.Any("err", err))
			}
		case <-payouts.C:
			runPayouts()
			if err := a.DB.Optimize(ctx); err != nil && ctx.Err() == nil {
				a.cfg.Logger.Error("the query planner's statistics", slog.Any("err", err))
			}
		case <-rollups.C:
			if err := a.Stats.Refresh(ctx); err != nil && !errors.Is(err, stats.ErrBusy) && ctx.Err() == nil {
				a.cfg.Logger.Error("refresh the dashboard's rollups", slog.Any("err", err))
			}
		}
	}
}

// Close writes buffered clicks and releases the database.
func (a *App) Close() error {
	err := a.Tracking.Close(context.Background())
	if cerr := a.DB.Close(); err == nil {
		err = cerr
	}
	return err
}

// Serve listens on the configured address until ctx ends, then stops taking
// connections and lets in-flight requests finish before returning.
func (a *App) Serve(ctx context.Context, ready func(addr string)) error {
	ln, err := net.Listen("tcp", a.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.cfg.Addr, err)
	}
	return a.ServeListener(ctx, ln, ready)
}

// ServeListener is Serve on a listener the caller opened.
func (a *App) ServeListener(ctx context.Context, ln net.Listener, ready func(addr string)) error {
	hs := &http.Server{
		Handler:           a.Handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(a.cfg.Logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	// Background work: webhook deliveries, the end of reward hold periods
	// and the monthly payout run. It stops with the server.
	bg, stopBG := context.WithCancel(context.Background())
	var bgDone sync.WaitGroup
	defer func() { stopBG(); bgDone.Wait() }()
	bgDone.Add(5)
	go func() { defer bgDone.Done(); a.Hub.Run(bg, a.cfg.Logger, a.cfg.HubEvery) }()
	go func() { defer bgDone.Done(); a.Webhooks.Run(bg, a.cfg.Logger, a.cfg.WebhookEvery) }()
	go func() { defer bgDone.Done(); a.Importer.Run(bg, a.cfg.Logger, a.cfg.ImportEvery) }()
	go func() { defer bgDone.Done(); a.Billing.Run(bg, a.cfg.Logger, a.cfg.BillingEvery) }()
	go func() { defer bgDone.Done(); a.runSchedules(bg) }()
	a.cfg.Logger.Info("partnerd listening", slog.String("addr", ln.Addr().String()), slog.String("db", string(a.DB.Dialect())),
		slog.String("version", Version))
	if ready != nil {
		ready(ln.Addr().String())
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	a.API.Drain()
	a.cfg.Logger.Info("shutting down: finishing in-flight requests")
	sctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	// No redirect is being served any more: write every buffered click.
	if err := a.Tracking.Close(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	a.cfg.Logger.Info("stopped")
	return nil
}
