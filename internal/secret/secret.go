// Package secret makes random identifiers and secrets and hashes secrets for
// storage. Secrets are only ever stored as SHA-256 hashes and compared in
// constant time.
package secret

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"time"
)

const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// Random returns n characters drawn uniformly from base62.
func Random(n int) string {
	out := make([]byte, n)
	buf := make([]byte, n+n/2+8)
	i := 0
	for i < n {
		if _, err := rand.Read(buf); err != nil {
			panic("secret: crypto/rand failed: " + err.Error()) // never happens on supported platforms
		}
		for _, b := range buf {
			// 248 = 4*62: rejecting larger bytes keeps the draw uniform.
			if b >= 248 {
				continue
			}
			out[i] = alphabet[int(b)%62]
			i++
			if i == n {
				break
			}
		}
	}
	return string(out)
}

// Key returns an object key: prefix, underscore and 14 base62 characters
// (about 83 bits), the shape PartnerStack's keys have.
func Key(prefix string) string { return prefix + "_" + Random(14) }

// Ordered returns 14 base62 characters: 7 of t's epoch milliseconds, then 7
// random ones. Values made later sort later (the alphabet is in byte
// order), so a unique index takes new rows at its end instead of dirtying
// a page all over it on every insert; 41 random bits keep two values made
// in the same millisecond apart. Not for secrets: the time is readable.
func Ordered(t time.Time) string {
	ms := uint64(t.UnixMilli())
	var b [14]byte
	for i := 6; i >= 0; i-- {
		b[i] = alphabet[ms%62]
		ms /= 62
	}
	copy(b[7:], Random(7))
	return string(b[:])
}

// OrderedKey is an object key like Key whose characters are Ordered, for
// objects written at a high rate.
func OrderedKey(prefix string, t time.Time) string { return prefix + "_" + Ordered(t) }

// Token returns a secret: prefix, underscore and 40 base62 characters (about
// 238 bits), enough that a stored hash cannot be reversed by guessing.
func Token(prefix string) string { return prefix + "_" + Random(40) }

// Hash returns the hex SHA-256 of a secret, which is what gets stored.
func Hash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// Equal compares two hashes in constant time.
func Equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
