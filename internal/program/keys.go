package program

import (
	"context"
	"fmt"

	"github.com/partnerd/partnerd/internal/errs"
	"github.com/partnerd/partnerd/internal/secret"
	"github.com/partnerd/partnerd/internal/store"
)

// APIKey is a company's key pair as its owner sees it: the public key and
// its mode, never the secret (shown once, when the pair is made).
type APIKey struct {
	ID        int64
	PublicKey string
	Test      bool
	CreatedAt int64
}

// ListKeys lists a company's key pairs, newest first.
func (s *Service) ListKeys(ctx context.Context, companyID int64) ([]APIKey, error) {
	rows, err := s.db.Query(ctx, "SELECT id, public_key, test, created_at FROM api_keys WHERE company_id = ? ORDER BY id DESC", companyID)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	defer rows.Close()
	var out []APIKey
	for rows.Next() {
		var k APIKey
		if err := rows.Scan(&k.ID, &k.PublicKey, &k.Test, &k.CreatedAt); err != nil {
			return nil, fmt.Errorf("scan key: %w", err)
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// CreateKeyPair adds a production or test key pair to a company: the way
// to rotate is to add one, move the integration to it, then revoke the
// old one. The secret is returned once and stored only as a hash.
func (s *Service) CreateKeyPair(ctx context.Context, companyID int64, test bool) (KeyPair, error) {
	kp := KeyPair{PublicKey: "pk_" + secret.Random(24), SecretKey: "sk_" + secret.Random(40)}
	if _, err := s.db.Exec(ctx, "INSERT INTO api_keys (company_id, public_key, secret_hash, test, created_at) VALUES (?, ?, ?, ?, ?)",
		companyID, kp.PublicKey, secret.Hash(kp.SecretKey), store.Bool(test), s.now()); err != nil {
		return KeyPair{}, fmt.Errorf("store key pair: %w", err)
	}
	return kp, nil
}

// RevokeKey deletes a key pair. A company keeps at least one production
// pair (its tracking snippet names one). This node forgets the pair at
// once; other nodes' caches hold it for at most their TTL (a minute).
func (s *Service) RevokeKey(ctx context.Context, companyID int64, publicKey string) error {
	var test bool
	err := s.db.QueryRow(ctx, "SELECT test FROM api_keys WHERE company_id = ? AND public_key = ?", companyID, publicKey).Scan(&test)
	if err != nil {
		return errs.E(errs.NotFound, "no key %s", publicKey)
	}
	if !test {
		var n int
		if err := s.db.QueryRow(ctx, "SELECT COUNT(*) FROM api_keys WHERE company_id = ? AND test = 0", companyID).Scan(&n); err != nil {
			return fmt.Errorf("count keys: %w", err)
		}
		if n <= 1 {
			return errs.E(errs.Conflict, "%s is the company's only production key pair: add another before revoking it", publicKey)
		}
	}
	if _, err := s.db.Exec(ctx, "DELETE FROM api_keys WHERE company_id = ? AND public_key = ?", companyID, publicKey); err != nil {
		return fmt.Errorf("revoke key: %w", err)
	}
	s.auth.m.Delete("pk:" + publicKey)
	return nil
}
