package secret

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBoxRoundTripAndTamper(t *testing.T) {
	key := make([]byte, KeySize)
	key[0] = 7
	b, err := NewBox(key)
	if err != nil {
		t.Fatal(err)
	}
	sealed := b.Seal("whsec_abc")
	if strings.Contains(sealed, "whsec_abc") {
		t.Fatalf("the sealed value shows the secret: %s", sealed)
	}
	if got, err := b.Open(sealed); err != nil || got != "whsec_abc" {
		t.Fatalf("open: %q %v", got, err)
	}
	if b.Seal("whsec_abc") == sealed {
		t.Fatal("two seals of one secret are equal: the nonce is not random")
	}
	raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(sealed, "v1:"))
	raw[len(raw)-1] ^= 1
	if _, err := b.Open("v1:" + base64.StdEncoding.EncodeToString(raw)); err == nil {
		t.Fatal("a tampered value opened")
	}
	other, _ := NewBox(make([]byte, KeySize))
	if _, err := other.Open(sealed); err == nil {
		t.Fatal("another key opened the value")
	}
	if _, err := NewBox([]byte("short")); err == nil {
		t.Fatal("a short key was accepted")
	}
}

func TestLoadKey(t *testing.T) {
	t.Setenv("PARTNERD_SECRET_KEY", "")
	path := filepath.Join(t.TempDir(), "partnerd.db.key")
	if k, err := LoadKey(path, false); err != nil || k != nil {
		t.Fatalf("without create: %v %v", k, err)
	}
	k1, err := LoadKey(path, true)
	if err != nil || len(k1) != KeySize {
		t.Fatalf("create: %v %v", k1, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", fi, err)
	}
	k2, err := LoadKey(path, true)
	if err != nil || string(k2) != string(k1) {
		t.Fatal("the key changed on the second load")
	}
	t.Setenv("PARTNERD_SECRET_KEY", base64.StdEncoding.EncodeToString(make([]byte, KeySize)))
	if k, err := LoadKey(path, true); err != nil || string(k) != string(make([]byte, KeySize)) {
		t.Fatalf("the environment must win: %v", err)
	}
	t.Setenv("PARTNERD_SECRET_KEY", "not base64!")
	if _, err := LoadKey(path, true); err == nil || !strings.Contains(err.Error(), "PARTNERD_SECRET_KEY") {
		t.Fatalf("a bad environment key: %v", err)
	}
}
