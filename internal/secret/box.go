package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Box encrypts the secrets partnerd must be able to read back (billing
// providers' webhook keys), unlike API keys, which are only ever hashed.
// AES-256-GCM; a sealed value is "v1:" + base64(nonce || ciphertext).
type Box struct {
	aead cipher.AEAD
}

// KeySize is the length of a Box key in bytes.
const KeySize = 32

// NewBox returns a Box for a 32-byte key.
func NewBox(key []byte) (*Box, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("secret: the encryption key must be %d bytes, not %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	return &Box{aead: aead}, nil
}

// Seal encrypts plaintext.
func (b *Box) Seal(plaintext string) string {
	nonce := make([]byte, b.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic("secret: crypto/rand failed: " + err.Error()) // never happens on supported platforms
	}
	return "v1:" + base64.StdEncoding.EncodeToString(b.aead.Seal(nonce, nonce, []byte(plaintext), nil))
}

// Open decrypts what Seal made with the same key.
func (b *Box) Open(sealed string) (string, error) {
	raw, ok := strings.CutPrefix(sealed, "v1:")
	if !ok {
		return "", errors.New("secret: not a sealed value")
	}
	data, err := base64.StdEncoding.DecodeString(raw)
	if err != nil || len(data) < b.aead.NonceSize() {
		return "", errors.New("secret: a sealed value is damaged")
	}
	n := b.aead.NonceSize()
	out, err := b.aead.Open(nil, data[:n], data[n:], nil)
	if err != nil {
		return "", errors.New("secret: cannot decrypt (a different encryption key?)")
	}
	return string(out), nil
}

// LoadKey finds the encryption key: PARTNERD_SECRET_KEY (base64 of 32
// bytes) if set, else the file keyFile, created with a new random key
// (mode 0600) when create is true and it does not exist. Every node that
// shares a database must share the key.
func LoadKey(keyFile string, create bool) ([]byte, error) {
	if v := strings.TrimSpace(os.Getenv("PARTNERD_SECRET_KEY")); v != "" {
		key, err := base64.StdEncoding.DecodeString(v)
		if err != nil || len(key) != KeySize {
			return nil, fmt.Errorf("PARTNERD_SECRET_KEY must be the base64 of %d random bytes (openssl rand -base64 32)", KeySize)
		}
		return key, nil
	}
	if keyFile == "" {
		return nil, nil
	}
	if b, err := os.ReadFile(keyFile); err == nil {
		key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(key) != KeySize {
			return nil, fmt.Errorf("the key file %s must hold the base64 of %d bytes", keyFile, KeySize)
		}
		return key, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read the key file: %w", err)
	}
	if !create {
		return nil, nil
	}
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("make an encryption key: %w", err)
	}
	f, err := os.OpenFile(keyFile, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return LoadKey(keyFile, false) // another process made it first
	}
	if err != nil {
		return nil, fmt.Errorf("create the key file: %w", err)
	}
	if _, err := f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n"); err != nil {
		f.Close()
		return nil, fmt.Errorf("write the key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("write the key file: %w", err)
	}
	return key, nil
}
