// Package tracking turns clicks on referral links into attributed
// customers: the redirect (served from memory), the click buffer (written in
// batches), the PartnerStackJS-compatible snippet's sign-ups, and
// server-to-server conversions. It knows nothing of HTTP beyond the values a
// redirect needs.
package tracking

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/partnerd/partnerd/internal/clock"
	"github.com/partnerd/partnerd/internal/errs"
	"github.com/partnerd/partnerd/internal/program"
	"github.com/partnerd/partnerd/internal/secret"
	"github.com/partnerd/partnerd/internal/store"
)

// Cache lifetimes of link look-ups. A found link is kept longer than a miss;
// both bound how long a change made on another node takes to be seen.
const (
	linkTTL     = 30 * time.Second
	missTTL     = 5 * time.Second
	maxCacheLen = 100_000
	flushEvery  = 500 * time.Millisecond
	flushAt     = 1000   // pending clicks that trigger an early flush
	maxPending  = 500000 // beyond this, clicks are dropped and counted (the database is down)
	maxSubIDLen = 255
)

// SubIDParams are the partner sub-id parameters a link passes through.
var SubIDParams = []string{"sid", "sid1", "sid2", "sid3", "sid4", "sid5"}

// Service is the tracking engine.
type Service struct {
	db      *store.DB
	clock   clock.Clock
	program *program.Service
	log     *slog.Logger
	salt    []byte
	hmacs   sync.Pool // keyed HMAC-SHA256 states for HashIP

	cacheMu sync.RWMutex
	cache   map[string]cacheEntry

	mu      sync.Mutex
	pending []Click
	kick    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	closed  bool

	redirects prometheus.Counter
	stored    prometheus.Counter
	dropped   prometheus.Counter
}

type cacheEntry struct {
	target  program.LinkTarget
	dest    *url.URL // target.Destination, parsed once
	found   bool
	expires time.Time
}

// New starts the tracking engine and its click flusher.
func New(ctx context.Context, db *store.DB, clk clock.Clock, prog *program.Service, log *slog.Logger, reg prometheus.Registerer) (*Service, error) {
	salt, err := ipSalt(ctx, db)
	if err != nil {
		return nil, err
	}
	s := &Service{db: db, clock: clk, program: prog, log: log, salt: salt, cache: map[string]cacheEntry{},
		hmacs: sync.Pool{New: func() any { return hmac.New(sha256.New, salt) }},
		kick:  make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		redirects: prometheus.NewCounter(prometheus.CounterOpts{Name: "partnerd_redirects_total", Help: "Referral-link redirects served."}),
		stored:    prometheus.NewCounter(prometheus.CounterOpts{Name: "partnerd_clicks_stored_total", Help: "Clicks written to the database."}),
		dropped:   prometheus.NewCounter(prometheus.CounterOpts{Name: "partnerd_clicks_dropped_total", Help: "Clicks dropped because the buffer was full."}),
	}
	reg.MustRegister(s.redirects, s.stored, s.dropped, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "partnerd_clicks_pending", Help: "Clicks waiting in memory to be written.",
	}, func() float64 { s.mu.Lock(); defer s.mu.Unlock(); return float64(len(s.pending)) }))
	go s.flushLoop()
	return s, nil
}

// ipSalt returns the install's secret salt for IP hashes, making it once.
func ipSalt(ctx context.Context, db *store.DB) ([]byte, error) {
	if _, err := db.Exec(ctx, "INSERT INTO settings (name, value) VALUES ('ip_hash_salt', ?) ON CONFLICT (name) DO NOTHING", secret.Random(43)); err != nil {
		return nil, fmt.Errorf("store ip salt: %w", err)
	}
	var v string
	if err := db.QueryRow(ctx, "SELECT value FROM settings WHERE name = 'ip_hash_salt'").Scan(&v); err != nil {
		return nil, fmt.Errorf("read ip salt: %w", err)
	}
	return []byte(v), nil
}

// HashIP makes a privacy-preserving stand-in for an IP address: a keyed
// hash under the install's secret salt, so equal IPs can be told apart from
// different ones without the address being stored or guessable.
func (s *Service) HashIP(ip string) string {
	if ip == "" {
		return ""
	}
	m := s.hmacs.Get().(hash.Hash)
	m.Reset()
	m.Write([]byte(ip))
	var sum [sha256.Size]byte
	out := hex.EncodeToString(m.Sum(sum[:0]))[:32]
	s.hmacs.Put(m)
	return out
}

// resolve finds a link target, from memory when it can.
func (s *Service) resolve(ctx context.Context, host, slug string) (cacheEntry, error) {
	key := host + "\x00" + slug
	now := time.Now()
	s.cacheMu.RLock()
	e, ok := s.cache[key]
	s.cacheMu.RUnlock()
	if ok && now.Before(e.expires) {
		return e, nil
	}
	t, err := s.program.ResolveLink(ctx, host, slug)
	found := err == nil
	if err != nil && errs.CodeOf(err) != errs.NotFound {
		return cacheEntry{}, err
	}
	var dest *url.URL
	if found {
		if dest, err = url.Parse(t.Destination); err != nil {
			return cacheEntry{}, fmt.Errorf("stored destination of link %d: %w", t.LinkID, err)
		}
	}
	ttl := linkTTL
	if !found {
		ttl = missTTL
	}
	s.cacheMu.Lock()
	if len(s.cache) >= maxCacheLen {
		s.cache = map[string]cacheEntry{} // crude but bounded; refills from the database
	}
	e = cacheEntry{target: t, dest: dest, found: found, expires: now.Add(ttl)}
	s.cache[key] = e
	s.cacheMu.Unlock()
	return e, nil
}

// Forget drops cached link look-ups, after links or company settings change
// on this node.
func (s *Service) Forget() {
	s.cacheMu.Lock()
	s.cache = map[string]cacheEntry{}
	s.cacheMu.Unlock()
}

// Visit is what a redirect knows of the visitor.
type Visit struct {
	Host         string // the request's host, without port
	OnLinkDomain bool   // true for /{slug} on a link domain: the slug is looked up within that domain's company
	Slug         string
	Query        url.Values
	Referrer     string
	UserAgent    string
	IP           string
	// Probe is a HEAD request (link checkers, unfurlers): it gets the same
	// answer but is not a click and records nothing.
	Probe bool
}

// Cookie is an attribution cookie the redirect sets on the vendor's domain.
type Cookie struct {
	Name, Value, Domain string
	MaxAge              int
}

// Redirect is the answer to a click.
type Redirect struct {
	Location string
	XID      string
	Cookies  []Cookie
}

// ErrNoLink is returned for a slug that names no link.
var ErrNoLink = errs.E(errs.NotFound, "no such referral link")

// Click records a click and returns where to send the visitor. It does not
// wait for the database: the click joins a buffer written in batches.
func (s *Service) Click(ctx context.Context, v Visit) (Redirect, error) {
	if !program.ValidSlug(v.Slug) {
		return Redirect{}, ErrNoLink // not worth a look-up, nor a cache entry
	}
	lookupHost := ""
	if v.OnLinkDomain {
		lookupHost = v.Host
	}
	e, err := s.resolve(ctx, lookupHost, v.Slug)
	if err != nil {
		return Redirect{}, err
	}
	if !e.found {
		return Redirect{}, ErrNoLink
	}
	t := e.target
	dest := *e.dest // a copy: the cached URL is shared
	encoded := base64.RawStdEncoding.EncodeToString([]byte(t.PartnerKey))
	q := dest.Query()
	q.Set("gspk", encoded)
	q.Set("ps_partner_key", encoded)
	subs := map[string]string{}
	for _, p := range SubIDParams {
		// An oversized sub-id is dropped rather than failing the visitor's
		// redirect; partners see it missing in their report.
		if val := v.Query.Get(p); val != "" && len([]rune(val)) <= maxSubIDLen {
			q.Set(p, val)
			subs[p] = val
		}
	}
	if v.Probe {
		// No click id: it would name a click that was never recorded.
		dest.RawQuery = q.Encode()
		return Redirect{Location: dest.String()}, nil
	}
	xid := newXID(s.clock.Now())
	q.Set("gsxid", xid)
	q.Set("ps_xid", xid)
	dest.RawQuery = q.Encode()
	subJSON, _ := json.Marshal(subs)
	s.enqueue(Click{XID: xid, CompanyID: t.CompanyID, PartnershipID: t.PartnershipID, LinkID: t.LinkID, SubIDs: string(subJSON),
		Referrer: truncate(v.Referrer, 1000), UserAgent: truncate(v.UserAgent, 500), IPHash: s.HashIP(v.IP), Test: t.Test,
		CreatedAt: clock.Millis(s.clock)})
	s.redirects.Inc()
	out := Redirect{Location: dest.String(), XID: xid}
	// Cookies can only be set for the vendor's domain when partnerd is
	// reached under it (a link domain, or a path the vendor proxies).
	if t.CookieDomain != "" && (v.Host == t.CookieDomain || hasSuffixDot(v.Host, t.CookieDomain)) {
		age := t.AttributionDays * 86400
		for _, c := range []Cookie{{"growSumoPartnerKey", t.PartnerKey, "", 0}, {"ps_partner_key", t.PartnerKey, "", 0}, {"ps_xid", xid, "", 0}, {"gsxid", xid, "", 0}} {
			c.Domain, c.MaxAge = t.CookieDomain, age
			out.Cookies = append(out.Cookies, c)
		}
	}
	return out, nil
}

func hasSuffixDot(host, domain string) bool {
	return len(host) > len(domain) && host[len(host)-len(domain)-1:] == "."+domain
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// Click is one recorded click.
type Click struct {
	XID           string
	CompanyID     int64
	PartnershipID int64
	LinkID        int64
	SubIDs        string
	Referrer      string
	UserAgent     string
	IPHash        string
	Test          bool
	CreatedAt     int64
}

func (s *Service) enqueue(c Click) {
	s.mu.Lock()
	if len(s.pending) >= maxPending {
		s.mu.Unlock()
		s.dropped.Inc()
		return
	}
	s.pending = append(s.pending, c)
	n := len(s.pending)
	s.mu.Unlock()
	if n >= flushAt {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
}

func (s *Service) flushLoop() {
	defer close(s.done)
	t := time.NewTicker(flushEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		case <-s.kick:
		}
		if err := s.Flush(context.Background()); err != nil {
			s.log.Error("writing clicks failed; they stay buffered and are retried", slog.Any("err", err))
		}
	}
}

// Flush writes every buffered click now, in one transaction. On failure
// the clicks go back to the buffer, in order, to be retried.
func (s *Service) Flush(ctx context.Context) error {
	s.mu.Lock()
	batch := s.pending
	// The next batch will be about as large: start it at that size rather
	// than regrow it click by click.
	s.pending = make([]Click, 0, cap(batch))
	s.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	rows := make([][]any, len(batch))
	for i, c := range batch {
		rows[i] = []any{c.XID, c.CompanyID, c.PartnershipID, c.LinkID, c.SubIDs, c.Referrer, c.UserAgent, c.IPHash, store.Bool(c.Test), c.CreatedAt}
	}
	err := s.db.InsertRows(ctx, "clicks", clickCols, rows)
	if err != nil {
		s.mu.Lock()
		s.pending = append(batch, s.pending...)
		s.mu.Unlock()
		return err
	}
	s.stored.Add(float64(len(batch)))
	return nil
}

var clickCols = []string{"xid", "company_id", "partnership_id", "link_id", "sub_ids", "referrer", "user_agent", "ip_hash", "test", "created_at"}

// newXID makes a click id, time-ordered (see secret.Ordered). A click id
// is not a secret (it travels in the landing URL).
func newXID(t time.Time) string { return secret.Ordered(t) }

// Close stops the flusher and writes every click still buffered. Call it
// after the HTTP server has stopped serving redirects.
func (s *Service) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	<-s.done
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if err = s.Flush(ctx); err == nil {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return errors.Join(errors.New("clicks lost at shutdown"), err)
}
