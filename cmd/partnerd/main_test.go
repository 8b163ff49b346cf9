package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/partnerd/partnerd/internal/app"
)

func runCLI(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), err
}

func TestProgramCreateJSONShape(t *testing.T) {
	db := filepath.Join(t.TempDir(), "cli.db")
	out, _, err := runCLI(t, "program", "create", "--db", db, "--name", "Acme", "--website", "https://acme.test", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("not JSON: %q", out)
	}
	// Exactly company_key, production{public_key, secret_key}, test{...}.
	if keys := sortedKeys(got); !reflect.DeepEqual(keys, []string{"company_key", "production", "test"}) {
		t.Fatalf("top-level keys %v", keys)
	}
	for _, mode := range []string{"production", "test"} {
		pair := got[mode].(map[string]any)
		if keys := sortedKeys(pair); !reflect.DeepEqual(keys, []string{"public_key", "secret_key"}) {
			t.Fatalf("%s keys %v", mode, keys)
		}
		if !strings.HasPrefix(pair["public_key"].(string), "pk_") || !strings.HasPrefix(pair["secret_key"].(string), "sk_") {
			t.Fatalf("%s pair %v", mode, pair)
		}
	}
	// The keys work, and the secret is not in the database file.
	a, err := app.Open(context.Background(), app.Config{DB: db})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	prod := got["production"].(map[string]any)
	p, err := a.Program.AuthenticateKeys(context.Background(), prod["public_key"].(string), prod["secret_key"].(string))
	if err != nil || p.CompanyKey != got["company_key"] || p.Test {
		t.Fatalf("production keys: %+v %v", p, err)
	}
	a.Close()
	raw, _ := os.ReadFile(db)
	wal, _ := os.ReadFile(db + "-wal")
	if bytes.Contains(append(raw, wal...), []byte(prod["secret_key"].(string))) {
		t.Fatal("secret key written to the database in plain text")
	}

	// Then a partner token for the test partner.
	tok, _, err := runCLI(t, "partner", "token", "--db", db, "--company", got["company_key"].(string), "--partner-key", "gstest")
	if err != nil || !strings.HasPrefix(tok, "ptok_") {
		t.Fatalf("partner token: %q %v", tok, err)
	}
	a2, _ := app.Open(context.Background(), app.Config{DB: db})
	defer a2.Close()
	if pp, err := a2.Program.AuthenticatePartnerToken(context.Background(), strings.TrimSpace(tok)); err != nil || pp.PartnershipID == 0 {
		t.Fatalf("partner token does not authenticate: %v", err)
	}
	if _, _, err := runCLI(t, "partner", "token", "--db", db, "--company", got["company_key"].(string), "--partner-key", "nobody"); err == nil {
		t.Fatal("token for an unknown partner key")
	}
}

func sortedKeys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestEnvironmentEquivalents(t *testing.T) {
	db := filepath.Join(t.TempDir(), "env.db")
	t.Setenv("PARTNERD_DB", db)
	if _, _, err := runCLI(t, "program", "create", "--name", "FromEnv"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(db); err != nil {
		t.Fatalf("PARTNERD_DB not used: %v", err)
	}
	out, _, err := runCLI(t, "migrate")
	if err != nil || !strings.Contains(out, "up to date") {
		t.Fatalf("migrate on an up-to-date database: %q %v", out, err)
	}
}

func TestHelpAndErrors(t *testing.T) {
	for _, args := range [][]string{{"serve", "--help"}, {"migrate", "--help"}, {"program", "create", "--help"}, {"partner", "token", "--help"}} {
		_, stderr, err := runCLI(t, args...)
		if !errors.Is(err, flag.ErrHelp) || !strings.Contains(stderr, "-db") {
			t.Errorf("%v: err %v, help %q", args, err, stderr)
		}
	}
	_, stderr, _ := runCLI(t, "serve", "--help")
	if !strings.Contains(stderr, "PARTNERD_ADDR") || !strings.Contains(stderr, "127.0.0.1:8080") {
		t.Errorf("serve --help does not document --addr: %q", stderr)
	}
	if out, _, err := runCLI(t, "version"); err != nil || !strings.HasPrefix(out, "partnerd ") {
		t.Errorf("version: %q %v", out, err)
	}
	if _, _, err := runCLI(t, "frobnicate"); err == nil {
		t.Error("unknown command accepted")
	}
	if _, _, err := runCLI(t, "program", "create", "--db", filepath.Join(t.TempDir(), "x.db")); err == nil {
		t.Error("program create without --name accepted")
	}
	if _, _, err := runCLI(t, "program", "create", "--db", filepath.Join(t.TempDir(), "x.db"), "--name", "A", "--website", "javascript:alert(1)"); err == nil {
		t.Error("non-http website accepted")
	}
}

func TestServeStartsAndStops(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var errb bytes.Buffer
	go func() {
		done <- serve(ctx, []string{"--db", filepath.Join(t.TempDir(), "s.db"), "--addr", addr}, &errb)
	}()
	up := false
	for i := 0; i < 100 && !up; i++ {
		if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			up = resp.StatusCode == 200
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if !up {
		t.Fatal("serve did not answer /healthz")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop")
	}
	if !strings.Contains(errb.String(), `"msg":"partnerd listening"`) {
		t.Fatalf("serve logs JSON by default: %q", errb.String())
	}
}
