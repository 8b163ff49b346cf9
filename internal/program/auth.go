package program

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/partnerd/partnerd/internal/errs"
	"github.com/partnerd/partnerd/internal/secret"
	"github.com/partnerd/partnerd/internal/store"
)

// Principal is who a request acts as: a company through one of its key pairs,
// or one partnership through a partner token.
type Principal struct {
	CompanyID   int64
	CompanyKey  string
	CompanyName string
	// Test is true for the company's test key pair: what it creates is test data.
	Test bool
	// PartnershipID is set for a partner token; such a caller sees only that
	// partnership and its customers and transactions.
	PartnershipID int64
}

// IsPartner tells whether the principal is a partner (Bearer token).
func (p Principal) IsPartner() bool { return p.PartnershipID != 0 }

// Scoped completes "SELECT ... FROM ... WHERE cond" so that it only sees
// what p may see: rows of p's company, and for a partner token only rows of
// its partnership. companyCol and partnershipCol name those columns of the
// queried table. Every single-object look-up goes through here, so the
// tenancy rule is written once.
func (p Principal) Scoped(selectFrom, companyCol, partnershipCol, cond string, args ...any) (string, []any) {
	query := selectFrom + " WHERE " + companyCol + " = ? AND " + cond
	all := append([]any{p.CompanyID}, args...)
	if p.IsPartner() {
		query += " AND " + partnershipCol + " = ?"
		all = append(all, p.PartnershipID)
	}
	return query, all
}

// List is Scoped for lists: a list of what alias names (its key and id
// columns are alias.key and alias.id) within the principal's company and,
// for a partner, within its partnership, whose column partnershipCol names
// ("" for lists partners cannot reach).
func (p Principal) List(selectCols, from, alias, partnershipCol string) store.ListSpec {
	spec := store.ListSpec{Select: selectCols, From: from, KeyCol: alias + ".key", IDCol: alias + ".id",
		Scope: []string{alias + ".company_id = ?"}, ScopeArgs: []any{p.CompanyID}}
	// Every list's From is its table, then joins to one parent row each
	// by id (see store.ListSpec.CountFrom): counting needs only the table.
	if f := strings.Fields(from); len(f) >= 2 && f[1] == alias {
		spec.CountFrom = f[0] + " " + alias
	}
	if p.IsPartner() && partnershipCol != "" {
		spec.Within(partnershipCol+" = ?", p.PartnershipID)
	}
	return spec
}

var errBadKeys = errs.E(errs.Unauthorized, "Unauthorized: the public key and secret key do not match")

// lookup returns the principal cached under cacheKey, or loads it (with
// the secret hash stored for it) and caches it. A missing row is bad.
func (s *Service) lookup(cacheKey string, bad error, load func() (Principal, string, error)) (Principal, string, error) {
	now := time.Now()
	if cp, ok := s.auth.get(cacheKey, now); ok {
		return cp.p, cp.hash, nil
	}
	p, hash, err := load()
	if errors.Is(err, sql.ErrNoRows) {
		return Principal{}, "", bad
	}
	if err != nil {
		return Principal{}, "", fmt.Errorf("authenticate: %w", err)
	}
	s.auth.put(cacheKey, cachedPrincipal{hash: hash, p: p, expires: now.Add(s.auth.ttl)})
	return p, hash, nil
}

// AuthenticateKeys checks a public/secret key pair.
func (s *Service) AuthenticateKeys(ctx context.Context, publicKey, secretKey string) (Principal, error) {
	if publicKey == "" || secretKey == "" {
		return Principal{}, errBadKeys
	}
	p, stored, err := s.lookup("pk:"+publicKey, errBadKeys, func() (p Principal, stored string, err error) {
		err = s.db.QueryRow(ctx, `SELECT k.secret_hash, k.test, c.id, c.key, c.name FROM api_keys k
			JOIN companies c ON c.id = k.company_id WHERE k.public_key = ?`, publicKey).
			Scan(&stored, &p.Test, &p.CompanyID, &p.CompanyKey, &p.CompanyName)
		return p, stored, err
	})
	if err != nil {
		return Principal{}, err
	}
	// Cached or not, the secret is checked on every request.
	if !secret.Equal(stored, secret.Hash(secretKey)) {
		return Principal{}, errBadKeys
	}
	return p, nil
}

var errBadToken = errs.E(errs.Unauthorized, "Unauthorized: the partner token is not valid")

// AuthenticatePartnerToken checks a partner API token. Tokens are looked
// up (and cached) by their hash, so no plain token outlives the request.
func (s *Service) AuthenticatePartnerToken(ctx context.Context, token string) (Principal, error) {
	if token == "" {
		return Principal{}, errBadToken
	}
	hash := secret.Hash(token)
	p, _, err := s.lookup("pt:"+hash, errBadToken, func() (p Principal, _ string, err error) {
		err = s.db.QueryRow(ctx, `SELECT c.id, c.key, c.name, t.partnership_id, pa.test FROM partner_tokens t
			JOIN companies c ON c.id = t.company_id JOIN partnerships pa ON pa.id = t.partnership_id
			WHERE t.token_hash = ?`, hash).Scan(&p.CompanyID, &p.CompanyKey, &p.CompanyName, &p.PartnershipID, &p.Test)
		return p, hash, err
	})
	return p, err
}

// CreatePartnerToken makes a new API token for the partnership with the
// given partner key in the company. The token is returned once and stored
// only as a hash.
func (s *Service) CreatePartnerToken(ctx context.Context, companyKey, partnerKey string) (string, error) {
	c, err := s.CompanyByKey(ctx, companyKey)
	if err != nil {
		return "", err
	}
	var partnershipID int64
	err = s.db.QueryRow(ctx, `SELECT id FROM partnerships WHERE company_id = ? AND partner_key = ?`, c.ID, partnerKey).Scan(&partnershipID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", errs.E(errs.NotFound, "no partnership with partner key %s in company %s", partnerKey, companyKey)
	}
	if err != nil {
		return "", fmt.Errorf("find partnership: %w", err)
	}
	return s.insertPartnerToken(ctx, c.ID, partnershipID)
}

// CreateOwnPartnerToken makes a new API token for the partner p itself
// (from its portal). It is returned once and stored only as a hash.
func (s *Service) CreateOwnPartnerToken(ctx context.Context, p Principal) (string, error) {
	if !p.IsPartner() {
		return "", errs.E(errs.Forbidden, "only a partner has partner tokens")
	}
	return s.insertPartnerToken(ctx, p.CompanyID, p.PartnershipID)
}

func (s *Service) insertPartnerToken(ctx context.Context, companyID, partnershipID int64) (string, error) {
	token := secret.Token("ptok")
	if _, err := s.db.Exec(ctx, `INSERT INTO partner_tokens (company_id, partnership_id, token_hash, created_at) VALUES (?, ?, ?, ?)`,
		companyID, partnershipID, secret.Hash(token), s.now()); err != nil {
		return "", fmt.Errorf("store partner token: %w", err)
	}
	return token, nil
}

// CreateTrackingToken makes a new token for server-to-server conversions
// (POST /conversion/xid). It is returned once and stored only as a hash.
func (s *Service) CreateTrackingToken(ctx context.Context, companyKey string) (string, error) {
	c, err := s.CompanyByKey(ctx, companyKey)
	if err != nil {
		return "", err
	}
	token := secret.Token("trk")
	if _, err := s.db.Exec(ctx, `INSERT INTO tracking_tokens (company_id, token_hash, created_at) VALUES (?, ?, ?)`,
		c.ID, secret.Hash(token), s.now()); err != nil {
		return "", fmt.Errorf("store tracking token: %w", err)
	}
	return token, nil
}

// AuthenticateTrackingToken returns the company a tracking token belongs to.
// Conversions are production data; test conversions go through gstest.
func (s *Service) AuthenticateTrackingToken(ctx context.Context, token string) (Principal, error) {
	bad := errs.E(errs.Unauthorized, "Unauthorized: the tracking token is not valid")
	if token == "" {
		return Principal{}, bad
	}
	hash := secret.Hash(token)
	p, _, err := s.lookup("tt:"+hash, bad, func() (p Principal, _ string, err error) {
		err = s.db.QueryRow(ctx, `SELECT c.id, c.key, c.name FROM tracking_tokens t JOIN companies c ON c.id = t.company_id
			WHERE t.token_hash = ?`, hash).Scan(&p.CompanyID, &p.CompanyKey, &p.CompanyName)
		return p, hash, err
	})
	return p, err
}

// PublicKeyPrincipal identifies the company behind a public key alone, as
// the JS snippet presents it. It grants nothing but posting sign-ups from
// the company's own sites (see Company.SignupOrigins).
func (s *Service) PublicKeyPrincipal(ctx context.Context, publicKey string) (Principal, error) {
	bad := errs.E(errs.Invalid, "'public_key' does not match any program")
	if publicKey == "" {
		return Principal{}, bad
	}
	p, _, err := s.lookup("pub:"+publicKey, bad, func() (p Principal, _ string, err error) {
		err = s.db.QueryRow(ctx, `SELECT k.test, c.id, c.key, c.name FROM api_keys k JOIN companies c ON c.id = k.company_id
			WHERE k.public_key = ?`, publicKey).Scan(&p.Test, &p.CompanyID, &p.CompanyKey, &p.CompanyName)
		return p, "", err
	})
	return p, err
}

// PartnerToken is an API token of a partnership, as its owner sees it:
// never the token itself, which is shown once at creation.
type PartnerToken struct {
	ID        int64
	Hint      string // the first characters of the token's hash, to tell tokens apart
	CreatedAt int64
}

// ListPartnerTokens lists a partner's own tokens.
func (s *Service) ListPartnerTokens(ctx context.Context, p Principal) ([]PartnerToken, error) {
	if !p.IsPartner() {
		return nil, errs.E(errs.Forbidden, "only a partner has partner tokens")
	}
	rows, err := s.db.Query(ctx, `SELECT id, token_hash, created_at FROM partner_tokens WHERE company_id = ? AND partnership_id = ? ORDER BY id DESC`,
		p.CompanyID, p.PartnershipID)
	if err != nil {
		return nil, fmt.Errorf("list partner tokens: %w", err)
	}
	defer rows.Close()
	var out []PartnerToken
	for rows.Next() {
		var t PartnerToken
		var hash string
		if err := rows.Scan(&t.ID, &hash, &t.CreatedAt); err != nil {
			return nil, fmt.Errorf("scan partner token: %w", err)
		}
		t.Hint = hash[:min(8, len(hash))]
		out = append(out, t)
	}
	return out, rows.Err()
}

// RevokePartnerToken deletes one of a partner's own tokens. This node
// forgets it at once; other nodes' caches hold it for at most their TTL
// (a minute).
func (s *Service) RevokePartnerToken(ctx context.Context, p Principal, id int64) error {
	var hash string
	err := s.db.QueryRow(ctx, `DELETE FROM partner_tokens WHERE id = ? AND company_id = ? AND partnership_id = ? RETURNING token_hash`,
		id, p.CompanyID, p.PartnershipID).Scan(&hash)
	if errors.Is(err, sql.ErrNoRows) {
		return errs.E(errs.NotFound, "no such token")
	}
	if err != nil {
		return fmt.Errorf("revoke partner token: %w", err)
	}
	s.auth.m.Delete("pt:" + hash)
	return nil
}
