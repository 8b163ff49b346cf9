package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/partnerd/partnerd/internal/app"
	"github.com/partnerd/partnerd/internal/program"
	"github.com/partnerd/partnerd/internal/store"
	"github.com/partnerd/partnerd/internal/store/storetest"
)

// TestMain lets the test binary act as "partnerd serve" in a child process,
// so TestAcknowledgedWritesSurviveKill can SIGKILL a real server.
func TestMain(m *testing.M) {
	if args := os.Getenv("PARTNERD_TEST_CHILD_ARGS"); args != "" {
		// Any other command, for tests that kill a CLI process.
		if err := run(context.Background(), strings.Split(args, "\x1f"), io.Discard, io.Discard); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if dsn := os.Getenv("PARTNERD_TEST_CHILD_DB"); dsn != "" {
		err := run(context.Background(), []string{"serve", "--db", dsn, "--addr", os.Getenv("PARTNERD_TEST_CHILD_ADDR")}, io.Discard, io.Discard)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestAcknowledgedWritesSurviveKill: every transaction answered with 200
// is in the database after the server is killed with SIGKILL mid-load.
func TestAcknowledgedWritesSurviveKill(t *testing.T) {
	for _, eng := range storetest.Engines(t) {
		t.Run(eng.Name, func(t *testing.T) {
			ctx := context.Background()
			dsn := eng.DSN(t)
			a, err := app.Open(ctx, app.Config{DB: dsn})
			if err != nil {
				t.Fatal(err)
			}
			c, err := a.Program.CreateCompany(ctx, "Crash", "")
			if err != nil {
				t.Fatal(err)
			}
			prod := program.Principal{CompanyID: c.ID}
			if _, _, err := a.Program.CreateCustomer(ctx, prod, program.CustomerInput{CustomerKey: ptr("k1"), Email: ptr("k1@x.test"), PartnerKey: ptr("gstest")}); err != nil {
				t.Fatal(err)
			}
			a.Close()

			base, child := startServer(t, dsn)
			var mu sync.Mutex
			var acked []string
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for w := 0; w < 16; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					client := &http.Client{Timeout: 5 * time.Second}
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						key := fmt.Sprintf("crash-%d-%d", w, i)
						req, _ := http.NewRequest("POST", base+"/api/v2/transactions",
							strings.NewReader(`{"customer_key":"k1","amount":100,"currency":"USD","key":"`+key+`"}`))
						req.SetBasicAuth(c.Production.PublicKey, c.Production.SecretKey)
						resp, err := client.Do(req)
						if err != nil {
							continue // the server is gone; keep trying until told to stop
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode == 200 {
							mu.Lock()
							acked = append(acked, key)
							mu.Unlock()
						}
					}
				}(w)
			}
			time.Sleep(1500 * time.Millisecond)
			if err := child.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			child.Wait()
			close(stop)
			wg.Wait()
			if len(acked) < 50 {
				t.Fatalf("only %d writes acknowledged before the kill; the test proves nothing", len(acked))
			}

			db, err := store.Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			stored := map[string]bool{}
			rows, err := db.Query(ctx, "SELECT key FROM transactions")
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var k string
				rows.Scan(&k)
				stored[k] = true
			}
			rows.Close()
			for _, k := range acked {
				if !stored[k] {
					t.Fatalf("acknowledged transaction %s lost after SIGKILL (%d acknowledged, %d stored)", k, len(acked), len(stored))
				}
			}
			t.Logf("%d acknowledged, all stored (%d rows in all)", len(acked), len(stored))
		})
	}
}

func ptr(s string) *string { return &s }

// startServer runs "partnerd serve" on dsn in a child process (this test
// binary, see TestMain) on a free loopback port, waits until it is ready,
// and kills it when the test ends.
func startServer(t *testing.T, dsn string) (base string, child *exec.Cmd) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	child = exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), "PARTNERD_TEST_CHILD_DB="+dsn, "PARTNERD_TEST_CHILD_ADDR="+addr)
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { child.Process.Kill(); child.Wait() })
	base = "http://" + addr
	for i := 0; ; i++ {
		if resp, err := http.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			return base, child
		}
		if i > 500 {
			t.Fatal("child server did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
