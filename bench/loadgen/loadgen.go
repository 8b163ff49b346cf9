// Package loadgen is the load generator the benchmarks share, so partnerd
// and each baseline are driven exactly the same way in the same run.
package loadgen

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// BuildPartnerd builds the partnerd binary into dir (run from the
// repository root) and returns its path.
func BuildPartnerd(dir string) (string, error) {
	bin := filepath.Join(dir, "partnerd")
	build := exec.Command("go", "build", "-o", bin, "./cmd/partnerd")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("build partnerd (run from the repository root): %w", err)
	}
	return bin, nil
}

// FreeAddr returns a free 127.0.0.1 address.
func FreeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// WaitUp waits until url answers.
func WaitUp(url string) error {
	for i := 0; i < 200; i++ {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("server at %s did not come up", url)
}

// Result is what a load run saw.
type Result struct {
	OK        int64 // responses with the wanted status
	Failed    int64
	RPS       float64 // wanted responses per second during the measured time
	Latencies []time.Duration
	Tags      []string // the tag of every wanted response
}

// Pct returns the p-th latency (0..1).
func (r Result) Pct(p float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	sort.Slice(r.Latencies, func(i, j int) bool { return r.Latencies[i] < r.Latencies[j] })
	return r.Latencies[int(float64(len(r.Latencies)-1)*p)]
}

// Run drives requests from conc keep-alive clients for dur. next builds
// request i of worker w and a tag for it; a response with status want counts
// as served and its tag is kept. atEnd, if set, runs after dur while the
// clients are still sending (to kill a server mid-load, say).
func Run(conc int, dur time.Duration, want int, next func(w, i int) (*http.Request, string), atEnd func()) Result {
	tr := &http.Transport{MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc, DisableCompression: true}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var stop atomic.Bool
	var counted, failed atomic.Int64
	var mu sync.Mutex
	var res Result
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var lat []time.Duration
			var tags []string
			for i := 0; !stop.Load(); i++ {
				req, tag := next(w, i)
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != want {
					failed.Add(1)
					continue
				}
				lat = append(lat, time.Since(t0))
				tags = append(tags, tag)
				counted.Add(1)
			}
			mu.Lock()
			res.Latencies = append(res.Latencies, lat...)
			res.Tags = append(res.Tags, tags...)
			mu.Unlock()
		}(w)
	}
	time.Sleep(dur)
	res.RPS = float64(counted.Load()) / time.Since(start).Seconds()
	if atEnd != nil {
		atEnd()
	}
	stop.Store(true)
	wg.Wait()
	res.OK = int64(len(res.Tags))
	res.Failed = failed.Load()
	tr.CloseIdleConnections()
	return res
}
