package hub

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/partnerd/partnerd/internal/errs"
	"github.com/partnerd/partnerd/internal/store"
)

// Stream is one list a connection syncs.
type Stream struct {
	Name    string     // also the list's path under the base URL
	Status  string     // the field whose changes are kept as history ("" for none)
	Vendor  bool       // only a vendor's key pair can read it
	Updated bool       // the list takes min_updated: runs read what changed, not a look-back
	Query   url.Values // parameters the list needs to return everything (archived records, offers)
}

// Streams are what a connection syncs, in order: each may refer to the
// ones before it.
var Streams = []Stream{
	{Name: "partnerships", Status: "status", Updated: true, Query: url.Values{"include_archived": {"true"}, "include_offers": {"true"}}},
	{Name: "groups", Vendor: true, Updated: true},
	{Name: "customers", Updated: true, Query: archivedToo},
	{Name: "transactions", Query: archivedToo},
	{Name: "rewards", Status: "reward_status", Query: archivedToo},
	{Name: "payouts", Status: "status"},
	{Name: "actions"},
	{Name: "leads", Status: "status", Vendor: true, Updated: true},
	{Name: "deals", Status: "stage", Vendor: true, Updated: true},
}

// archivedToo asks a list for its archived records as well.
var archivedToo = url.Values{"include_archived": {"true"}}

// pageSize is PartnerStack's largest page.
const pageSize = 250

// Progress is told what a sync did, page by page.
type Progress func(stream string, pages, records int)

// StreamResult counts what one stream's run did.
type StreamResult struct {
	Stream   string
	Pages    int
	Records  int // records read
	Created  int
	Changed  int // records whose content changed
	Deleted  int // soft-deleted by a full sweep
	Sweep    bool
	Requests int
}

// Sync runs one sync of a connection: every stream, each resumed where a
// crashed run left it. Only one run of a connection goes at a time, on
// any node: the run holds a lease on it.
func (s *Service) Sync(ctx context.Context, key string, progress Progress) ([]StreamResult, error) {
	c, err := s.ConnectionByKey(ctx, key)
	if err != nil {
		return nil, err
	}
	if c.Status == StatusInvalid {
		return nil, errs.E(errs.Invalid, "connection %s is invalid (%s): connect it again with new credentials", c.Key, deref(c.StatusReason))
	}
	release, err := s.lease(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	defer release()
	cl, err := s.client(c)
	if err != nil {
		return nil, err
	}
	var out []StreamResult
	for _, st := range Streams {
		if st.Vendor && c.AuthKind != "basic" {
			continue
		}
		res, err := s.syncStream(ctx, c, cl, st, progress)
		out = append(out, res)
		if errors.Is(err, ErrInvalidCredentials) {
			reason := err.Error()
			if _, uerr := s.db.Exec(ctx, "UPDATE hub_connections SET status = ?, status_reason = ?, updated_at = ? WHERE id = ?",
				StatusInvalid, reason, s.now(), c.ID); uerr != nil {
				return out, fmt.Errorf("mark connection invalid: %w (after %v)", uerr, err)
			}
			return out, err
		}
		if err != nil {
			return out, fmt.Errorf("sync %s of %s: %w", st.Name, c.Key, err)
		}
	}
	// The generation (and so the cached views) moves only if some run
	// changed records since it last moved: see migration 017.
	now := s.now()
	if _, err := s.db.Exec(ctx, `UPDATE hub_connections SET last_sync_at = ?, generation = generation + dirty,
		updated_at = CASE WHEN dirty = 1 THEN ? ELSE updated_at END, dirty = 0 WHERE id = ?`, now, now, c.ID); err != nil {
		return out, fmt.Errorf("record sync: %w", err)
	}
	return out, nil
}

// leaseMillis is how long a run holds its connection without renewing.
const leaseMillis = 10 * 60 * 1000

// lease claims a connection for one run; release gives it back.
func (s *Service) lease(ctx context.Context, id int64) (release func(), err error) {
	now := s.now()
	res, err := s.db.Exec(ctx, "UPDATE hub_connections SET lease_until = ? WHERE id = ? AND lease_until < ?", now+leaseMillis, id, now)
	if err != nil {
		return nil, fmt.Errorf("claim connection: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return nil, errs.E(errs.Conflict, "the connection is being synced already")
	}
	return func() {
		// A cancelled run still hands its connection back.
		_, _ = s.db.Exec(context.WithoutCancel(ctx), "UPDATE hub_connections SET lease_until = 0 WHERE id = ?", id)
	}, nil
}

// state is a stream's row in hub_streams.
type state struct {
	highWater    int64
	updatedWater int64
	runBy        string
	runMin       *int64
	runCursor    *string
	runSweep     bool
	runStartedAt *int64
	lastSweepAt  int64
}

func (s *Service) loadState(ctx context.Context, q store.Querier, connID int64, stream string) (state, error) {
	var st state
	err := q.QueryRow(ctx, `SELECT high_water, updated_water, run_by, run_min, run_cursor, run_sweep, run_started_at, last_sweep_at FROM hub_streams
		WHERE connection_id = ? AND stream = ?`, connID, stream).
		Scan(&st.highWater, &st.updatedWater, &st.runBy, &st.runMin, &st.runCursor, &st.runSweep, &st.runStartedAt, &st.lastSweepAt)
	if err == nil {
		return st, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return st, fmt.Errorf("load %s state: %w", stream, err)
	}
	if _, err := q.Exec(ctx, "INSERT INTO hub_streams (connection_id, stream) VALUES (?, ?) ON CONFLICT (connection_id, stream) DO NOTHING",
		connID, stream); err != nil {
		return st, fmt.Errorf("create %s state: %w", stream, err)
	}
	return state{runBy: byCreated}, nil
}

// How a run filters its stream.
const (
	byCreated = "created"
	byUpdated = "updated"
)

// updatedOverlap is how far before the newest updated_at seen a
// min_updated run starts, for changes that landed in the same instant or
// while the previous run paged.
const updatedOverlap = 60_000

// syncStream runs (or resumes) one stream's run. A run reads every record
// created since its min_created, oldest first, one page per database
// transaction with the checkpoint; a full sweep reads from the start and
// then soft-deletes what it did not see.
func (s *Service) syncStream(ctx context.Context, c Connection, cl *Client, st Stream, progress Progress) (StreamResult, error) {
	res := StreamResult{Stream: st.Name}
	// Streams run one after another on one client: the requests a stream
	// made are what the client sent during it.
	sentBefore := cl.sent.Load()
	requests := func() int { return int(cl.sent.Load() - sentBefore) }
	state, err := s.loadState(ctx, s.db, c.ID, st.Name)
	if err != nil {
		return res, err
	}
	if state.runMin == nil {
		// A new run: from the start on the first sync and on a sweep, else
		// from the newest record seen less the look-back.
		now := s.now()
		sweep := state.highWater == 0 || now-state.lastSweepAt >= s.cfg.SweepEvery.Milliseconds()
		min, by := int64(0), byCreated
		switch {
		case sweep:
		case st.Updated:
			// What changed since the last run, whenever it was created.
			min, by = max(0, state.updatedWater-updatedOverlap), byUpdated
		default:
			min = max(0, state.highWater-s.cfg.Lookback.Milliseconds())
		}
		if _, err := s.db.Exec(ctx, `UPDATE hub_streams SET run_min = ?, run_by = ?, run_cursor = NULL, run_sweep = ?, run_started_at = ?
			WHERE connection_id = ? AND stream = ?`, min, by, store.Bool(sweep), now, c.ID, st.Name); err != nil {
			return res, fmt.Errorf("start %s run: %w", st.Name, err)
		}
		state.runMin, state.runBy, state.runCursor, state.runSweep, state.runStartedAt = &min, by, nil, sweep, &now
	}
	res.Sweep = state.runSweep
	// The next page is fetched while this one is written: its cursor is
	// known once this one is parsed. It is only stored after this one.
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type fetched struct {
		page Page
		err  error
	}
	fetch := func(cursor *string) <-chan fetched {
		q := url.Values{"limit": {strconv.Itoa(pageSize)}, "order_by": {"created_at"}, "min_created": {strconv.FormatInt(*state.runMin, 10)}}
		if state.runBy == byUpdated {
			q = url.Values{"limit": {strconv.Itoa(pageSize)}, "order_by": {"updated_at"}, "min_updated": {strconv.FormatInt(*state.runMin, 10)}}
		}
		if cursor != nil {
			q.Set("starting_after", *cursor)
		}
		for k, v := range st.Query {
			q[k] = v
		}
		ch := make(chan fetched, 1)
		go func() {
			p, err := cl.List(fctx, "/"+st.Name, q)
			ch <- fetched{p, err}
		}()
		return ch
	}
	restarted := false
	next := fetch(state.runCursor)
	for next != nil {
		f := <-next
		next = nil
		res.Requests = requests()
		if errors.Is(f.err, ErrRefused) && state.runCursor != nil && !restarted {
			// The record the cursor names may have vanished at the source
			// (PartnerStack answers 400 for an unknown starting_after): the
			// run starts over from its min_created. What it stored stays,
			// and storing it again changes nothing.
			restarted = true
			state.runCursor = nil
			if _, err := s.db.Exec(ctx, "UPDATE hub_streams SET run_cursor = NULL WHERE connection_id = ? AND stream = ?", c.ID, st.Name); err != nil {
				return res, fmt.Errorf("restart %s run: %w", st.Name, err)
			}
			next = fetch(nil)
			continue
		}
		if f.err != nil {
			return res, f.err
		}
		recs, newest, newestUpdate, last, err := parsePage(f.page.Items, st)
		if err != nil {
			return res, err
		}
		// has_more is the only stop signal; a page of nothing with has_more
		// would loop forever, so it ends the run too.
		if f.page.HasMore && len(recs) > 0 {
			next = fetch(&last)
		}
		err = s.db.Tx(ctx, func(tx *store.Tx) error {
			created, changed, err := s.upsertPage(ctx, tx, c.ID, st, recs, *state.runStartedAt, state.runSweep)
			if err != nil {
				return err
			}
			res.Created += created
			res.Changed += changed
			cursor := any(nil)
			if last != "" {
				cursor = last
			}
			// Each page renews the run's hold on its connection, and
			// marks it changed if it changed records.
			if _, err := tx.Exec(ctx, "UPDATE hub_connections SET lease_until = ?, dirty = CASE WHEN ? > 0 THEN 1 ELSE dirty END WHERE id = ?",
				s.now()+leaseMillis, created+changed, c.ID); err != nil {
				return fmt.Errorf("renew lease: %w", err)
			}
			_, err = tx.Exec(ctx, `UPDATE hub_streams SET run_cursor = COALESCE(?, run_cursor),
				high_water = CASE WHEN high_water > ? THEN high_water ELSE ? END,
				updated_water = CASE WHEN updated_water > ? THEN updated_water ELSE ? END
				WHERE connection_id = ? AND stream = ?`, cursor, newest, newest, newestUpdate, newestUpdate, c.ID, st.Name)
			return err
		})
		if err != nil {
			return res, fmt.Errorf("store a page of %s: %w", st.Name, err)
		}
		res.Pages++
		res.Records += len(recs)
		if progress != nil {
			progress(st.Name, res.Pages, res.Records)
		}
		if last != "" {
			state.runCursor = &last
		}
	}
	res.Requests = requests()
	return res, s.finishRun(ctx, c.ID, st.Name, state, &res)
}

// finishRun closes a run: a sweep soft-deletes what it did not see.
func (s *Service) finishRun(ctx context.Context, connID int64, stream string, st state, res *StreamResult) error {
	now := s.now()
	return s.db.Tx(ctx, func(tx *store.Tx) error {
		if st.runSweep {
			r, err := tx.Exec(ctx, `UPDATE hub_records SET deleted_at = ? WHERE connection_id = ? AND stream = ? AND seen_at < ? AND deleted_at IS NULL`,
				now, connID, stream, *st.runStartedAt)
			if err != nil {
				return fmt.Errorf("sweep %s: %w", stream, err)
			}
			n, _ := r.RowsAffected()
			res.Deleted = int(n)
			if n > 0 {
				if _, err := tx.Exec(ctx, "UPDATE hub_connections SET dirty = 1 WHERE id = ?", connID); err != nil {
					return fmt.Errorf("sweep %s: %w", stream, err)
				}
			}
		}
		sweepAt := any(nil)
		if st.runSweep {
			sweepAt = *st.runStartedAt
		}
		// The stream's records, counted once a run rather than on each
		// view of the connections page.
		_, err := tx.Exec(ctx, `UPDATE hub_streams SET run_min = NULL, run_cursor = NULL, run_sweep = 0, run_started_at = NULL,
			last_sweep_at = COALESCE(?, last_sweep_at), last_success_at = ?,
			records = (SELECT COUNT(*) FROM hub_records r WHERE r.connection_id = hub_streams.connection_id AND r.stream = hub_streams.stream AND r.deleted_at IS NULL),
			deleted = (SELECT COUNT(*) FROM hub_records r WHERE r.connection_id = hub_streams.connection_id AND r.stream = hub_streams.stream AND r.deleted_at IS NOT NULL)
			WHERE connection_id = ? AND stream = ?`, sweepAt, now, connID, stream)
		if err != nil {
			return fmt.Errorf("finish %s run: %w", stream, err)
		}
		return nil
	})
}

// record is what the hub reads of one item; the rest stays in raw.
type record struct {
	key       string
	raw       string
	status    *string
	terms     *string // a partnership's offers and group, as JSON
	createdAt int64
	updatedAt int64
	norm      normalized
}

// normalized are the columns every stream shares. PartnerStack and
// partnerd spell a reference either flat (partnership_key) or nested
// (partnership.key); both are read, and what is absent stays null.
type normalized struct {
	amount, amountUSD                  *int64
	currency                           *string
	companyKey, companyName            *string
	partnershipRef, customerRef, txRef *string
	email, domain, reason              *string
	archived, test                     bool
}

func (n normalized) args() []any {
	return []any{n.amount, n.currency, n.amountUSD, n.companyKey, n.companyName, n.partnershipRef, n.customerRef, n.txRef,
		n.email, n.domain, n.reason, store.Bool(n.archived), store.Bool(n.test)}
}

const normCols = "amount, currency, amount_usd, company_key, company_name, partnership_ref, customer_ref, transaction_ref, email, domain, reason, archived, test"

// item is what the hub reads of a record, each field kept raw so that an
// unexpected type (a string where an object was, say) never fails a sync:
// it only leaves that column empty. The record itself stays whole in raw.
type item struct {
	Key            json.RawMessage `json:"key"`
	CreatedAt      json.RawMessage `json:"created_at"`
	UpdatedAt      json.RawMessage `json:"updated_at"`
	Amount         json.RawMessage `json:"amount"`
	AmountUSD      json.RawMessage `json:"amount_usd"`
	Currency       json.RawMessage `json:"currency"`
	Company        json.RawMessage `json:"company"`
	Partnership    json.RawMessage `json:"partnership"`
	Customer       json.RawMessage `json:"customer"`
	Transaction    json.RawMessage `json:"transaction"`
	PartnershipKey json.RawMessage `json:"partnership_key"`
	CustomerKey    json.RawMessage `json:"customer_key"`
	TransactionKey json.RawMessage `json:"transaction_key"`
	DeclineReason  json.RawMessage `json:"decline_reason"`
	HoldReason     json.RawMessage `json:"hold_reason"`
	LostReason     json.RawMessage `json:"lost_reason"`
	Archived       json.RawMessage `json:"archived"`
	IsArchived     json.RawMessage `json:"is_archived"`
	Test           json.RawMessage `json:"test"`
	Email          json.RawMessage `json:"email"`
	RewardStatus   json.RawMessage `json:"reward_status"`
	Status         json.RawMessage `json:"status"`
	Stage          json.RawMessage `json:"stage"`
	Offers         json.RawMessage `json:"offers"`
	Group          json.RawMessage `json:"group"`
}

// terms is a program's terms for history: its offers and the partner's
// group (tier), as JSON; nil when the source sends neither.
func terms(offers, group json.RawMessage) *string {
	if len(offers) == 0 && len(group) == 0 {
		return nil
	}
	b, err := json.Marshal(struct {
		Offers json.RawMessage `json:"offers,omitempty"`
		Group  json.RawMessage `json:"group,omitempty"`
	}{offers, group})
	if err != nil {
		return nil
	}
	s := string(b)
	return &s
}

// nested reads the key and name of a nested reference ({"key", "name"}).
func nested(v json.RawMessage) (key, name *string) {
	if len(v) == 0 || v[0] != '{' {
		return nil, nil
	}
	var r struct {
		Key  json.RawMessage `json:"key"`
		Name json.RawMessage `json:"name"`
	}
	if json.Unmarshal(v, &r) != nil {
		return nil, nil
	}
	return text(r.Key), text(r.Name)
}

func parseRecord(raw json.RawMessage, st Stream) (record, error) {
	var it item
	if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &it) != nil {
		return record{}, fmt.Errorf("an item is not a JSON object: %.100s", raw)
	}
	r := record{raw: string(raw)}
	if k := text(it.Key); k != nil {
		r.key = *k
	} else {
		return record{}, fmt.Errorf("an item has no key: %.100s", raw)
	}
	r.createdAt, r.updatedAt = millis(it.CreatedAt), millis(it.UpdatedAt)
	if r.updatedAt == 0 {
		r.updatedAt = r.createdAt
	}
	switch st.Status {
	case "reward_status":
		r.status = text(it.RewardStatus)
	case "status":
		r.status = text(it.Status)
	case "stage":
		r.status = text(it.Stage)
	}
	n := &r.norm
	n.amount, n.amountUSD, n.currency = integer(it.Amount), integer(it.AmountUSD), text(it.Currency)
	n.companyKey, n.companyName = nested(it.Company)
	pk, _ := nested(it.Partnership)
	n.partnershipRef = first(text(it.PartnershipKey), pk)
	ck, _ := nested(it.Customer)
	n.customerRef = first(ck, text(it.CustomerKey))
	tk, _ := nested(it.Transaction)
	n.txRef = first(tk, text(it.TransactionKey))
	n.reason = first(text(it.DeclineReason), text(it.HoldReason), text(it.LostReason))
	n.archived = flag(it.Archived) || flag(it.IsArchived)
	n.test = flag(it.Test)
	switch st.Name {
	case "partnerships":
		n.partnershipRef = &r.key
		r.terms = terms(it.Offers, it.Group)
	case "customers":
		n.customerRef = &r.key
		if e := text(it.Email); e != nil {
			low := strings.ToLower(strings.TrimSpace(*e))
			n.email = &low
			if i := strings.LastIndex(low, "@"); i >= 0 && i < len(low)-1 {
				d := low[i+1:]
				n.domain = &d
			}
		}
	case "transactions":
		n.txRef = &r.key
	}
	return r, nil
}

// text reads a string (or a number, as text); nil when absent, null or empty.
func text(v json.RawMessage) *string {
	var x any
	if len(v) == 0 || json.Unmarshal(v, &x) != nil || x == nil {
		return nil
	}
	var s string
	switch t := x.(type) {
	case string:
		s = t
	case float64, bool:
		s = strings.TrimSpace(string(v))
	default:
		return nil
	}
	if s == "" {
		return nil
	}
	return &s
}

// integer reads a whole number; nil when absent or anything else.
func integer(v json.RawMessage) *int64 {
	n, err := strconv.ParseInt(strings.TrimSpace(string(v)), 10, 64)
	if err != nil {
		return nil
	}
	return &n
}

// flag reads a boolean, also PartnerStack's "true"/"false" strings.
func flag(v json.RawMessage) bool {
	s := strings.Trim(strings.TrimSpace(string(v)), `"`)
	return s == "true" || s == "1"
}

func first(vals ...*string) *string {
	for _, v := range vals {
		if v != nil {
			return v
		}
	}
	return nil
}

// millis reads an epoch-ms field; anything else (absent, null, a string) is 0.
func millis(v json.RawMessage) int64 {
	if n := integer(v); n != nil {
		return *n
	}
	return 0
}

// parsePage reads a page's items, and returns the newest created_at and
// updated_at and the last key (the next page's cursor).
func parsePage(items []json.RawMessage, st Stream) (recs []record, newest, newestUpdate int64, last string, err error) {
	recs = make([]record, 0, len(items))
	for _, it := range items {
		r, err := parseRecord(it, st)
		if err != nil {
			return nil, 0, 0, "", fmt.Errorf("%s: %w", st.Name, err)
		}
		recs = append(recs, r)
		newest = max(newest, r.createdAt)
		newestUpdate = max(newestUpdate, r.updatedAt)
		last = r.key
	}
	return recs, newest, newestUpdate, last, nil
}

// lookupStoredPG reads a page's stored records on PostgreSQL: one index
// probe a key, whatever the plan. The driver prepares it once and
// PostgreSQL settles on a generic plan made while the table was small: for
// "key = ANY(?)" that plan filtered every record of the stream instead of
// looking the keys up (45 ms a page at 8,000 records, growing with the
// data), and a plain join to the unnested keys became a hash join over the
// whole stream. A LATERAL subquery with LIMIT 1 is not flattened into a
// join, so it stays a nested loop over the unique index.
const lookupStoredPG = `SELECT r.id, k.key, r.raw, r.status, r.deleted_at IS NOT NULL FROM unnest(?::text[]) AS k(key)
	CROSS JOIN LATERAL (SELECT id, raw, status, deleted_at FROM hub_records
		WHERE connection_id = ? AND stream = ? AND key = k.key LIMIT 1) r`

// upsertPage stores a page's records, noting status changes, and returns
// how many were new and changed.
// Unchanged records are marked seen only in a sweep, the one run that
// reads seen_at; other runs write nothing for them.
func (s *Service) upsertPage(ctx context.Context, tx *store.Tx, connID int64, st Stream, recs []record, seen int64, sweep bool) (created, changed int, err error) {
	if len(recs) == 0 {
		return 0, 0, nil
	}
	type stored struct {
		id      int64
		raw     string
		status  *string
		deleted bool
	}
	have := map[string]stored{}
	keys := make([]string, len(recs))
	for i, r := range recs {
		keys[i] = r.key
	}
	query, args := inList(tx.Dialect(), "SELECT id, key, raw, status, deleted_at IS NOT NULL FROM hub_records WHERE connection_id = ? AND stream = ? AND key",
		"text", []any{connID, st.Name}, keys)
	if tx.Dialect() == store.Postgres {
		query = lookupStoredPG
		args = []any{keys, connID, st.Name}
	}
	rows, err := tx.Query(ctx, query, args...)
	if err != nil {
		return 0, 0, fmt.Errorf("read stored %s: %w", st.Name, err)
	}
	for rows.Next() {
		var k string
		var sr stored
		if err := rows.Scan(&sr.id, &k, &sr.raw, &sr.status, &sr.deleted); err != nil {
			rows.Close()
			return 0, 0, fmt.Errorf("scan stored %s: %w", st.Name, err)
		}
		have[k] = sr
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, 0, fmt.Errorf("read stored %s: %w", st.Name, err)
	}
	now := s.now()
	var unchanged []int64
	var fresh []record
	var changes []any // record id, field, from, to, at; five a change
	for _, r := range recs {
		old, ok := have[r.key]
		switch {
		case !ok:
			fresh = append(fresh, r)
			have[r.key] = stored{id: -1, raw: r.raw, status: r.status} // a key twice in a page is one record
			created++
		case old.id == -1:
			// Repeated within the page: the first one stands.
		case old.raw != r.raw:
			args := append([]any{r.raw, r.status, r.createdAt, r.updatedAt, now, seen}, r.norm.args()...)
			if _, err := tx.Exec(ctx, `UPDATE hub_records SET raw = ?, status = ?, source_created_at = ?, source_updated_at = ?, synced_at = ?,
				seen_at = ?, deleted_at = NULL, amount = ?, currency = ?, amount_usd = ?, company_key = ?, company_name = ?, partnership_ref = ?,
				customer_ref = ?, transaction_ref = ?, email = ?, domain = ?, reason = ?, archived = ?, test = ? WHERE id = ?`,
				append(args, old.id)...); err != nil {
				return 0, 0, fmt.Errorf("update %s %s: %w", st.Name, r.key, err)
			}
			if deref(old.status) != deref(r.status) {
				changes = append(changes, old.id, "status", old.status, r.status, now)
			}
			if r.terms != nil {
				if was, err := parseRecord(json.RawMessage(old.raw), st); err == nil && deref(was.terms) != *r.terms {
					changes = append(changes, old.id, "terms", was.terms, r.terms, now)
				}
			}
			have[r.key] = stored{id: old.id, raw: r.raw, status: r.status}
			changed++
		default:
			if sweep || old.deleted {
				unchanged = append(unchanged, old.id) // seen, and back if it had vanished
			}
		}
	}
	if len(fresh) > 0 {
		ids, err := insertFresh(ctx, tx, connID, st.Name, fresh, now, seen, st.Status != "" || st.Name == "partnerships")
		if err != nil {
			return 0, 0, fmt.Errorf("insert %s: %w", st.Name, err)
		}
		for _, r := range fresh {
			if r.status != nil {
				changes = append(changes, ids[r.key], "status", nil, *r.status, now)
			}
			if r.terms != nil {
				changes = append(changes, ids[r.key], "terms", nil, *r.terms, now)
			}
		}
	}
	if len(changes) > 0 {
		if _, err := tx.Exec(ctx, "INSERT INTO hub_record_changes (record_id, field, from_value, to_value, at) VALUES "+
			strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?), ", len(changes)/5), ", "), changes...); err != nil {
			return 0, 0, fmt.Errorf("record %s status changes: %w", st.Name, err)
		}
	}
	if len(unchanged) > 0 {
		if err := planEachCall(ctx, tx); err != nil {
			return 0, 0, err
		}
		query, args := inList(tx.Dialect(), "UPDATE hub_records SET seen_at = ?, deleted_at = NULL WHERE id", "bigint", []any{seen}, unchanged)
		if _, err := tx.Exec(ctx, query, args...); err != nil {
			return 0, 0, fmt.Errorf("mark %s seen: %w", st.Name, err)
		}
	}
	return created, changed, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// insertFresh writes a page's new records in one statement and returns
// their ids by key: arrays unnested on PostgreSQL (one parameter a column,
// where a VALUES list costs PostgreSQL far more to parse and plan), a
// multi-row VALUES on SQLite.
//
// The ids are read back (RETURNING) only when wantIDs: for a history.
func insertFresh(ctx context.Context, tx *store.Tx, connID int64, stream string, fresh []record, now, seen int64, wantIDs bool) (map[string]int64, error) {
	const head = `INSERT INTO hub_records (connection_id, stream, synced_at, seen_at, key, raw, status, source_created_at, source_updated_at, ` + normCols + `) `
	returning := ""
	if wantIDs {
		returning = " RETURNING id, key"
	}
	run := func(query string, args ...any) (*sql.Rows, error) {
		if wantIDs {
			return tx.Query(ctx, query+returning, args...)
		}
		_, err := tx.Exec(ctx, query, args...)
		return nil, err
	}
	var rows *sql.Rows
	var err error
	if tx.Dialect() == store.Postgres {
		n := len(fresh)
		keys, raws, emails, domains := make([]string, n), make([]string, n), make([]*string, n), make([]*string, n)
		statuses, currencies, companyKeys, companyNames := make([]*string, n), make([]*string, n), make([]*string, n), make([]*string, n)
		partnerships, customers, txs, reasons := make([]*string, n), make([]*string, n), make([]*string, n), make([]*string, n)
		created, updated := make([]int64, n), make([]int64, n)
		amounts, usds := make([]*int64, n), make([]*int64, n)
		archived, test := make([]int32, n), make([]int32, n)
		for i, r := range fresh {
			keys[i], raws[i], statuses[i], created[i], updated[i] = r.key, r.raw, r.status, r.createdAt, r.updatedAt
			m := r.norm
			amounts[i], currencies[i], usds[i], companyKeys[i], companyNames[i] = m.amount, m.currency, m.amountUSD, m.companyKey, m.companyName
			partnerships[i], customers[i], txs[i], emails[i], domains[i], reasons[i] = m.partnershipRef, m.customerRef, m.txRef, m.email, m.domain, m.reason
			archived[i], test[i] = int32(store.Bool(m.archived)), int32(store.Bool(m.test))
		}
		rows, err = run(head+`SELECT ?::bigint, ?::text, ?::bigint, ?::bigint, u.* FROM unnest(?::text[], ?::text[], ?::text[], ?::bigint[],
			?::bigint[], ?::bigint[], ?::text[], ?::bigint[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[],
			?::integer[], ?::integer[]) AS u`, connID, stream, now, seen, keys, raws, statuses, created, updated, amounts,
			currencies, usds, companyKeys, companyNames, partnerships, customers, txs, emails, domains, reasons, archived, test)
	} else {
		const cols = 22
		args := make([]any, 0, cols*len(fresh))
		for _, r := range fresh {
			args = append(append(args, connID, stream, now, seen, r.key, r.raw, r.status, r.createdAt, r.updatedAt), r.norm.args()...)
		}
		row := "(" + strings.TrimSuffix(strings.Repeat("?, ", cols), ", ") + ")"
		rows, err = run(head+"VALUES "+strings.TrimSuffix(strings.Repeat(row+", ", len(fresh)), ", "), args...)
	}
	if err != nil || rows == nil {
		return nil, err
	}
	defer rows.Close()
	ids := make(map[string]int64, len(fresh))
	for rows.Next() {
		var id int64
		var k string
		if err := rows.Scan(&id, &k); err != nil {
			return nil, err
		}
		ids[k] = id
	}
	return ids, rows.Err()
}

// planEachCall makes PostgreSQL plan the rest of the transaction's
// statements with their values. The records marked seen are looked up by
// "id = ANY(?)", and the generic plan PostgreSQL keeps for it after a few
// calls is made from the table's size at that time: on a first sweep of a
// fresh table that is a sequential scan, which it keeps as the table grows.
// The setting ends with the transaction.
func planEachCall(ctx context.Context, tx *store.Tx) error {
	if tx.Dialect() != store.Postgres {
		return nil
	}
	if _, err := tx.Exec(ctx, "SET LOCAL plan_cache_mode = force_custom_plan"); err != nil {
		return fmt.Errorf("plan each call: %w", err)
	}
	return nil
}

// inList completes "... WHERE col" with a match against a list: one array
// parameter on PostgreSQL (planned once, however long the list), an IN
// list on SQLite.
func inList[T any](d store.Dialect, prefix, pgType string, args []any, list []T) (string, []any) {
	if d == store.Postgres {
		return prefix + " = ANY(?::" + pgType + "[])", append(args, list)
	}
	for _, v := range list {
		args = append(args, v)
	}
	return prefix + " IN (" + strings.TrimSuffix(strings.Repeat("?, ", len(list)), ", ") + ")", args
}
