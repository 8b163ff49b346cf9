// Package hub is the agency side of partnerd: an agency's workspaces and
// their connections to the programs it partners with (a PartnerStack or
// partnerd token each), and the read-only, incremental sync of what those
// programs hold about it. It knows nothing of HTTP serving; it is an HTTP
// client of the sources.
package hub

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/partnerd/partnerd/internal/clock"
	"github.com/partnerd/partnerd/internal/errs"
	"github.com/partnerd/partnerd/internal/secret"
	"github.com/partnerd/partnerd/internal/store"
)

// DefaultBaseURL is PartnerStack's v2 API.
const DefaultBaseURL = "https://api.partnerstack.com/api/v2"

// Config tunes the hub.
type Config struct {
	Limits     Limits
	Global     rate.Limit        // requests per second across the node's connections
	Lookback   time.Duration     // how far back each run re-reads, for status changes
	SweepEvery time.Duration     // how often a run reads everything, to find records that vanished
	SyncEvery  time.Duration     // how often each connection syncs by itself (with ±10% jitter)
	Transport  http.RoundTripper // nil: the default; tests count requests with their own
}

// DefaultConfig is what partnerd runs with.
var DefaultConfig = Config{Limits: DefaultLimits, Global: 30, Lookback: 90 * 24 * time.Hour, SweepEvery: 7 * 24 * time.Hour,
	SyncEvery: 6 * time.Hour}

// ConfigFromEnv is DefaultConfig with the request rates an operator set:
// PARTNERD_HUB_RATE (requests per second to one connection) and
// PARTNERD_HUB_GLOBAL_RATE (across the node's connections).
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	cfg := DefaultConfig
	for _, v := range []struct {
		name string
		dst  *rate.Limit
	}{{"PARTNERD_HUB_RATE", &cfg.Limits.PerConnection}, {"PARTNERD_HUB_GLOBAL_RATE", &cfg.Global}} {
		s := getenv(v.name)
		if s == "" {
			continue
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f <= 0 || f > 100000 {
			return cfg, fmt.Errorf("%s must be a number of requests per second above 0: %q", v.name, s)
		}
		*v.dst = rate.Limit(f)
	}
	return cfg, nil
}

// Service is the hub.
type Service struct {
	db     *store.DB
	clock  clock.Clock
	box    *secret.Box
	cfg    Config
	global *rate.Limiter
	views  views
}

// New returns a Service. box seals connection secrets; without it no
// connection can be made.
func New(db *store.DB, clk clock.Clock, box *secret.Box, cfg Config) *Service {
	return &Service{db: db, clock: clk, box: box, cfg: cfg, global: rate.NewLimiter(cfg.Global, int(max(cfg.Global, 1)))}
}

func (s *Service) now() int64 { return clock.Millis(s.clock) }

// Workspace is an agency.
type Workspace struct {
	ID        int64
	Key       string
	Name      string
	CreatedAt int64
}

// WorkspaceByID returns a workspace by its id (a web user's).
func (s *Service) WorkspaceByID(ctx context.Context, id int64) (Workspace, error) {
	var w Workspace
	err := s.db.QueryRow(ctx, "SELECT id, key, name, created_at FROM hub_workspaces WHERE id = ?", id).Scan(&w.ID, &w.Key, &w.Name, &w.CreatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return w, errs.E(errs.NotFound, "no such workspace")
	}
	if err != nil {
		return w, fmt.Errorf("read workspace: %w", err)
	}
	return w, nil
}

// EnsureWorkspace returns the workspace with the key or name ident,
// creating one with that name when there is none.
func (s *Service) EnsureWorkspace(ctx context.Context, ident string) (Workspace, error) {
	ident = strings.TrimSpace(ident)
	if ident == "" || len(ident) > 255 {
		return Workspace{}, errs.E(errs.Invalid, "'workspace' must be 1 to 255 characters")
	}
	var w Workspace
	find := func(q store.Querier) error {
		return q.QueryRow(ctx, "SELECT id, key, name, created_at FROM hub_workspaces WHERE key = ? OR name = ?", ident, ident).
			Scan(&w.ID, &w.Key, &w.Name, &w.CreatedAt)
	}
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		err := find(tx)
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		w = Workspace{Key: secret.Key("wksp"), Name: ident, CreatedAt: s.now()}
		return tx.QueryRow(ctx, "INSERT INTO hub_workspaces (key, name, created_at) VALUES (?, ?, ?) RETURNING id",
			w.Key, w.Name, w.CreatedAt).Scan(&w.ID)
	})
	if store.IsUniqueViolation(err) {
		err = find(s.db) // created by a racing call
	}
	if err != nil {
		return Workspace{}, fmt.Errorf("workspace: %w", err)
	}
	return w, nil
}

// Connection is a program an agency syncs from.
type Connection struct {
	ID           int64
	Key          string
	WorkspaceID  int64
	Name         string
	BaseURL      string
	AuthKind     string // bearer (a partner token) or basic (a vendor's key pair)
	Status       string // active or invalid
	StatusReason *string
	LastSyncAt   *int64
	NextSyncAt   int64
	CreatedAt    int64
	UpdatedAt    int64
	secret       string // sealed
}

// Connection statuses.
const (
	StatusActive  = "active"
	StatusInvalid = "invalid"
)

const connCols = `id, key, workspace_id, name, base_url, auth_kind, status, status_reason, last_sync_at, next_sync_at,
	created_at, updated_at, secret`

func scanConn(sc store.Scanner) (Connection, error) {
	var c Connection
	err := sc.Scan(&c.ID, &c.Key, &c.WorkspaceID, &c.Name, &c.BaseURL, &c.AuthKind, &c.Status, &c.StatusReason, &c.LastSyncAt,
		&c.NextSyncAt, &c.CreatedAt, &c.UpdatedAt, &c.secret)
	if err != nil {
		return c, fmt.Errorf("scan connection: %w", err)
	}
	return c, nil
}

// ConnectInput is a connection to make. Token is a partner token (Bearer);
// PublicKey and SecretKey are a vendor's pair (Basic) instead.
type ConnectInput struct {
	Workspace string
	Name      string
	BaseURL   string
	Token     string
	PublicKey string
	SecretKey string
}

// Connect checks the credentials with one cheap read and stores the
// connection with its secret sealed. Connecting again with the same
// workspace and name replaces the credentials (and makes an invalid
// connection active again).
func (s *Service) Connect(ctx context.Context, in ConnectInput) (Connection, error) {
	if s.box == nil {
		return Connection{}, errs.E(errs.Invalid, "no encryption key: set PARTNERD_SECRET_KEY (base64 of 32 bytes) to store connection tokens")
	}
	name := strings.TrimSpace(in.Name)
	if name == "" || len(name) > 255 {
		return Connection{}, errs.E(errs.Invalid, "'name' must be 1 to 255 characters")
	}
	base := strings.TrimRight(strings.TrimSpace(in.BaseURL), "/")
	if base == "" {
		base = DefaultBaseURL
	}
	if u, err := url.Parse(base); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return Connection{}, errs.E(errs.Invalid, "'base_url' must be an http or https URL without credentials: %q", in.BaseURL)
	}
	kind, plain, err := credentials(in)
	if err != nil {
		return Connection{}, err
	}
	// One cheap read proves the credentials before anything is stored.
	c := NewClient(base, authHeader(kind, plain), s.cfg.Limits, s.global, s.cfg.Transport)
	if _, err := c.List(ctx, "/partnerships", url.Values{"limit": {"1"}}); err != nil {
		if errors.Is(err, ErrInvalidCredentials) {
			return Connection{}, errs.E(errs.Invalid, "the source refused the credentials: %v", err)
		}
		return Connection{}, errs.E(errs.Invalid, "could not read the source at %s: %v", base, err)
	}
	w, err := s.EnsureWorkspace(ctx, in.Workspace)
	if err != nil {
		return Connection{}, err
	}
	now := s.now()
	sealed := s.box.Seal(plain)
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		res, err := tx.Exec(ctx, `UPDATE hub_connections SET base_url = ?, auth_kind = ?, secret = ?, status = ?, status_reason = NULL,
			next_sync_at = 0, updated_at = ? WHERE workspace_id = ? AND name = ?`, base, kind, sealed, StatusActive, now, w.ID, name)
		if err != nil {
			return fmt.Errorf("update connection: %w", err)
		}
		if n, _ := res.RowsAffected(); n > 0 {
			return nil
		}
		_, err = tx.Exec(ctx, `INSERT INTO hub_connections (key, workspace_id, name, base_url, auth_kind, secret, status, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, secret.Key("conn"), w.ID, name, base, kind, sealed, StatusActive, now, now)
		if err != nil {
			return fmt.Errorf("insert connection: %w", err)
		}
		return nil
	})
	if err != nil {
		return Connection{}, err
	}
	return store.One(ctx, s.db, "connection", scanConn, "SELECT "+connCols+" FROM hub_connections WHERE workspace_id = ? AND name = ?", w.ID, name)
}

func credentials(in ConnectInput) (kind, plain string, err error) {
	tok, pub, sec := strings.TrimSpace(in.Token), strings.TrimSpace(in.PublicKey), strings.TrimSpace(in.SecretKey)
	switch {
	case tok != "" && pub == "" && sec == "":
		return "bearer", tok, nil
	case tok == "" && pub != "" && sec != "":
		if strings.Contains(pub, ":") {
			return "", "", errs.E(errs.Invalid, "'public_key' must not contain ':'")
		}
		return "basic", pub + ":" + sec, nil
	}
	return "", "", errs.E(errs.Invalid, "give either a partner 'token', or a vendor's 'public_key' and 'secret_key'")
}

func authHeader(kind, plain string) string {
	if kind == "basic" {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(plain))
	}
	return "Bearer " + plain
}

// client opens a connection's secret and returns its client.
func (s *Service) client(c Connection) (*Client, error) {
	if s.box == nil {
		return nil, errs.E(errs.Invalid, "no encryption key: set PARTNERD_SECRET_KEY to the key the connection was stored with")
	}
	plain, err := s.box.Open(c.secret)
	if err != nil {
		return nil, fmt.Errorf("open the secret of connection %s (is PARTNERD_SECRET_KEY the one it was stored with?): %w", c.Key, err)
	}
	return NewClient(c.BaseURL, authHeader(c.AuthKind, plain), s.cfg.Limits, s.global, s.cfg.Transport), nil
}

// Connections lists a workspace's connections (every one with ws empty):
// ws is a key or a name.
func (s *Service) Connections(ctx context.Context, ws string) ([]Connection, error) {
	query, args := "SELECT "+connCols+" FROM hub_connections ORDER BY id", []any{}
	if ws != "" {
		query = "SELECT " + connCols + " FROM hub_connections WHERE workspace_id IN (SELECT id FROM hub_workspaces WHERE key = ? OR name = ?) ORDER BY id"
		args = []any{ws, ws}
	}
	rows, err := s.db.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list connections: %w", err)
	}
	defer rows.Close()
	var out []Connection
	for rows.Next() {
		c, err := scanConn(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// ConnectionByKey finds a connection.
func (s *Service) ConnectionByKey(ctx context.Context, key string) (Connection, error) {
	return store.One(ctx, s.db, "connection", scanConn, "SELECT "+connCols+" FROM hub_connections WHERE key = ?", key)
}

// CreateToken makes a new API token for a workspace (created if it does
// not exist). It is returned once and stored only as a hash.
func (s *Service) CreateToken(ctx context.Context, workspace string) (string, error) {
	w, err := s.EnsureWorkspace(ctx, workspace)
	if err != nil {
		return "", err
	}
	token := secret.Token("hubk")
	if _, err := s.db.Exec(ctx, "INSERT INTO hub_tokens (workspace_id, token_hash, created_at) VALUES (?, ?, ?)",
		w.ID, secret.Hash(token), s.now()); err != nil {
		return "", fmt.Errorf("store hub token: %w", err)
	}
	return token, nil
}

// IsToken tells whether a Bearer credential is a hub workspace token.
func IsToken(token string) bool { return strings.HasPrefix(token, "hubk_") }

// Authenticate returns the workspace a token belongs to.
func (s *Service) Authenticate(ctx context.Context, token string) (Workspace, error) {
	var w Workspace
	err := s.db.QueryRow(ctx, `SELECT w.id, w.key, w.name, w.created_at FROM hub_tokens t JOIN hub_workspaces w ON w.id = t.workspace_id
		WHERE t.token_hash = ?`, secret.Hash(token)).Scan(&w.ID, &w.Key, &w.Name, &w.CreatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return w, errs.E(errs.Unauthorized, "Unauthorized: the hub token is not valid")
	}
	if err != nil {
		return w, fmt.Errorf("authenticate hub token: %w", err)
	}
	return w, nil
}

// WorkspaceConnection finds a connection of one workspace.
func (s *Service) WorkspaceConnection(ctx context.Context, w Workspace, key string) (Connection, error) {
	return store.One(ctx, s.db, "connection", scanConn, "SELECT "+connCols+" FROM hub_connections WHERE workspace_id = ? AND key = ?", w.ID, key)
}

// SyncSoon makes a connection due now: the schedule runs it within a
// minute, on whichever node gets it first.
func (s *Service) SyncSoon(ctx context.Context, w Workspace, key string) (Connection, error) {
	c, err := s.WorkspaceConnection(ctx, w, key)
	if err != nil {
		return c, err
	}
	if c.Status == StatusInvalid {
		return c, errs.E(errs.Conflict, "connection %s is invalid (%s): connect it again with new credentials", c.Key, deref(c.StatusReason))
	}
	if _, err := s.db.Exec(ctx, "UPDATE hub_connections SET next_sync_at = 0 WHERE id = ?", c.ID); err != nil {
		return c, fmt.Errorf("schedule connection: %w", err)
	}
	return s.WorkspaceConnection(ctx, w, key)
}

// StreamState is how far one stream of a connection has synced.
type StreamState struct {
	Stream string
	// Records and Deleted are counted as each run ends: while a run is in
	// flight they are the last run's.
	Records       int
	Deleted       int
	HighWater     int64
	InFlight      bool
	LastSweepAt   int64
	LastSuccessAt *int64
}

// Streams reports each stream of a connection.
func (s *Service) Streams(ctx context.Context, c Connection) ([]StreamState, error) {
	rows, err := s.db.Query(ctx, `SELECT st.stream, st.high_water, st.run_min IS NOT NULL, st.last_sweep_at, st.last_success_at,
		st.records, st.deleted FROM hub_streams st WHERE st.connection_id = ? ORDER BY st.stream`, c.ID)
	if err != nil {
		return nil, fmt.Errorf("read streams: %w", err)
	}
	defer rows.Close()
	var out []StreamState
	for rows.Next() {
		var st StreamState
		if err := rows.Scan(&st.Stream, &st.HighWater, &st.InFlight, &st.LastSweepAt, &st.LastSuccessAt, &st.Records, &st.Deleted); err != nil {
			return nil, fmt.Errorf("scan stream: %w", err)
		}
		out = append(out, st)
	}
	return out, rows.Err()
}
