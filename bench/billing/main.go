// Command billing benchmarks billing-webhook intake: signed Stripe events
// posted to /webhooks/stripe/{company}, each with a new event id, against a
// bare net/http handler that only reads the body, driven by the same load
// generator (which signs every request for both) in the same run. It
// reports throughput and p99 acknowledgement latency, then stops partnerd
// gracefully and checks that every acknowledged event is in the inbox.
//
//	go run ./bench/billing [-db sqlite|postgres://...] [-c 32] [-d 10s]
package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/partnerd/partnerd/bench/loadgen"
)

const secret = "whsec_bench"

func main() {
	f := loadgen.ParseFlags()
	if f.Bare {
		// The baseline: read the body, answer 200.
		http.HandleFunc("POST /webhooks/stripe/{company}", func(w http.ResponseWriter, r *http.Request) {
			if _, err := io.ReadAll(r.Body); err != nil {
				http.Error(w, err.Error(), 400)
				return
			}
			w.WriteHeader(200)
		})
		_ = http.ListenAndServe(f.Addr, nil)
		return
	}
	if err := run(f); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// events posts a realistic charge.succeeded event (about 1.5 KB, as Stripe
// sends) with a unique id, signed as Stripe signs.
func events(base, company string, run int) func(w, i int) (*http.Request, string) {
	return func(w, i int) (*http.Request, string) {
		id := fmt.Sprintf("evt_bench_%d_%d_%d", run, w, i)
		body := fmt.Sprintf(`{"id":"%s","object":"event","api_version":"2024-06-20","created":%d,"livemode":true,"pending_webhooks":1,`+
			`"request":{"id":"req_%d_%d","idempotency_key":null},"type":"charge.succeeded","data":{"object":{"id":"ch_%d_%d_%d",`+
			`"object":"charge","amount":4900,"amount_captured":4900,"amount_refunded":0,"balance_transaction":"txn_1","billing_details":`+
			`{"address":{"city":null,"country":"US","line1":null,"line2":null,"postal_code":"94107","state":null},"email":"buyer@shop.test",`+
			`"name":"Buyer","phone":null},"captured":true,"created":%d,"currency":"usd","customer":"cus_bench","description":"Subscription",`+
			`"metadata":{},"outcome":{"network_status":"approved_by_network","risk_level":"normal","seller_message":"Payment complete.",`+
			`"type":"authorized"},"paid":true,"payment_intent":"pi_%d_%d","payment_method":"pm_1","receipt_email":"buyer@shop.test",`+
			`"refunded":false,"status":"succeeded"}}}`, id, time.Now().Unix(), w, i, run, w, i, time.Now().Unix(), w, i)
		ts := time.Now().Unix()
		m := hmac.New(sha256.New, []byte(secret))
		fmt.Fprintf(m, "%d.%s", ts, body)
		req, _ := http.NewRequest("POST", base+"/webhooks/stripe/"+company, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Stripe-Signature", fmt.Sprintf("t=%d,v1=%s", ts, hex.EncodeToString(m.Sum(nil))))
		return req, id
	}
}

func run(f loadgen.Flags) error {
	ctx := context.Background()
	b, err := loadgen.Prepare(f, 200, func(base string) func(w, i int) (*http.Request, string) { return events(base, "comp_bare", 0) })
	if err != nil {
		return err
	}
	defer b.Close()
	pd, err := loadgen.StartPartnerd(b.Bin, b.Dir, f.DB, "")
	if err != nil {
		return err
	}
	defer pd.Kill() // on an error path; a no-op after Stop
	cmd := exec.Command(b.Bin, "billing", "configure", "--db", pd.DSN, "--company", pd.CompanyKey, "--provider", "stripe", "--secret", secret)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("billing configure: %v: %s", err, out)
	}
	res := loadgen.Run(f.Conc, f.Dur, 200, events(pd.Base, pd.CompanyKey, 1), nil)
	if err := pd.Stop(); err != nil {
		return err
	}
	missing, _, err := loadgen.Missing(ctx, pd.DSN, "SELECT event_id FROM billing_events", res.Tags)
	if err != nil {
		return err
	}
	fmt.Printf("POST /webhooks/stripe/{company}, signed charge.succeeded events, %d clients, %s per run, 127.0.0.1, %s\n",
		f.Conc, f.Dur, loadgen.Engine(f.DB))
	fmt.Printf("  bare net/http (reads the body) : %8.0f req/s  p50 %-9s p99 %s\n", b.Bare.RPS, b.Bare.Pct(.5), b.Bare.Pct(.99))
	fmt.Printf("  partnerd (verify, store)       : %8.0f req/s  p50 %-9s p99 %s  (target p99 < 50ms)\n", res.RPS, res.Pct(.5), res.Pct(.99))
	fmt.Printf("  ratio                          : %8.3f\n", res.RPS/b.Bare.RPS)
	fmt.Printf("  acknowledged %d, %d missing from the inbox after a graceful stop, %d failed requests\n", len(res.Tags), missing, res.Failed)
	if missing > 0 {
		return errors.New("acknowledged events are missing")
	}
	return nil
}
