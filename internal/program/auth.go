package program

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/partnerd/partnerd/internal/errs"
	"github.com/partnerd/partnerd/internal/secret"
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

var errBadKeys = errs.E(errs.Unauthorized, "Unauthorized: the public key and secret key do not match")

// AuthenticateKeys checks a public/secret key pair.
func (s *Service) AuthenticateKeys(ctx context.Context, publicKey, secretKey string) (Principal, error) {
	if publicKey == "" || secretKey == "" {
		return Principal{}, errBadKeys
	}
	hash := secret.Hash(secretKey)
	now := time.Now()
	if cp, ok := s.auth.get("pk:"+publicKey, now); ok {
		if !secret.Equal(cp.hash, hash) {
			return Principal{}, errBadKeys
		}
		return cp.p, nil
	}
	var p Principal
	var stored string
	var test int
	err := s.db.QueryRow(ctx, `SELECT k.secret_hash, k.test, c.id, c.key, c.name FROM api_keys k
		JOIN companies c ON c.id = k.company_id WHERE k.public_key = ?`, publicKey).
		Scan(&stored, &test, &p.CompanyID, &p.CompanyKey, &p.CompanyName)
	if errors.Is(err, sql.ErrNoRows) {
		return Principal{}, errBadKeys
	}
	if err != nil {
		return Principal{}, fmt.Errorf("look up api key: %w", err)
	}
	p.Test = test == 1
	s.auth.put("pk:"+publicKey, cachedPrincipal{hash: stored, p: p, expires: now.Add(s.auth.ttl)})
	if !secret.Equal(stored, hash) {
		return Principal{}, errBadKeys
	}
	return p, nil
}

var errBadToken = errs.E(errs.Unauthorized, "Unauthorized: the partner token is not valid")

// AuthenticatePartnerToken checks a partner API token.
func (s *Service) AuthenticatePartnerToken(ctx context.Context, token string) (Principal, error) {
	if token == "" {
		return Principal{}, errBadToken
	}
	hash := secret.Hash(token)
	now := time.Now()
	// The cache is keyed by the hash, so no plain token sits in memory longer
	// than the request.
	if cp, ok := s.auth.get("pt:"+hash, now); ok {
		return cp.p, nil
	}
	var p Principal
	var stored string
	err := s.db.QueryRow(ctx, `SELECT t.token_hash, c.id, c.key, c.name, t.partnership_id, pa.test FROM partner_tokens t
		JOIN companies c ON c.id = t.company_id JOIN partnerships pa ON pa.id = t.partnership_id
		WHERE t.token_hash = ?`, hash).Scan(&stored, &p.CompanyID, &p.CompanyKey, &p.CompanyName, &p.PartnershipID, &p.Test)
	if errors.Is(err, sql.ErrNoRows) {
		return Principal{}, errBadToken
	}
	if err != nil {
		return Principal{}, fmt.Errorf("look up partner token: %w", err)
	}
	if !secret.Equal(stored, hash) {
		return Principal{}, errBadToken
	}
	s.auth.put("pt:"+hash, cachedPrincipal{hash: stored, p: p, expires: now.Add(s.auth.ttl)})
	return p, nil
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
	token := secret.Token("ptok")
	if _, err := s.db.Exec(ctx, `INSERT INTO partner_tokens (company_id, partnership_id, token_hash, created_at) VALUES (?, ?, ?, ?)`,
		c.ID, partnershipID, secret.Hash(token), s.now()); err != nil {
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
	now := time.Now()
	if cp, ok := s.auth.get("tt:"+hash, now); ok {
		return cp.p, nil
	}
	var p Principal
	err := s.db.QueryRow(ctx, `SELECT c.id, c.key, c.name FROM tracking_tokens t JOIN companies c ON c.id = t.company_id
		WHERE t.token_hash = ?`, hash).Scan(&p.CompanyID, &p.CompanyKey, &p.CompanyName)
	if errors.Is(err, sql.ErrNoRows) {
		return Principal{}, bad
	}
	if err != nil {
		return Principal{}, fmt.Errorf("look up tracking token: %w", err)
	}
	s.auth.put("tt:"+hash, cachedPrincipal{hash: hash, p: p, expires: now.Add(s.auth.ttl)})
	return p, nil
}

// PublicKeyPrincipal identifies the company behind a public key alone, as
// the JS snippet presents it. It grants nothing but posting sign-ups from
// the company's own sites (see Company.SignupOrigins).
func (s *Service) PublicKeyPrincipal(ctx context.Context, publicKey string) (Principal, error) {
	bad := errs.E(errs.Invalid, "'public_key' does not match any program")
	if publicKey == "" {
		return Principal{}, bad
	}
	now := time.Now()
	if cp, ok := s.auth.get("pub:"+publicKey, now); ok {
		return cp.p, nil
	}
	var p Principal
	err := s.db.QueryRow(ctx, `SELECT k.test, c.id, c.key, c.name FROM api_keys k JOIN companies c ON c.id = k.company_id
		WHERE k.public_key = ?`, publicKey).Scan(&p.Test, &p.CompanyID, &p.CompanyKey, &p.CompanyName)
	if errors.Is(err, sql.ErrNoRows) {
		return Principal{}, bad
	}
	if err != nil {
		return Principal{}, fmt.Errorf("look up public key: %w", err)
	}
	s.auth.put("pub:"+publicKey, cachedPrincipal{p: p, expires: now.Add(s.auth.ttl)})
	return p, nil
}
