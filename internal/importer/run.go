package importer

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/partnerd/partnerd/internal/clock"
	"github.com/partnerd/partnerd/internal/errs"
	"github.com/partnerd/partnerd/internal/ledger"
	"github.com/partnerd/partnerd/internal/pipeline"
	"github.com/partnerd/partnerd/internal/program"
	"github.com/partnerd/partnerd/internal/store"
)

// Hooks are what runs for a customer an import creates: Signup earns its
// sign-up rewards (and wakes billing events that waited for it);
// NoRewards does only the latter, for --no-rewards.
type Hooks struct {
	Signup    program.CustomerHook
	NoRewards program.CustomerHook
}

// Service imports and exports one company's objects.
type Service struct {
	db    *store.DB
	clock clock.Clock
	prog  *program.Service
	led   *ledger.Service
	pipe  *pipeline.Service
	hooks Hooks
}

// New returns an importer over the program, ledger and pipeline services.
func New(db *store.DB, clk clock.Clock, prog *program.Service, led *ledger.Service, pipe *pipeline.Service, hooks Hooks) *Service {
	return &Service{db: db, clock: clk, prog: prog, led: led, pipe: pipe, hooks: hooks}
}

func (s *Service) now() int64 { return clock.Millis(s.clock) }

// Options choose how an import writes.
type Options struct {
	Type string
	// DryRun validates every row against the database as a real import
	// would, and writes nothing.
	DryRun bool
	// Atomic imports every row or, if any row is rejected, none.
	Atomic bool
	// NoRewards imports transactions and customers as history: they earn
	// no rewards.
	NoRewards bool
}

// batchSize is how many rows share one database transaction (and one
// checkpoint) in a normal import.
const batchSize = 1000

// leaseFor is how long an import's runner holds it between checkpoints
// before another node may take it over.
const leaseFor = 2 * time.Minute

// Progress is where an import has got.
type Progress struct {
	Records   int64 // data rows read (the header excluded)
	Created   int64
	Updated   int64
	Unchanged int64
	Rejected  int64
	BytesRead int64
	Size      int64 // the file's size, 0 when unknown
	Started   time.Time
}

// errRejected ends a single-transaction run that must roll back.
var errRejected = errors.New("rows were rejected")

// run reads src and writes its rows for the import imp. Normal imports
// commit every batchSize rows together with their report rows and a
// checkpoint (the number of records done), so a rerun of the same import
// skips what was committed; a dry run or an atomic import runs in one
// transaction, rolled back at the end for a dry run or when a row was
// rejected.
func (s *Service) run(ctx context.Context, imp *Import, src io.Reader, onProgress func(Progress)) error {
	k, err := lookupKind(imp.Type)
	if err != nil {
		return err
	}
	rd, err := newReader(src)
	if err != nil {
		return errs.E(errs.Invalid, "%s", err.Error())
	}
	cols, err := mapHeader(rd.header, k.fields)
	if err != nil {
		return errs.E(errs.Invalid, "%s", err.Error())
	}
	if err := s.setWarnings(ctx, imp, cols.warnings); err != nil {
		return err
	}
	p := program.Principal{CompanyID: imp.companyID, Test: imp.Test}
	opts := Options{Type: imp.Type, DryRun: imp.DryRun, Atomic: imp.Atomic, NoRewards: imp.NoRewards}
	prog := Progress{Records: imp.Records, Created: imp.Created, Updated: imp.Updated, Unchanged: imp.Unchanged,
		Rejected: imp.Rejected, Size: imp.Size, Started: time.Now()}
	cache := ledger.NewCustomerCache()
	skip := imp.Records // records committed by an earlier run of this import
	var seen int64
	// read fills a batch; parse errors go straight to the report.
	read := func(rejects *[]RowError) ([]*item, error) {
		var items []*item
		for len(items) < batchSize {
			rec, err := rd.next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, err
			}
			seen++
			if seen <= skip {
				continue
			}
			if rec.err != nil {
				*rejects = append(*rejects, *rec.err)
				continue
			}
			r := &row{line: rec.line, fields: rec.fields, cols: cols}
			in := k.parse(r)
			items = append(items, &item{row: r, in: in})
		}
		return items, nil
	}
	writeBatch := func(ctx context.Context, tx *store.Tx, items []*item) ([]RowError, error) {
		b := &batch{s: s, tx: tx, p: p, opts: opts, cache: cache}
		var rejects []RowError
		for _, it := range items {
			if len(it.row.errs) == 0 {
				b.items = append(b.items, it)
			}
		}
		if len(b.items) > 0 {
			if err := k.write(ctx, b); err != nil {
				return nil, err
			}
		}
		for _, it := range items {
			rejects = append(rejects, it.row.errs...)
			switch {
			case len(it.row.errs) > 0:
			case it.outcome == program.Created:
				prog.Created++
			case it.outcome == program.Updated:
				prog.Updated++
			case it.outcome == program.Unchanged:
				prog.Unchanged++
			}
		}
		return rejects, nil
	}
	countRejects := func(rejects []RowError) {
		lines := map[int64]bool{}
		for _, e := range rejects {
			lines[e.Line] = true
		}
		prog.Rejected += int64(len(lines))
	}
	// step reads the next batch and writes it in tx; done is set once the
	// file has no more rows.
	step := func(ctx context.Context, tx *store.Tx) (rejects []RowError, done bool, err error) {
		items, err := read(&rejects)
		if err != nil {
			return nil, false, err
		}
		if len(items) == 0 && len(rejects) == 0 {
			return nil, true, nil
		}
		more, err := writeBatch(ctx, tx, items)
		if err != nil {
			return nil, false, err
		}
		rejects = append(rejects, more...)
		countRejects(rejects)
		prog.Records, prog.BytesRead = seen, rd.bytesRead()
		if onProgress != nil {
			onProgress(prog)
		}
		return rejects, false, nil
	}

	if !opts.DryRun && !opts.Atomic {
		for done := false; !done; {
			err := s.db.Tx(ctx, func(tx *store.Tx) error {
				var rejects []RowError
				var err error
				if rejects, done, err = step(ctx, tx); err != nil || done {
					return err
				}
				return s.checkpoint(ctx, tx, imp, prog, rejects)
			})
			if err != nil {
				return err
			}
		}
		return nil
	}

	// One transaction for the whole file. Report rows cannot be written
	// beside it (on SQLite it holds the only write lock), so they wait in
	// a temporary file and are written once it has ended.
	spool, err := newSpool()
	if err != nil {
		return err
	}
	defer spool.close()
	seen, prog.Records = 0, 0
	prog.Created, prog.Updated, prog.Unchanged, prog.Rejected = 0, 0, 0, 0
	skip = 0
	cache.Reset()
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		for {
			rejects, done, err := step(ctx, tx)
			if err != nil {
				return err
			}
			if done {
				break
			}
			if err := spool.add(rejects); err != nil {
				return err
			}
		}
		if opts.DryRun || prog.Rejected > 0 {
			return errRejected
		}
		return nil
	})
	if err != nil && !errors.Is(err, errRejected) {
		return err
	}
	// Whatever rolled back was never written: say what would have been.
	imp.rolledBack = errors.Is(err, errRejected)
	return s.db.Tx(ctx, func(tx *store.Tx) error {
		if err := spool.replay(func(es []RowError) error { return s.insertErrors(ctx, tx, imp.id, es) }); err != nil {
			return err
		}
		return s.checkpoint(ctx, tx, imp, prog, nil)
	})
}

// spool keeps report rows in a temporary file while a single-transaction
// import runs, so memory stays flat however many rows are rejected.
type spool struct {
	f   *os.File
	w   *bufio.Writer
	enc *json.Encoder
}

func newSpool() (*spool, error) {
	f, err := os.CreateTemp("", "partnerd-import-report-*")
	if err != nil {
		return nil, fmt.Errorf("create the report spool: %w", err)
	}
	w := bufio.NewWriter(f)
	return &spool{f: f, w: w, enc: json.NewEncoder(w)}, nil
}

func (s *spool) add(es []RowError) error {
	for _, e := range es {
		if err := s.enc.Encode(e); err != nil {
			return fmt.Errorf("spool the report: %w", err)
		}
	}
	return nil
}

func (s *spool) replay(fn func([]RowError) error) error {
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("spool the report: %w", err)
	}
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("read the report spool: %w", err)
	}
	dec := json.NewDecoder(bufio.NewReader(s.f))
	var buf []RowError
	for {
		var e RowError
		err := dec.Decode(&e)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read the report spool: %w", err)
		}
		if buf = append(buf, e); len(buf) == 500 {
			if err := fn(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	if len(buf) > 0 {
		return fn(buf)
	}
	return nil
}

func (s *spool) close() {
	s.f.Close()
	os.Remove(s.f.Name())
}
