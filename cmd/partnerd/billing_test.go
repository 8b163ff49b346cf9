package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/partnerd/partnerd/internal/app"
	"github.com/partnerd/partnerd/internal/clock"
)

func TestBillingAndEventsCommands(t *testing.T) {
	ctx := context.Background()
	db, co := cliCompany(t)

	if _, _, err := runCLI(t, "billing", "configure", "--db", db, "--company", co, "--provider", "paddle", "--secret", "x"); err == nil || !strings.Contains(err.Error(), "'provider'") {
		t.Fatalf("an unknown provider was accepted: %v", err)
	}
	if _, _, err := runCLI(t, "billing", "configure", "--db", db, "--company", co, "--provider", "chargebee", "--secret", "nocolon"); err == nil {
		t.Fatal("a chargebee secret without user:password was accepted")
	}
	path, _, err := runCLI(t, "billing", "configure", "--db", db, "--company", co, "--provider", "chargify", "--secret", "123")
	if err != nil || strings.TrimSpace(path) != "/webhooks/chargify/"+co {
		t.Fatalf("configure: %q %v", path, err)
	}

	// Two deliveries through the service the server uses (a signed Chargify
	// test event from the provider's documentation, and an unsigned one).
	a, err := app.Open(ctx, app.Config{DB: db, Clock: clock.System{}})
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set("X-Chargify-Webhook-Signature-Hmac-Sha-256", "19826d51b9f866b26eda1f154de192593360f8d0bcb63df8a28540a5dcf733f1")
	if _, _, err := a.Billing.Receive(ctx, "chargify", co, false, h, []byte("payload[chargify]=testing&event=test")); err == nil {
		t.Fatal("an event without an id was stored")
	}
	body := "id=77&event=payment_success&payload[subscription][customer][reference]=u1"
	h.Set("X-Chargify-Webhook-Signature-Hmac-Sha-256", hmacHex("123", body))
	id, dup, err := a.Billing.Receive(ctx, "chargify", co, false, h, []byte(body))
	if err != nil || dup || id == 0 {
		t.Fatalf("receive: %d %v %v", id, dup, err)
	}
	if _, err := a.Billing.Process(ctx); err != nil {
		t.Fatal(err)
	}
	a.Close()

	list, _, err := runCLI(t, "events", "list", "--db", db, "--company", co)
	if err != nil || !strings.Contains(list, "chargify") || !strings.Contains(list, "payment_success") || !strings.Contains(list, "77") {
		t.Fatalf("events list:\n%s %v", list, err)
	}
	if failed, _, err := runCLI(t, "events", "list", "--db", db, "--company", co, "--failed"); err != nil || strings.Contains(failed, "payment_success") {
		t.Fatalf("events list --failed shows a processed event:\n%s %v", failed, err)
	}
	if out, _, err := runCLI(t, "events", "replay", "--db", db, "--company", co, "--since", "1h"); err != nil || !strings.Contains(out, "1 events queued") {
		t.Fatalf("replay --since: %q %v", out, err)
	}
	if _, _, err := runCLI(t, "events", "replay", "--db", db, "--company", co, "--id", "999"); err == nil {
		t.Fatal("replaying an unknown id succeeded")
	}
	if _, _, err := runCLI(t, "events", "replay", "--db", db, "--company", co); err == nil {
		t.Fatal("replay without --id or --since succeeded")
	}
	if _, _, err := runCLI(t, "events", "replay", "--db", db, "--company", co, "--since", "yesterday"); err == nil {
		t.Fatal("a bad --since was accepted")
	}
}

func hmacHex(key, msg string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}

// cliCompany creates a company with the CLI in a new SQLite database and
// returns the database path and the company key.
func cliCompany(t *testing.T) (db, company string) {
	t.Helper()
	db = filepath.Join(t.TempDir(), "cli.db")
	out, _, err := runCLI(t, "program", "create", "--db", db, "--name", "Acme", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var created struct {
		CompanyKey string `json:"company_key"`
	}
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.CompanyKey == "" {
		t.Fatalf("program create --json: %q %v", out, err)
	}
	return db, created.CompanyKey
}
