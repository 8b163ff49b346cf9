package program

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"

	"github.com/partnerd/partnerd/internal/errs"
	"github.com/partnerd/partnerd/internal/money"
	"github.com/partnerd/partnerd/internal/secret"
	"github.com/partnerd/partnerd/internal/store"
)

// Link is a partner's referral link: /r/{slug} (or /{slug} on the
// company's link domain) redirects to Destination.
type Link struct {
	ID             int64
	Key            string
	Slug           string
	Destination    string // as stored; empty means the company's website
	Default        bool
	PartnershipKey string
	PartnerKey     string
	Clicks         int64
	Signups        int64
	CreatedAt      int64
	UpdatedAt      int64
}

var slugRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$`)

// ReservedSlug tells whether a slug names one of partnerd's own top-level
// pages, which a link domain (served by the same server) would show
// instead of the link.
func ReservedSlug(s string) bool {
	switch strings.ToLower(s) {
	case "app", "hub", "portal", "login", "logout", "static", "healthz", "readyz", "metrics", "partnerstack.js":
		return true
	}
	return false
}

// ValidSlug tells whether s can be a link slug.
func ValidSlug(s string) bool { return slugRe.MatchString(s) }

// ValidDestination checks that a link destination is an absolute http(s)
// URL. Only stored destinations are ever redirected to, so the redirect
// cannot be turned into an open redirect by a request.
func ValidDestination(field, dest string) error {
	u, err := url.Parse(dest)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return errs.E(errs.Invalid, "'%s' must be an absolute http or https URL", field)
	}
	return nil
}

// createDefaultLink gives a partnership its default link. Slugs are unique
// across the install because /r/{slug} names no company; when the partner
// key is taken by another company's link, a short suffix is added.
func createDefaultLink(ctx context.Context, tx *store.Tx, companyID, partnershipID int64, partnerKey string, now int64) error {
	slug := partnerKey
	for i := 0; ; i++ {
		var n int
		if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM links WHERE slug = ?", slug).Scan(&n); err != nil {
			return fmt.Errorf("check slug: %w", err)
		}
		if n == 0 {
			break
		}
		if i > 20 {
			return errs.E(errs.Conflict, "could not find a free link slug for %s", partnerKey)
		}
		slug = partnerKey + "-" + strings.ToLower(secret.Random(4))
	}
	if _, err := tx.Exec(ctx, `INSERT INTO links (key, company_id, partnership_id, slug, destination, is_default, created_at, updated_at)
		VALUES (?, ?, ?, ?, '', 1, ?, ?)`, secret.Key("link"), companyID, partnershipID, slug, now, now); err != nil {
		return fmt.Errorf("insert default link: %w", err)
	}
	return nil
}

// EnsureDefaultLinks gives every partnership without a default link one.
// It runs at start-up, for partnerships created before links existed.
func (s *Service) EnsureDefaultLinks(ctx context.Context) error {
	rows, err := s.db.Query(ctx, `SELECT p.id, p.company_id, p.partner_key FROM partnerships p
		WHERE NOT EXISTS (SELECT 1 FROM links l WHERE l.partnership_id = p.id AND l.is_default = 1)`)
	if err != nil {
		return fmt.Errorf("find partnerships without links: %w", err)
	}
	type missing struct {
		id, company int64
		key         string
	}
	var todo []missing
	for rows.Next() {
		var m missing
		if err := rows.Scan(&m.id, &m.company, &m.key); err != nil {
			rows.Close()
			return fmt.Errorf("scan partnership: %w", err)
		}
		todo = append(todo, m)
	}
	rows.Close()
	for _, m := range todo {
		if err := s.db.Tx(ctx, func(tx *store.Tx) error { return createDefaultLink(ctx, tx, m.company, m.id, m.key, s.now()) }); err != nil {
			return err
		}
	}
	return nil
}

// LinkInput is a new link for a partnership.
type LinkInput struct {
	Slug        string
	Destination string
}

// CreateLink adds a link to the partnership named by ident.
func (s *Service) CreateLink(ctx context.Context, p Principal, ident string, in LinkInput) (Link, error) {
	if !ValidSlug(in.Slug) {
		return Link{}, errs.E(errs.Invalid, "'slug' may contain only letters, digits, '_', '.' and '-' (at most 100): %q", in.Slug)
	}
	if ReservedSlug(in.Slug) {
		return Link{}, errs.E(errs.Invalid, "'slug' %q is a page of partnerd's own on a link domain: choose another", in.Slug)
	}
	if err := ValidDestination("dest", in.Destination); err != nil {
		return Link{}, err
	}
	part, err := s.GetPartnership(ctx, p, ident)
	if err != nil {
		return Link{}, err
	}
	now := s.now()
	key := secret.Key("link")
	_, err = s.db.Exec(ctx, `INSERT INTO links (key, company_id, partnership_id, slug, destination, is_default, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, 0, ?, ?)`, key, p.CompanyID, part.ID, in.Slug, in.Destination, now, now)
	if store.IsUniqueViolation(err) {
		return Link{}, errs.E(errs.Conflict, "'slug' is already taken: %s", in.Slug)
	}
	if err != nil {
		return Link{}, fmt.Errorf("insert link: %w", err)
	}
	links, err := s.ListLinks(ctx, p, part.Key)
	if err != nil {
		return Link{}, err
	}
	for _, l := range links {
		if l.Key == key {
			return l, nil
		}
	}
	return Link{}, fmt.Errorf("link %s vanished after insert", key)
}

// ListLinks lists a partnership's links with their click and sign-up counts.
func (s *Service) ListLinks(ctx context.Context, p Principal, ident string) ([]Link, error) {
	return s.links(ctx, p, ident, true)
}

// Links lists a partnership's links without counting their clicks and
// sign-ups (Clicks and Signups are 0): the dashboard reads its counts from
// its rollups, where the API counts exactly.
func (s *Service) Links(ctx context.Context, p Principal, ident string) ([]Link, error) {
	return s.links(ctx, p, ident, false)
}

func (s *Service) links(ctx context.Context, p Principal, ident string, counted bool) ([]Link, error) {
	part, err := s.GetPartnership(ctx, p, ident)
	if err != nil {
		return nil, err
	}
	counts := "0, 0"
	if counted {
		counts = `(SELECT COUNT(*) FROM clicks c WHERE c.link_id = l.id),
		(SELECT COUNT(*) FROM customers cu WHERE cu.link_id = l.id)`
	}
	rows, err := s.db.Query(ctx, `SELECT l.id, l.key, l.slug, l.destination, l.is_default, l.created_at, l.updated_at, `+counts+`
		FROM links l WHERE l.partnership_id = ? ORDER BY l.is_default DESC, l.created_at, l.id`, part.ID)
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	defer rows.Close()
	var out []Link
	for rows.Next() {
		l := Link{PartnershipKey: part.Key, PartnerKey: part.PartnerKey}
		if err := rows.Scan(&l.ID, &l.Key, &l.Slug, &l.Destination, &l.Default, &l.CreatedAt, &l.UpdatedAt, &l.Clicks, &l.Signups); err != nil {
			return nil, fmt.Errorf("scan link: %w", err)
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// LinkTarget is everything the redirect needs to answer for one slug,
// read once and then served from memory.
type LinkTarget struct {
	LinkID          int64
	CompanyID       int64
	PartnershipID   int64
	PartnerKey      string
	Test            bool
	Destination     string // resolved: the link's, or the company's website
	LinkDomain      string
	CookieDomain    string
	AttributionDays int
}

// ResolveLink finds the target of a slug. On a company's link domain the
// slug is looked up within that company; elsewhere across the install.
func (s *Service) ResolveLink(ctx context.Context, host, slug string) (LinkTarget, error) {
	var t LinkTarget
	var website string
	query := `SELECT l.id, l.company_id, l.partnership_id, p.partner_key, p.test, l.destination, c.website, c.link_domain,
		c.cookie_domain, c.attribution_days FROM links l JOIN partnerships p ON p.id = l.partnership_id
		JOIN companies c ON c.id = l.company_id WHERE l.slug = ? AND p.archived = 0`
	args := []any{slug}
	if host != "" {
		query += " AND c.link_domain = ?"
		args = append(args, host)
	}
	err := s.db.QueryRow(ctx, query, args...).Scan(&t.LinkID, &t.CompanyID, &t.PartnershipID, &t.PartnerKey, &t.Test,
		&t.Destination, &website, &t.LinkDomain, &t.CookieDomain, &t.AttributionDays)
	if errors.Is(err, sql.ErrNoRows) {
		return t, errs.E(errs.NotFound, "no referral link %q", slug)
	}
	if err != nil {
		return t, fmt.Errorf("resolve link: %w", err)
	}
	if t.Destination == "" {
		t.Destination = website
	}
	if t.Destination == "" {
		return t, errs.E(errs.NotFound, "the referral link %q has no destination: the company has no website set", slug)
	}
	return t, nil
}

// IsLinkDomain tells whether host is some company's link domain.
func (s *Service) IsLinkDomain(ctx context.Context, host string) (bool, error) {
	var n int
	if err := s.db.QueryRow(ctx, "SELECT COUNT(*) FROM companies WHERE link_domain = ?", host).Scan(&n); err != nil {
		return false, fmt.Errorf("check link domain: %w", err)
	}
	return n > 0, nil
}

// CompanySettings are the tracking settings of a company; nil fields are
// left as they are.
type CompanySettings struct {
	Website         *string
	LinkDomain      *string
	CookieDomain    *string
	AttributionDays *int
	AllowedOrigins  *[]string
	PayoutMinimum   *string
}

var hostRe = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$`)

// ConfigureCompany changes a company's tracking and payout settings.
func (s *Service) ConfigureCompany(ctx context.Context, companyKey string, in CompanySettings) (Company, error) {
	c, err := s.CompanyByKey(ctx, companyKey)
	if err != nil {
		return c, err
	}
	sets := []string{}
	args := []any{}
	set := func(col string, v any) { sets = append(sets, col+" = ?"); args = append(args, v) }
	if in.Website != nil {
		if *in.Website != "" {
			if err := ValidDestination("website", *in.Website); err != nil {
				return c, err
			}
		}
		set("website", *in.Website)
	}
	for _, d := range []struct {
		field, col string
		v          *string
	}{{"link-domain", "link_domain", in.LinkDomain}, {"cookie-domain", "cookie_domain", in.CookieDomain}} {
		if d.v == nil {
			continue
		}
		h := strings.ToLower(strings.TrimPrefix(strings.TrimSpace(*d.v), "."))
		if h != "" && (!hostRe.MatchString(h) || net.ParseIP(h) != nil) {
			return c, errs.E(errs.Invalid, "'%s' must be a host name such as go.example.com: %q", d.field, *d.v)
		}
		set(d.col, h)
	}
	if in.AttributionDays != nil {
		if *in.AttributionDays < 1 || *in.AttributionDays > 730 {
			return c, errs.E(errs.Invalid, "'attribution-days' must be from 1 to 730")
		}
		set("attribution_days", *in.AttributionDays)
	}
	if in.AllowedOrigins != nil {
		for _, o := range *in.AllowedOrigins {
			u, err := url.Parse(o)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
				return c, errs.E(errs.Invalid, "'allowed-origin' must be an origin such as https://www.example.com: %q", o)
			}
		}
		b, _ := json.Marshal(*in.AllowedOrigins)
		set("allowed_origins", string(b))
	}
	if in.PayoutMinimum != nil {
		// Major units with up to three decimals (KWD has three), applied to
		// every currency's total as is: a minimum of 5 means 5 USD, 5 EUR
		// and 5 JPY alike (decided; per-currency minimums are not built).
		if _, err := money.Decimal("payout-minimum", *in.PayoutMinimum, 3); err != nil {
			return c, err
		}
		set("payout_minimum", *in.PayoutMinimum)
	}
	if len(sets) == 0 {
		return c, nil
	}
	set("updated_at", s.now())
	args = append(args, c.ID)
	if _, err := s.db.Exec(ctx, "UPDATE companies SET "+strings.Join(sets, ", ")+" WHERE id = ?", args...); err != nil {
		return c, fmt.Errorf("configure company: %w", err)
	}
	return s.CompanyByKey(ctx, companyKey)
}
