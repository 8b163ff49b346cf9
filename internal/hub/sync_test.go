package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/partnerd/partnerd/internal/clock"
	"github.com/partnerd/partnerd/internal/secret"
	"github.com/partnerd/partnerd/internal/store"
	"github.com/partnerd/partnerd/internal/store/storetest"
)

// fakePartnerStack is a small stand-in for PartnerStack's partner API (which
// cannot be reached from here), reproducing what its documentation says
// and what syncs trip over: the {data: {items, has_more, total}} envelope,
// epoch-ms times, newest-first by default, order_by, min_created and
// starting_after cursors (400 on an unknown one), 429 with Retry-After and
// 5xx on demand, 401 for a revoked token, and fields the hub does not know.
type fakePartnerStack struct {
	mu      sync.Mutex
	records map[string][]map[string]any
	fail    map[string][]int // statuses to answer, in turn, before the real one
	denied  bool
	methods map[string]int
	calls   int
	url     string
}

func newFake(t *testing.T) *fakePartnerStack {
	f := &fakePartnerStack{records: map[string][]map[string]any{}, fail: map[string][]int{}, methods: map[string]int{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(f.serve)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	f.url = "http://" + ln.Addr().String() + "/api/v2"
	return f
}

func (f *fakePartnerStack) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.methods[r.Method]++
	f.calls++
	stream := strings.TrimPrefix(r.URL.Path, "/api/v2/")
	answer := func(status int, body any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(body)
	}
	if f.denied || r.Header.Get("Authorization") != "Bearer good-token" {
		answer(401, map[string]any{"message": "Unauthorized", "status": 401})
		return
	}
	if q := f.fail[stream]; len(q) > 0 {
		f.fail[stream] = q[1:]
		if q[0] == 429 {
			w.Header().Set("Retry-After", "0")
		}
		answer(q[0], map[string]any{"message": "try later", "status": q[0]})
		return
	}
	q := r.URL.Query()
	limit, _ := strconv.Atoi(q.Get("limit"))
	if limit < 1 || limit > 250 {
		limit = 10
	}
	minCreated, _ := strconv.ParseInt(q.Get("min_created"), 10, 64)
	minUpdated, _ := strconv.ParseInt(q.Get("min_updated"), 10, 64)
	var list []map[string]any
	for _, rec := range f.records[stream] {
		if rec["created_at"].(int64) >= minCreated && rec["updated_at"].(int64) >= minUpdated {
			list = append(list, rec)
		}
	}
	field := strings.TrimPrefix(q.Get("order_by"), "-")
	if field != "updated_at" {
		field = "created_at"
	}
	asc := q.Get("order_by") != "" && !strings.HasPrefix(q.Get("order_by"), "-")
	sort.SliceStable(list, func(i, j int) bool {
		a, b := list[i][field].(int64), list[j][field].(int64)
		if a == b {
			return (list[i]["key"].(string) < list[j]["key"].(string)) == asc
		}
		return (a < b) == asc
	})
	start := 0
	if after := q.Get("starting_after"); after != "" {
		start = -1
		for i, rec := range list {
			if rec["key"] == after {
				start = i + 1
			}
		}
		if start < 0 {
			answer(400, map[string]any{"message": "'starting_after' refers to an unknown key: " + after, "status": 400})
			return
		}
	}
	end := min(start+limit, len(list))
	answer(200, map[string]any{"data": map[string]any{"items": list[start:end], "has_more": end < len(list), "total": len(list)},
		"message": "ok", "status": 200})
}

func (f *fakePartnerStack) add(stream string, n int, base int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := 0; i < n; i++ {
		rec := map[string]any{"key": fmt.Sprintf("%s_%04d", stream[:3], len(f.records[stream])), "created_at": base + int64(i)*1000,
			"updated_at": base + int64(i)*1000, "amount": 100 + i, "currency": "USD",
			"brand_new_field": map[string]any{"nested": []int{1, 2}}} // a field the hub has never heard of
		if stream == "rewards" {
			rec["reward_status"] = "pending"
		}
		f.records[stream] = append(f.records[stream], rec)
	}
}

var partnerStreams = []string{"partnerships", "customers", "transactions", "rewards", "payouts", "actions"}

func fakeProgram(t *testing.T) *fakePartnerStack {
	f := newFake(t)
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	for i, s := range partnerStreams {
		f.add(s, []int{3, 610, 530, 260, 4, 20}[i], base)
	}
	return f
}

func testService(t *testing.T, db *store.DB, cfg Config) *Service {
	box, err := secret.NewBox(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Limits.BackoffBase = time.Millisecond
	cfg.Limits.PerConnection, cfg.Limits.Burst = 1000, 100
	cfg.Global = 1000
	return New(db, clock.System{}, box, cfg)
}

// snapshot is a connection's records as (stream, key, raw, deleted).
func snapshot(t *testing.T, db *store.DB) []string {
	rows, err := db.Query(context.Background(), "SELECT stream, key, raw, deleted_at IS NULL, COALESCE(status, '') FROM hub_records ORDER BY stream, key")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s, k, raw, st string
		var live bool
		if err := rows.Scan(&s, &k, &raw, &live, &st); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s %s %v %s %s", s, k, live, st, raw))
	}
	return out
}

func count(t *testing.T, db *store.DB, query string) int {
	var n int
	if err := db.QueryRow(context.Background(), query).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSyncAgainstAPartnerStackShapedSource(t *testing.T) {
	for _, eng := range storetest.Engines(t) {
		t.Run(eng.Name, func(t *testing.T) {
			ctx := context.Background()
			f := fakeProgram(t)
			f.fail["rewards"] = []int{429, 503} // the first rewards page is refused twice
			db := eng.Open(t)
			cfg := DefaultConfig
			cfg.SweepEvery = 0 // every run is a full sweep here
			s := testService(t, db, cfg)
			c := connect(t, s, f)
			res, err := s.Sync(ctx, c.Key, nil)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]StreamResult{}
			for _, r := range res {
				got[r.Stream] = r
			}
			for _, st := range partnerStreams {
				want := len(f.records[st])
				if n := count(t, db, "SELECT COUNT(*) FROM hub_records WHERE stream = '"+st+"'"); n != want || got[st].Created != want {
					t.Errorf("%s: %d stored, %d created, want %d", st, n, got[st].Created, want)
				}
			}
			if r := got["customers"]; r.Pages != 3 || r.Requests != 3 {
				t.Errorf("610 customers in pages of 250: %+v", r)
			}
			if r := got["rewards"]; r.Requests != 4 || r.Pages != 2 {
				t.Errorf("rewards after a 429 and a 503: %+v", r)
			}
			if n := count(t, db, "SELECT COUNT(*) FROM hub_records WHERE raw LIKE '%brand_new_field%'"); n != 1427 {
				t.Errorf("unknown fields are kept in raw: %d of 1427", n)
			}

			// Between syncs: a reward is approved, a customer vanishes, a
			// transaction arrives.
			f.mu.Lock()
			f.records["rewards"][7]["reward_status"] = "approved"
			f.records["rewards"][7]["updated_at"] = time.Now().UnixMilli()
			gone := f.records["customers"][5]["key"]
			f.records["customers"] = append(f.records["customers"][:5], f.records["customers"][6:]...)
			f.mu.Unlock()
			f.add("transactions", 1, time.Now().UnixMilli())
			res, err = s.Sync(ctx, c.Key, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res {
				want := [3]int{0, 0, 0}
				switch r.Stream {
				case "rewards":
					want = [3]int{0, 1, 0}
				case "customers":
					want = [3]int{0, 0, 1}
				case "transactions":
					want = [3]int{1, 0, 0}
				}
				if got := [3]int{r.Created, r.Changed, r.Deleted}; got != want {
					t.Errorf("second sync of %s: created/changed/deleted %v, want %v", r.Stream, got, want)
				}
			}
			if n := count(t, db, fmt.Sprintf("SELECT COUNT(*) FROM hub_records WHERE key = '%s' AND deleted_at IS NOT NULL", gone)); n != 1 {
				t.Error("a vanished customer is not soft-deleted")
			}
			// The connection's streams report the records each run counted
			// as it ended, the vanished customer among the deleted.
			sts, err := s.Streams(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			for _, st := range sts {
				live := count(t, db, "SELECT COUNT(*) FROM hub_records WHERE stream = '"+st.Stream+"' AND deleted_at IS NULL")
				dead := count(t, db, "SELECT COUNT(*) FROM hub_records WHERE stream = '"+st.Stream+"' AND deleted_at IS NOT NULL")
				if st.Records != live || st.Deleted != dead || st.InFlight {
					t.Errorf("stream %s reports %d records, %d deleted (in flight %v); stored %d, %d", st.Stream, st.Records, st.Deleted, st.InFlight, live, dead)
				}
				if st.Stream == "customers" && (st.Deleted != 1 || st.Records != len(f.records["customers"])) {
					t.Errorf("customers: %d records, %d deleted; the source has %d and one vanished", st.Records, st.Deleted, len(f.records["customers"]))
				}
			}
			refs, err := s.Referrals(ctx, "Agency")
			if err != nil {
				t.Fatal(err)
			}
			statuses := map[string]int{}
			for _, r := range refs {
				statuses[r.Status]++
				if (r.Status == "removed") != (r.CustomerKey == gone) || (r.RemovedAt != nil) != (r.Status == "removed") {
					t.Errorf("referral %s: status %s, removed at %v", r.CustomerKey, r.Status, r.RemovedAt)
				}
			}
			if statuses["removed"] != 1 || statuses["active"] != len(f.records["customers"]) {
				t.Errorf("referral statuses %v, with %d customers at the source", statuses, len(f.records["customers"]))
			}
			if n := count(t, db, `SELECT COUNT(*) FROM hub_record_changes ch JOIN hub_records r ON r.id = ch.record_id
				WHERE r.key = 'rew_0007' AND ch.from_value = 'pending' AND ch.to_value = 'approved'`); n != 1 {
				t.Error("the reward's status change is not in its history")
			}

			// A revoked token: the connection turns invalid and stops.
			f.mu.Lock()
			f.denied = true
			f.mu.Unlock()
			if _, err := s.Sync(ctx, c.Key, nil); !errors.Is(err, ErrInvalidCredentials) {
				t.Fatalf("a sync with a revoked token: %v", err)
			}
			cc, _ := s.ConnectionByKey(ctx, c.Key)
			if cc.Status != StatusInvalid || !strings.Contains(deref(cc.StatusReason), "401") {
				t.Fatalf("after a 401: %+v", cc)
			}
			f.mu.Lock()
			calls := f.calls
			f.mu.Unlock()
			if _, err := s.Sync(ctx, c.Key, nil); err == nil || !strings.Contains(err.Error(), "invalid") {
				t.Fatalf("an invalid connection synced again: %v", err)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.calls != calls {
				t.Fatal("an invalid connection still calls the source")
			}
			if len(f.methods) != 1 || f.methods["GET"] == 0 {
				t.Fatalf("the source saw methods %v", f.methods)
			}
		})
	}
}

// A sync cancelled at random points and resumed ends where an
// uninterrupted one does, with no duplicates.
func TestCancelledSyncsResumeToTheSameState(t *testing.T) {
	for _, eng := range storetest.Engines(t) {
		t.Run(eng.Name, func(t *testing.T) {
			ctx := context.Background()
			f := fakeProgram(t)
			cfg := DefaultConfig
			cfg.SweepEvery = 0 // every run a sweep, whose resumption must remember what it saw
			whole := testService(t, eng.Open(t), cfg)
			wc := connect(t, whole, f)
			if _, err := whole.Sync(ctx, wc.Key, nil); err != nil {
				t.Fatal(err)
			}
			want := snapshot(t, whole.db)

			db := eng.Open(t)
			s := testService(t, db, cfg)
			c := connect(t, s, f)
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
			// Syncs cut after a random page until one runs through; that one
			// resumes the run the last cut left (a sweep, so a resumed run
			// that forgot what it saw before the cut would delete it).
			cuts := 0
			for {
				cctx, cancel := context.WithCancel(ctx)
				stopAt := 1 + rng.IntN(9)
				if cuts == 5 {
					stopAt = -1
				}
				pages := 0
				_, err := s.Sync(cctx, c.Key, func(string, int, int) {
					if pages++; pages == stopAt {
						cancel()
					}
				})
				cancel()
				if err == nil && cuts > 0 {
					break
				}
				if err != nil && !errors.Is(err, context.Canceled) {
					t.Fatalf("after %d cuts: %v", cuts, err)
				}
				if err != nil {
					cuts++
				}
			}
			if got := snapshot(t, db); strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("after %d cuts the records differ from an uninterrupted sync (%d vs %d)", cuts, len(got), len(want))
			}
			if n := count(t, db, "SELECT COUNT(*) FROM hub_streams WHERE run_min IS NOT NULL"); n != 0 {
				t.Fatalf("%d streams still have a run in flight", n)
			}
		})
	}
}

// Due connections sync by themselves, once each, however many nodes look.
func TestScheduledSyncsRunOnceEach(t *testing.T) {
	for _, eng := range storetest.Engines(t) {
		t.Run(eng.Name, func(t *testing.T) {
			ctx := context.Background()
			f := fakeProgram(t)
			db := eng.Open(t)
			cfg := DefaultConfig
			cfg.SyncEvery = time.Hour
			nodes := []*Service{testService(t, db, cfg), testService(t, db, cfg), testService(t, db, cfg)}
			var keys []string
			for i := 0; i < 3; i++ {
				c, err := nodes[0].Connect(ctx, ConnectInput{Workspace: "A", Name: fmt.Sprint("PS", i), BaseURL: f.url, Token: "good-token"})
				if err != nil {
					t.Fatal(err)
				}
				keys = append(keys, c.Key)
			}
			f.mu.Lock()
			before := f.calls
			f.mu.Unlock()
			var wg sync.WaitGroup
			ran := make([]int, len(nodes))
			for i, n := range nodes {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var err error
					if ran[i], err = n.RunDue(ctx, slogDiscard()); err != nil {
						t.Errorf("node %d: %v", i, err)
					}
				}()
			}
			wg.Wait()
			if total := ran[0] + ran[1] + ran[2]; total != 3 {
				t.Fatalf("three due connections ran %d times across three nodes (%v)", total, ran)
			}
			f.mu.Lock()
			calls := f.calls - before
			f.mu.Unlock()
			if calls != 3*11 {
				t.Fatalf("three syncs of 11 pages made %d requests", calls)
			}
			for _, k := range keys {
				c, _ := nodes[0].ConnectionByKey(ctx, k)
				in := c.NextSyncAt - time.Now().UnixMilli()
				if c.LastSyncAt == nil || in < 50*60*1000 || in > 70*60*1000 {
					t.Fatalf("connection %s: last sync %v, next in %d ms (want about an hour)", k, c.LastSyncAt, in)
				}
			}
			if n, err := nodes[1].RunDue(ctx, slogDiscard()); err != nil || n != 0 {
				t.Fatalf("nothing is due, yet %d ran (%v)", n, err)
			}
		})
	}
}

func slogDiscard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// A run cut mid-stream whose cursor record then vanishes at the source
// (which answers 400 for an unknown starting_after) starts that run over
// instead of failing forever.
func TestResumeAfterTheCursorVanished(t *testing.T) {
	for _, eng := range storetest.Engines(t) {
		t.Run(eng.Name, func(t *testing.T) {
			ctx := context.Background()
			f := fakeProgram(t)
			db := eng.Open(t)
			s := testService(t, db, DefaultConfig)
			c := connect(t, s, f)
			cctx, cancel := context.WithCancel(ctx)
			_, err := s.Sync(cctx, c.Key, func(stream string, pages, _ int) {
				if stream == "customers" && pages == 1 {
					cancel()
				}
			})
			cancel()
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("the cut: %v", err)
			}
			var cursor string
			if err := db.QueryRow(ctx, "SELECT run_cursor FROM hub_streams WHERE stream = 'customers'").Scan(&cursor); err != nil {
				t.Fatal(err)
			}
			f.mu.Lock()
			for i, rec := range f.records["customers"] {
				if rec["key"] == cursor {
					f.records["customers"] = append(f.records["customers"][:i], f.records["customers"][i+1:]...)
					break
				}
			}
			f.mu.Unlock()
			if _, err := s.Sync(ctx, c.Key, nil); err != nil {
				t.Fatalf("the resumed sync: %v", err)
			}
			if n := count(t, db, "SELECT COUNT(*) FROM hub_records WHERE stream = 'customers'"); n != 610 {
				t.Fatalf("customers stored: %d", n)
			}
		})
	}
}

// Lists that take min_updated are read by what changed since the last
// run: an unchanged re-sync reads one short page of them, and a change to
// an old record still arrives.
func TestUpdatedStreamsReadWhatChanged(t *testing.T) {
	for _, eng := range storetest.Engines(t) {
		t.Run(eng.Name, func(t *testing.T) {
			ctx := context.Background()
			f := fakeProgram(t)
			db := eng.Open(t)
			s := testService(t, db, DefaultConfig)
			c := connect(t, s, f)
			if _, err := s.Sync(ctx, c.Key, nil); err != nil {
				t.Fatal(err)
			}
			byName := func(res []StreamResult) map[string]StreamResult {
				out := map[string]StreamResult{}
				for _, r := range res {
					out[r.Stream] = r
				}
				return out
			}
			res, err := s.Sync(ctx, c.Key, nil)
			if err != nil {
				t.Fatal(err)
			}
			got := byName(res)
			if r := got["customers"]; r.Requests != 1 || r.Records > 61 || r.Changed != 0 || r.Sweep {
				t.Fatalf("an unchanged re-sync of 610 customers: %+v", r)
			}
			if r := got["transactions"]; r.Requests != 3 || r.Changed != 0 {
				t.Fatalf("transactions are read by their look-back: %+v", r)
			}
			f.mu.Lock()
			f.records["customers"][3]["name"] = "Renamed"
			f.records["customers"][3]["updated_at"] = time.Now().UnixMilli()
			f.mu.Unlock()
			got = byName(must(s.Sync(ctx, c.Key, nil)))
			if r := got["customers"]; r.Requests != 1 || r.Changed != 1 {
				t.Fatalf("an old customer changed: %+v", r)
			}
			if n := count(t, db, "SELECT COUNT(*) FROM hub_records WHERE stream = 'customers' AND raw LIKE '%Renamed%'"); n != 1 {
				t.Fatal("the change is not stored")
			}
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// connect connects s to the fake source with its good token.
func connect(t *testing.T, s *Service, f *fakePartnerStack) Connection {
	t.Helper()
	c, err := s.Connect(context.Background(), ConnectInput{Workspace: "Agency", Name: "PS", BaseURL: f.url, Token: "good-token"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
