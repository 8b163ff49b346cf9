package hub

import (
	"bytes"
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
	Name   string // also the list's path under the base URL
	Status string // the field whose changes are kept as history ("" for none)
	Vendor bool   // only a vendor's key pair can read it
}

// Streams are what a connection syncs, in order: each may refer to the
// ones before it.
var Streams = []Stream{
	{Name: "partnerships", Status: "status"},
	{Name: "groups", Vendor: true},
	{Name: "customers"},
	{Name: "transactions"},
	{Name: "rewards", Status: "reward_status"},
	{Name: "payouts", Status: "status"},
	{Name: "actions"},
	{Name: "leads", Status: "status", Vendor: true},
	{Name: "deals", Status: "stage", Vendor: true},
}

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
	now := s.now()
	if _, err := s.db.Exec(ctx, "UPDATE hub_connections SET last_sync_at = ?, updated_at = ? WHERE id = ?", now, now, c.ID); err != nil {
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
	runMin       *int64
	runCursor    *string
	runSweep     bool
	runStartedAt *int64
	lastSweepAt  int64
}

func (s *Service) loadState(ctx context.Context, q store.Querier, connID int64, stream string) (state, error) {
	var st state
	err := q.QueryRow(ctx, `SELECT high_water, run_min, run_cursor, run_sweep, run_started_at, last_sweep_at FROM hub_streams
		WHERE connection_id = ? AND stream = ?`, connID, stream).
		Scan(&st.highWater, &st.runMin, &st.runCursor, &st.runSweep, &st.runStartedAt, &st.lastSweepAt)
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
	return state{}, nil
}

// syncStream runs (or resumes) one stream's run. A run reads every record
// created since its min_created, oldest first, one page per database
// transaction with the checkpoint; a full sweep reads from the start and
// then soft-deletes what it did not see.
func (s *Service) syncStream(ctx context.Context, c Connection, cl *Client, st Stream, progress Progress) (StreamResult, error) {
	res := StreamResult{Stream: st.Name}
	var requests int
	cl.request = func() { requests++ }
	defer func() { cl.request = nil }()
	state, err := s.loadState(ctx, s.db, c.ID, st.Name)
	if err != nil {
		return res, err
	}
	if state.runMin == nil {
		// A new run: from the start on the first sync and on a sweep, else
		// from the newest record seen less the look-back.
		now := s.now()
		sweep := state.highWater == 0 || now-state.lastSweepAt >= s.cfg.SweepEvery.Milliseconds()
		min := int64(0)
		if !sweep {
			min = max(0, state.highWater-s.cfg.Lookback.Milliseconds())
		}
		if _, err := s.db.Exec(ctx, `UPDATE hub_streams SET run_min = ?, run_cursor = NULL, run_sweep = ?, run_started_at = ?
			WHERE connection_id = ? AND stream = ?`, min, store.Bool(sweep), now, c.ID, st.Name); err != nil {
			return res, fmt.Errorf("start %s run: %w", st.Name, err)
		}
		state.runMin, state.runCursor, state.runSweep, state.runStartedAt = &min, nil, sweep, &now
	}
	res.Sweep = state.runSweep
	for {
		q := url.Values{"limit": {strconv.Itoa(pageSize)}, "order_by": {"created_at"}, "min_created": {strconv.FormatInt(*state.runMin, 10)}}
		if state.runCursor != nil {
			q.Set("starting_after", *state.runCursor)
		}
		if st.Name == "rewards" || st.Name == "partnerships" || st.Name == "customers" || st.Name == "transactions" {
			q.Set("include_archived", "true")
		}
		page, err := cl.List(ctx, "/"+st.Name, q)
		res.Requests = requests
		if err != nil {
			return res, err
		}
		var last string
		err = s.db.Tx(ctx, func(tx *store.Tx) error {
			created, changed, newest, lastKey, err := s.upsertPage(ctx, tx, c.ID, st, page.Items, *state.runStartedAt)
			if err != nil {
				return err
			}
			res.Created += created
			res.Changed += changed
			last = lastKey
			cursor := any(nil)
			if last != "" {
				cursor = last
			}
			// Each page renews the run's hold on its connection.
			if _, err := tx.Exec(ctx, "UPDATE hub_connections SET lease_until = ? WHERE id = ?", s.now()+leaseMillis, c.ID); err != nil {
				return fmt.Errorf("renew lease: %w", err)
			}
			_, err = tx.Exec(ctx, `UPDATE hub_streams SET run_cursor = COALESCE(?, run_cursor), high_water = CASE WHEN high_water > ? THEN high_water ELSE ? END
				WHERE connection_id = ? AND stream = ?`, cursor, newest, newest, c.ID, st.Name)
			return err
		})
		if err != nil {
			return res, fmt.Errorf("store a page of %s: %w", st.Name, err)
		}
		res.Pages++
		res.Records += len(page.Items)
		if progress != nil {
			progress(st.Name, res.Pages, res.Records)
		}
		if last != "" {
			state.runCursor = &last
		}
		// has_more is the only stop signal; a page of nothing with has_more
		// would loop forever, so it ends the run too.
		if !page.HasMore || len(page.Items) == 0 {
			break
		}
	}
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
		}
		sweepAt := any(nil)
		if st.runSweep {
			sweepAt = *st.runStartedAt
		}
		_, err := tx.Exec(ctx, `UPDATE hub_streams SET run_min = NULL, run_cursor = NULL, run_sweep = 0, run_started_at = NULL,
			last_sweep_at = COALESCE(?, last_sweep_at), last_success_at = ? WHERE connection_id = ? AND stream = ?`, sweepAt, now, connID, stream)
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

func parseRecord(item json.RawMessage, st Stream) (record, error) {
	var m map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(item))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return record{}, fmt.Errorf("an item is not a JSON object: %w", err)
	}
	r := record{raw: string(item)}
	if err := json.Unmarshal(m["key"], &r.key); err != nil || r.key == "" {
		return record{}, fmt.Errorf("an item has no key: %.100s", item)
	}
	r.createdAt, r.updatedAt = millis(m["created_at"]), millis(m["updated_at"])
	if r.updatedAt == 0 {
		r.updatedAt = r.createdAt
	}
	if st.Status != "" {
		r.status = text(m[st.Status])
	}
	n := &r.norm
	n.amount, n.amountUSD, n.currency = integer(m["amount"]), integer(m["amount_usd"]), text(m["currency"])
	n.companyKey, n.companyName = text(field(m, "company", "key")), text(field(m, "company", "name"))
	n.partnershipRef = first(text(m["partnership_key"]), text(field(m, "partnership", "key")))
	n.customerRef = first(text(field(m, "customer", "key")), text(m["customer_key"]))
	n.txRef = first(text(field(m, "transaction", "key")), text(m["transaction_key"]))
	n.reason = first(text(m["decline_reason"]), text(m["hold_reason"]), text(m["lost_reason"]))
	n.archived = flag(m["archived"]) || flag(m["is_archived"])
	n.test = flag(m["test"])
	switch st.Name {
	case "partnerships":
		n.partnershipRef = &r.key
	case "customers":
		n.customerRef = &r.key
		if e := text(m["email"]); e != nil {
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

// field reads obj.name.sub, for a nested reference.
func field(m map[string]json.RawMessage, name, sub string) json.RawMessage {
	var inner map[string]json.RawMessage
	if json.Unmarshal(m[name], &inner) != nil {
		return nil
	}
	return inner[sub]
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

// upsertPage stores a page's records, noting status changes, and returns
// how many were new and changed, the newest created_at and the last key.
func (s *Service) upsertPage(ctx context.Context, tx *store.Tx, connID int64, st Stream, items []json.RawMessage, seen int64) (created, changed int, newest int64, last string, err error) {
	recs := make([]record, 0, len(items))
	for _, it := range items {
		r, err := parseRecord(it, st)
		if err != nil {
			return 0, 0, 0, "", fmt.Errorf("%s: %w", st.Name, err)
		}
		recs = append(recs, r)
		newest = max(newest, r.createdAt)
		last = r.key
	}
	if len(recs) == 0 {
		return 0, 0, 0, "", nil
	}
	type stored struct {
		id     int64
		raw    string
		status *string
	}
	have := map[string]stored{}
	args := []any{connID, st.Name}
	for _, r := range recs {
		args = append(args, r.key)
	}
	rows, err := tx.Query(ctx, "SELECT id, key, raw, status FROM hub_records WHERE connection_id = ? AND stream = ? AND key IN ("+
		strings.TrimSuffix(strings.Repeat("?, ", len(recs)), ", ")+")", args...)
	if err != nil {
		return 0, 0, 0, "", fmt.Errorf("read stored %s: %w", st.Name, err)
	}
	for rows.Next() {
		var k string
		var sr stored
		if err := rows.Scan(&sr.id, &k, &sr.raw, &sr.status); err != nil {
			rows.Close()
			return 0, 0, 0, "", fmt.Errorf("scan stored %s: %w", st.Name, err)
		}
		have[k] = sr
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, 0, 0, "", fmt.Errorf("read stored %s: %w", st.Name, err)
	}
	now := s.now()
	var unchanged []any
	for _, r := range recs {
		old, ok := have[r.key]
		switch {
		case !ok:
			var id int64
			args := append([]any{connID, st.Name, r.key, r.raw, r.status, r.createdAt, r.updatedAt, now, seen}, r.norm.args()...)
			if err := tx.QueryRow(ctx, `INSERT INTO hub_records (connection_id, stream, key, raw, status, source_created_at, source_updated_at,
				synced_at, seen_at, `+normCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
				args...).Scan(&id); err != nil {
				return 0, 0, 0, "", fmt.Errorf("insert %s %s: %w", st.Name, r.key, err)
			}
			if r.status != nil {
				if _, err := tx.Exec(ctx, "INSERT INTO hub_record_changes (record_id, from_value, to_value, at) VALUES (?, NULL, ?, ?)",
					id, *r.status, now); err != nil {
					return 0, 0, 0, "", fmt.Errorf("record %s status: %w", st.Name, err)
				}
			}
			have[r.key] = stored{id: id, raw: r.raw, status: r.status} // a key twice in a page is one record
			created++
		case old.raw != r.raw:
			args := append([]any{r.raw, r.status, r.createdAt, r.updatedAt, now, seen}, r.norm.args()...)
			if _, err := tx.Exec(ctx, `UPDATE hub_records SET raw = ?, status = ?, source_created_at = ?, source_updated_at = ?, synced_at = ?,
				seen_at = ?, deleted_at = NULL, amount = ?, currency = ?, amount_usd = ?, company_key = ?, company_name = ?, partnership_ref = ?,
				customer_ref = ?, transaction_ref = ?, email = ?, domain = ?, reason = ?, archived = ?, test = ? WHERE id = ?`,
				append(args, old.id)...); err != nil {
				return 0, 0, 0, "", fmt.Errorf("update %s %s: %w", st.Name, r.key, err)
			}
			if deref(old.status) != deref(r.status) {
				if _, err := tx.Exec(ctx, "INSERT INTO hub_record_changes (record_id, from_value, to_value, at) VALUES (?, ?, ?, ?)",
					old.id, old.status, r.status, now); err != nil {
					return 0, 0, 0, "", fmt.Errorf("record %s status: %w", st.Name, err)
				}
			}
			have[r.key] = stored{id: old.id, raw: r.raw, status: r.status}
			changed++
		default:
			unchanged = append(unchanged, old.id)
		}
	}
	if len(unchanged) > 0 {
		if _, err := tx.Exec(ctx, "UPDATE hub_records SET seen_at = ?, deleted_at = NULL WHERE id IN ("+
			strings.TrimSuffix(strings.Repeat("?, ", len(unchanged)), ", ")+")", append([]any{seen}, unchanged...)...); err != nil {
			return 0, 0, 0, "", fmt.Errorf("mark %s seen: %w", st.Name, err)
		}
	}
	return created, changed, newest, last, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
