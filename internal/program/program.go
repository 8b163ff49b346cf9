// Package program owns a vendor's partner program: companies and their API
// keys, partner tokens, groups, partnerships and the customers attributed to
// them. It knows nothing of HTTP.
package program

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/partnerd/partnerd/internal/clock"
	"github.com/partnerd/partnerd/internal/errs"
	"github.com/partnerd/partnerd/internal/secret"
	"github.com/partnerd/partnerd/internal/store"
)

// TestPartnerKey is the partner key of the test partner every company gets,
// as on PartnerStack.
const TestPartnerKey = "gstest"

// Service is the program engine's core.
type Service struct {
	db         *store.DB
	clock      clock.Clock
	auth       authCache
	onCustomer CustomerHook
}

// CustomerHook runs inside the transaction that creates a customer; an error
// rolls the customer back. The reward engine uses it for sign-up rewards.
type CustomerHook func(ctx context.Context, q store.Querier, cu Customer) error

// OnCustomerCreated sets the hook run for every new customer. It is set once
// at start-up, before the service is used.
func (s *Service) OnCustomerCreated(h CustomerHook) { s.onCustomer = h }

// New returns a Service over db.
func New(db *store.DB, clk clock.Clock) *Service {
	return &Service{db: db, clock: clk, auth: authCache{ttl: time.Minute}}
}

func (s *Service) now() int64 { return clock.Millis(s.clock) }

// CompanyRef is the short form of a company embedded in other objects.
type CompanyRef struct {
	Key  string
	Name string
}

// Company is a vendor running a partner program.
type Company struct {
	ID        int64
	Key       string
	Name      string
	Website   string
	CreatedAt int64
	UpdatedAt int64
	// Tracking settings.
	LinkDomain      string   // host serving /{slug} for this company, e.g. go.example.com
	CookieDomain    string   // registrable domain for server-set cookies, e.g. example.com
	AttributionDays int      // how long a click is remembered (default 90)
	AllowedOrigins  []string // sites whose pages may call createSignup, besides the website's origin
	// Payout setting: the smallest total paid out; less is carried over.
	PayoutMinimum string // a decimal in major units, e.g. "5.00"
}

// SignupOrigins are the origins whose pages may post sign-ups with the
// company's public key: its website's origin and the allowed origins.
func (c Company) SignupOrigins() []string {
	out := append([]string{}, c.AllowedOrigins...)
	if u, err := url.Parse(c.Website); err == nil && u.Host != "" {
		out = append(out, u.Scheme+"://"+u.Host)
	}
	return out
}

// KeyPair is a public key and the secret that goes with it.
type KeyPair struct {
	PublicKey string
	SecretKey string
}

// NewCompany is a company just created, with the only copy of its secrets.
type NewCompany struct {
	Company
	Production KeyPair
	Test       KeyPair
}

// CreateCompany creates a company with a production and a test key pair, a
// default group and the test partner "gstest". The secret keys are returned
// here once and stored only as hashes.
func (s *Service) CreateCompany(ctx context.Context, name, website string) (NewCompany, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return NewCompany{}, errs.E(errs.Invalid, "'name' is a required property")
	}
	if len(name) > 255 {
		return NewCompany{}, errs.E(errs.Invalid, "'name' is too long (maximum 255 characters)")
	}
	if website != "" {
		u, err := url.Parse(website)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return NewCompany{}, errs.E(errs.Invalid, "'website' must be an http or https URL")
		}
	}
	now := s.now()
	out := NewCompany{
		Company:    Company{Key: secret.Key("comp"), Name: name, Website: website, CreatedAt: now, UpdatedAt: now},
		Production: KeyPair{PublicKey: "pk_" + secret.Random(24), SecretKey: "sk_" + secret.Random(40)},
		Test:       KeyPair{PublicKey: "pk_" + secret.Random(24), SecretKey: "sk_" + secret.Random(40)},
	}
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO companies (key, name, website, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?) RETURNING id`, out.Key, name, website, now, now).Scan(&out.ID); err != nil {
			return fmt.Errorf("insert company: %w", err)
		}
		for _, k := range []struct {
			pair KeyPair
			test bool
		}{{out.Production, false}, {out.Test, true}} {
			if _, err := tx.Exec(ctx, `INSERT INTO api_keys (company_id, public_key, secret_hash, test, created_at)
				VALUES (?, ?, ?, ?, ?)`, out.ID, k.pair.PublicKey, secret.Hash(k.pair.SecretKey), store.Bool(k.test), now); err != nil {
				return fmt.Errorf("insert api key: %w", err)
			}
		}
		var groupID int64
		if err := tx.QueryRow(ctx, `INSERT INTO groups (key, company_id, name, slug, is_default, created_at, updated_at)
			VALUES (?, ?, 'Default', 'default', 1, ?, ?) RETURNING id`, secret.Key("grup"), out.ID, now, now).Scan(&groupID); err != nil {
			return fmt.Errorf("insert default group: %w", err)
		}
		var testID int64
		if err := tx.QueryRow(ctx, `INSERT INTO partnerships (key, company_id, group_id, partner_key, email, first_name, last_name,
			test, joined_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'Test', 'Partner', 1, ?, ?, ?) RETURNING id`,
			secret.Key("part"), out.ID, groupID, TestPartnerKey, "gstest@partnerd.invalid", now, now, now).Scan(&testID); err != nil {
			return fmt.Errorf("insert test partner: %w", err)
		}
		return createDefaultLink(ctx, tx, out.ID, testID, TestPartnerKey, now)
	})
	if err != nil {
		return NewCompany{}, fmt.Errorf("create company: %w", err)
	}
	return out, nil
}

// CompanyByKey finds a company by its key.
func (s *Service) CompanyByKey(ctx context.Context, key string) (Company, error) {
	return s.companyBy(ctx, "key = ?", key)
}

// CompanyByID finds a company by its id.
func (s *Service) CompanyByID(ctx context.Context, id int64) (Company, error) {
	return s.companyBy(ctx, "id = ?", id)
}

func (s *Service) companyBy(ctx context.Context, cond string, arg any) (Company, error) {
	var c Company
	var origins string
	err := s.db.QueryRow(ctx, `SELECT id, key, name, website, created_at, updated_at, link_domain, cookie_domain,
		attribution_days, allowed_origins, payout_minimum FROM companies WHERE `+cond, arg).
		Scan(&c.ID, &c.Key, &c.Name, &c.Website, &c.CreatedAt, &c.UpdatedAt, &c.LinkDomain, &c.CookieDomain,
			&c.AttributionDays, &origins, &c.PayoutMinimum)
	if errors.Is(err, sql.ErrNoRows) {
		return c, errs.E(errs.NotFound, "no company %v", arg)
	}
	if err != nil {
		return c, fmt.Errorf("find company: %w", err)
	}
	if err := json.Unmarshal([]byte(origins), &c.AllowedOrigins); err != nil {
		return c, fmt.Errorf("decode allowed origins: %w", err)
	}
	return c, nil
}

// NormalizeEmail validates an email address and returns it trimmed and in
// lower case, which is how emails are stored and compared.
func NormalizeEmail(field, email string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(email))
	if len(e) < 4 || len(e) > 255 {
		return "", errs.E(errs.Invalid, "'%s' must be between 4 and 255 characters", field)
	}
	invalid := errs.E(errs.Invalid, "'%s' is not a valid email address: %q", field, email)
	addr, err := mail.ParseAddress(e)
	if err != nil || addr.Address != e || addr.Name != "" {
		return "", invalid // not a bare address (a display name, or no address at all)
	}
	if domain := e[strings.LastIndex(e, "@")+1:]; !strings.Contains(domain, ".") && domain != "localhost" {
		return "", invalid // a domain without a dot cannot receive mail on the internet
	}
	return e, nil
}

// authCache remembers successful key and token look-ups for a short time so
// authentication costs no query on the hot path. A partner revoking a token
// removes it from this node's cache; the TTL bounds how long other nodes
// still accept it.
type authCache struct {
	ttl time.Duration
	m   sync.Map // lookup key -> cachedPrincipal
}

type cachedPrincipal struct {
	hash    string
	p       Principal
	expires time.Time
}

func (c *authCache) get(k string, now time.Time) (cachedPrincipal, bool) {
	v, ok := c.m.Load(k)
	if !ok {
		return cachedPrincipal{}, false
	}
	cp := v.(cachedPrincipal)
	if now.After(cp.expires) {
		c.m.Delete(k)
		return cachedPrincipal{}, false
	}
	return cp, true
}

func (c *authCache) put(k string, cp cachedPrincipal) { c.m.Store(k, cp) }

// publicMail are mail providers whose domain says nothing about who owns an
// address: two addresses there are not the same organisation.
var publicMail = map[string]bool{
	"gmail.com": true, "googlemail.com": true, "yahoo.com": true, "yahoo.co.uk": true, "ymail.com": true,
	"outlook.com": true, "hotmail.com": true, "hotmail.co.uk": true, "live.com": true, "msn.com": true,
	"icloud.com": true, "me.com": true, "mac.com": true, "aol.com": true, "proton.me": true, "protonmail.com": true,
	"gmx.com": true, "gmx.de": true, "gmx.net": true, "web.de": true, "yandex.ru": true, "yandex.com": true,
	"mail.ru": true, "qq.com": true, "163.com": true, "126.com": true, "zoho.com": true, "fastmail.com": true,
	"hey.com": true, "pm.me": true, "tutanota.com": true, "mail.com": true,
}

// PublicMailDomain tells whether an email domain is a public mail
// provider's, which says nothing about the organization behind an address
// (self-referral checks, the hub's grouping of accounts by domain).
func PublicMailDomain(domain string) bool { return publicMail[strings.ToLower(domain)] }
