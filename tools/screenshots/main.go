// Command screenshots takes the README's pictures of the web app: it runs
// `partnerd demo` on a fresh database, logs in with Chromium as the
// vendor, the partner and the agency, and saves each main page as a PNG.
//
//	go run ./tools/screenshots -chromium $(command -v chromium) -out docs/screenshots
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/partnerd/partnerd/bench/loadgen"
)

func main() {
	chromium := flag.String("chromium", os.Getenv("PARTNERD_TEST_CHROMIUM"), "Chromium's path")
	out := flag.String("out", "docs/screenshots", "where the PNGs go")
	flag.Parse()
	if err := run(*chromium, *out); err != nil {
		fmt.Fprintln(os.Stderr, "screenshots:", err)
		os.Exit(1)
	}
}

func run(chromium, out string) error {
	b, err := loadgen.Build()
	if err != nil {
		return err
	}
	defer b.Close()
	cmd := exec.Command(b.Bin, "demo", "--db", filepath.Join(b.Dir, "demo.db"), "--addr", loadgen.FreeAddr(), "--customers", "4000")
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() }()
	var base, partner string
	sc := bufio.NewScanner(pipe)
	for sc.Scan() && (base == "" || partner == "") {
		if m := regexp.MustCompile(`running at (http://\S+)`).FindStringSubmatch(sc.Text()); m != nil {
			base = m[1]
		}
		if m := regexp.MustCompile(`(\S+@partners\.example) / `).FindStringSubmatch(sc.Text()); m != nil {
			partner = m[1]
		}
	}
	if base == "" {
		return fmt.Errorf("the demo did not start")
	}
	go func() {
		for sc.Scan() {
		}
	}()
	time.Sleep(25 * time.Second) // the rollups count clicks once their ids are 10 s old; the hub syncs
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	shots := []struct {
		login, email string
		pages        map[string]string
	}{
		{"/login", "owner@acme-analytics.example", map[string]string{"vendor-overview.png": "/app", "vendor-rewards.png": "/app/rewards?status=pending",
			"vendor-partner.png": "/app/partners/" + partnerKey(partner)}},
		{"/portal/login", partner, map[string]string{"partner-portal.png": "/portal"}},
		{"/login", "agency@northwind.example", map[string]string{"hub-report.png": "/hub/report", "hub-connections.png": "/hub"}},
	}
	for _, s := range shots {
		if err := shoot(chromium, base, s.login, s.email, s.pages, out); err != nil {
			return err
		}
	}
	return nil
}

func partnerKey(email string) string {
	if m := regexp.MustCompile(`^(.+)@`).FindStringSubmatch(email); m != nil {
		return m[1]
	}
	return ""
}

func shoot(chromium, base, login, email string, pages map[string]string, out string) error {
	profile, err := os.MkdirTemp("", "partnerd-shots-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(profile)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(profile), chromedp.WindowSize(1280, 900))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel2 := chromedp.NewContext(actx)
	defer cancel2()
	ctx, cancel3 := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel3()
	if err := chromedp.Run(ctx, chromedp.Navigate(base+login), chromedp.SendKeys(`input[name=email]`, email, chromedp.ByQuery),
		chromedp.SendKeys(`input[name=password]`, "partnerd-demo", chromedp.ByQuery), chromedp.Submit(`input[name=password]`, chromedp.ByQuery),
		chromedp.WaitVisible("main h1", chromedp.ByQuery)); err != nil {
		return fmt.Errorf("log in as %s: %w", email, err)
	}
	for file, path := range pages {
		var png []byte
		if err := chromedp.Run(ctx, chromedp.Navigate(base+path), chromedp.WaitVisible("main h1", chromedp.ByQuery),
			chromedp.CaptureScreenshot(&png)); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if err := os.WriteFile(filepath.Join(out, file), png, 0o644); err != nil {
			return err
		}
		fmt.Println("saved", filepath.Join(out, file))
	}
	return nil
}
