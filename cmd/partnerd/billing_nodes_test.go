package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/partnerd/partnerd/internal/app"
	"github.com/partnerd/partnerd/internal/billing"
	"github.com/partnerd/partnerd/internal/billing/billingtest"
	"github.com/partnerd/partnerd/internal/program"
	"github.com/partnerd/partnerd/internal/store/storetest"
)

// TestTwoServersProcessEachBillingEventOnce runs two "partnerd serve"
// processes on one PostgreSQL database. Every Stripe payment is delivered to
// both (providers retry, and a load balancer may send the retry to the other
// node): each event is stored once, processed exactly once (one attempt),
// and becomes exactly one transaction.
func TestTwoServersProcessEachBillingEventOnce(t *testing.T) {
	var dsn string
	for _, eng := range storetest.Engines(t) {
		if eng.Name == "postgres" {
			dsn = eng.DSN(t)
		}
	}
	if dsn == "" {
		t.Skip("needs PostgreSQL (PARTNERD_TEST_POSTGRES): several nodes share one database only there")
	}
	t.Setenv("PARTNERD_SECRET_KEY", base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)))
	ctx := context.Background()
	a, err := app.Open(ctx, app.Config{DB: dsn})
	if err != nil {
		t.Fatal(err)
	}
	co, err := a.Program.CreateCompany(ctx, "Nodes", "")
	if err != nil {
		t.Fatal(err)
	}
	p := program.Principal{CompanyID: co.ID}
	if _, err := a.Billing.Configure(ctx, co.ID, billing.ConfigInput{Provider: billing.Stripe, Secret: "whsec_nodes"}); err != nil {
		t.Fatal(err)
	}
	const customers, payments = 20, 300
	for i := 0; i < customers; i++ {
		if _, _, err := a.Program.CreateCustomer(ctx, p, program.CustomerInput{CustomerKey: ptr(fmt.Sprint("u", i)), PartnerKey: ptr("gstest"),
			ProviderKey: ptr(fmt.Sprint("cus_", i)), EmailOptional: true}); err != nil {
			t.Fatal(err)
		}
	}
	a.Close()

	nodes := []string{}
	for i := 0; i < 2; i++ {
		base, _ := startServer(t, dsn)
		nodes = append(nodes, base)
	}
	path := billing.WebhookPath(billing.Stripe, co.Key, false)
	var wg sync.WaitGroup
	errc := make(chan error, payments*2)
	for i := 0; i < payments; i++ {
		body, _ := json.Marshal(map[string]any{"id": fmt.Sprint("evt_", i), "object": "event", "type": "charge.succeeded", "livemode": true,
			"created": time.Now().Unix(), "data": map[string]any{"object": map[string]any{"id": fmt.Sprint("ch_", i), "object": "charge",
				"amount": 1000 + i, "currency": "usd", "customer": fmt.Sprint("cus_", i%customers), "created": time.Now().Unix() - 60}}})
		for _, base := range nodes {
			wg.Add(1)
			go func(base string, body []byte) {
				defer wg.Done()
				req, _ := http.NewRequest("POST", base+path, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Stripe-Signature", billingtest.StripeSignature(body, "whsec_nodes", time.Now()))
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					errc <- err
					return
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					errc <- fmt.Errorf("delivery answered %d", resp.StatusCode)
				}
			}(base, body)
		}
		if i%50 == 49 {
			wg.Wait() // keep the client's connections bounded
		}
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}

	a, err = app.Open(ctx, app.Config{DB: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var pending int
		if err := a.DB.QueryRow(ctx, "SELECT COUNT(*) FROM billing_events WHERE status <> 'done'").Scan(&pending); err != nil {
			t.Fatal(err)
		}
		if pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d events still not done after 60 s", pending)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var events, once, txs int
	var sum int64
	if err := a.DB.QueryRow(ctx, "SELECT COUNT(*), COUNT(*) FILTER (WHERE attempts = 1) FROM billing_events").Scan(&events, &once); err != nil {
		t.Fatal(err)
	}
	if err := a.DB.QueryRow(ctx, "SELECT COUNT(*), COALESCE(SUM(amount), 0) FROM transactions WHERE key LIKE 'stripe:%'").Scan(&txs, &sum); err != nil {
		t.Fatal(err)
	}
	want := int64(payments*1000 + payments*(payments-1)/2)
	if events != payments || once != payments || txs != payments || sum != want {
		t.Fatalf("%d deliveries to each of 2 nodes: %d events stored, %d processed in one attempt, %d transactions totalling %d (want %d)",
			payments, events, once, txs, sum, want)
	}
}
