package importer

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/partnerd/partnerd/internal/errs"
	"github.com/partnerd/partnerd/internal/program"
	"github.com/partnerd/partnerd/internal/secret"
	"github.com/partnerd/partnerd/internal/store"
)

// Import statuses.
const (
	StatusQueued   = "queued"
	StatusRunning  = "running"
	StatusDone     = "done"
	StatusRejected = "rejected" // atomic: rows were rejected, so nothing was written
	StatusFailed   = "failed"
	// StatusInterrupted is shown for a CLI import whose process stopped
	// before it finished (kill -9, a crash): run the same file again.
	StatusInterrupted = "interrupted"
)

// Sources of an import.
const (
	SourceCLI = "cli"
	SourceAPI = "api"
)

// Import is one run of a file into a company, with its progress.
type Import struct {
	Key        string
	Type       string
	FileName   string
	Size       int64
	DryRun     bool
	Atomic     bool
	NoRewards  bool
	Test       bool
	Source     string
	Status     string
	Error      string
	Warnings   []string
	Records    int64
	BytesRead  int64
	Created    int64
	Updated    int64
	Unchanged  int64
	Rejected   int64
	CreatedAt  int64
	UpdatedAt  int64
	FinishedAt *int64

	id         int64
	companyID  int64
	leaseUntil int64
	rolledBack bool
}

var importColList = []string{"id", "key", "company_id", "type", "file_name", "size", "dry_run", "atomic", "no_rewards", "test",
	"source", "status", "error", "warnings", "records", "bytes_read", "created", "updated", "unchanged", "rejected", "lease_until",
	"created_at", "updated_at", "finished_at"}

var (
	importCols  = strings.Join(importColList, ", ")
	importColsI = "i." + strings.Join(importColList, ", i.")
)

func scanImport(sc store.Scanner) (Import, error) {
	var im Import
	var errText *string
	var warnings string
	err := sc.Scan(&im.id, &im.Key, &im.companyID, &im.Type, &im.FileName, &im.Size, &im.DryRun, &im.Atomic, &im.NoRewards, &im.Test,
		&im.Source, &im.Status, &errText, &warnings, &im.Records, &im.BytesRead, &im.Created, &im.Updated, &im.Unchanged, &im.Rejected,
		&im.leaseUntil, &im.CreatedAt, &im.UpdatedAt, &im.FinishedAt)
	if err != nil {
		return im, fmt.Errorf("scan import: %w", err)
	}
	if errText != nil {
		im.Error = *errText
	}
	if err := json.Unmarshal([]byte(warnings), &im.Warnings); err != nil {
		return im, fmt.Errorf("decode import warnings: %w", err)
	}
	return im, nil
}

// shown is the status a caller sees: a CLI import left running by a
// process that is gone reads as interrupted.
func (im Import) shown(now int64) Import {
	if im.Status == StatusRunning && im.Source == SourceCLI && im.leaseUntil < now {
		im.Status = StatusInterrupted
	}
	return im
}

func (s *Service) create(ctx context.Context, q store.Querier, p program.Principal, opts Options, source, status, name string, size int64) (*Import, error) {
	if _, err := lookupKind(opts.Type); err != nil {
		return nil, err
	}
	if p.IsPartner() {
		return nil, errs.E(errs.Forbidden, "Forbidden: imports need the company's API keys")
	}
	now := s.now()
	im := &Import{Key: secret.OrderedKey("imp", time.UnixMilli(now)), Type: opts.Type, FileName: limit(name, 255), Size: size,
		DryRun: opts.DryRun, Atomic: opts.Atomic, NoRewards: opts.NoRewards, Test: p.Test, Source: source, Status: status,
		Warnings: []string{}, CreatedAt: now, UpdatedAt: now, companyID: p.CompanyID}
	lease := int64(0)
	if status == StatusRunning {
		lease = now + leaseFor.Milliseconds()
	}
	err := q.QueryRow(ctx, `INSERT INTO imports (key, company_id, type, file_name, size, dry_run, atomic, no_rewards, test, source, status,
		lease_until, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		im.Key, p.CompanyID, im.Type, im.FileName, size, store.Bool(im.DryRun), store.Bool(im.Atomic), store.Bool(im.NoRewards),
		store.Bool(im.Test), source, status, lease, now, now).Scan(&im.id)
	if err != nil {
		return nil, fmt.Errorf("create import: %w", err)
	}
	return im, nil
}

func limit(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return clip(s[:n])
}

func (s *Service) setWarnings(ctx context.Context, im *Import, warnings []string) error {
	if len(warnings) == 0 {
		return nil
	}
	im.Warnings = warnings
	b, _ := json.Marshal(warnings)
	if _, err := s.db.Exec(ctx, "UPDATE imports SET warnings = ?, updated_at = ? WHERE id = ?", string(b), s.now(), im.id); err != nil {
		return fmt.Errorf("record import warnings: %w", err)
	}
	return nil
}

// checkpoint records progress (and the rows just rejected) in tx, the
// transaction that wrote them, and extends the runner's lease.
func (s *Service) checkpoint(ctx context.Context, tx *store.Tx, im *Import, p Progress, rejects []RowError) error {
	if err := s.insertErrors(ctx, tx, im.id, rejects); err != nil {
		return err
	}
	now := s.now()
	if _, err := tx.Exec(ctx, `UPDATE imports SET records = ?, bytes_read = ?, created = ?, updated = ?, unchanged = ?, rejected = ?,
		lease_until = ?, updated_at = ? WHERE id = ?`, p.Records, p.BytesRead, p.Created, p.Updated, p.Unchanged, p.Rejected,
		now+leaseFor.Milliseconds(), now, im.id); err != nil {
		return fmt.Errorf("record import progress: %w", err)
	}
	im.Records, im.BytesRead, im.Created, im.Updated, im.Unchanged, im.Rejected = p.Records, p.BytesRead, p.Created, p.Updated, p.Unchanged, p.Rejected
	return nil
}

func (s *Service) insertErrors(ctx context.Context, q store.Querier, importID int64, es []RowError) error {
	for len(es) > 0 {
		n := min(len(es), 200)
		args := make([]any, 0, 5*n)
		for _, e := range es[:n] {
			args = append(args, importID, e.Line, e.Column, e.Reason, e.Value)
		}
		if _, err := q.Exec(ctx, "INSERT INTO import_errors (import_id, line, col, reason, value) VALUES "+
			strings.Repeat("(?, ?, ?, ?, ?), ", n-1)+"(?, ?, ?, ?, ?)", args...); err != nil {
			return fmt.Errorf("record rejected rows: %w", err)
		}
		es = es[n:]
	}
	return nil
}

// finish records how an import ended. It runs even when ctx was cancelled
// (an interrupted CLI import still says so).
func (s *Service) finish(ctx context.Context, im *Import, runErr error, log *slog.Logger) error {
	ctx = context.WithoutCancel(ctx)
	now := s.now()
	status := StatusDone
	var msg any
	switch {
	case runErr != nil:
		status = StatusFailed
		text := errs.MessageOf(runErr)
		if errs.CodeOf(runErr) == errs.Internal {
			if errors.Is(runErr, context.Canceled) {
				text = "interrupted: run the same file again; rows already imported are found, not duplicated"
			} else {
				text = "internal error: " + runErr.Error()
			}
			if log != nil {
				log.Error("import failed", slog.String("import", im.Key), slog.Any("err", runErr))
			}
		}
		msg = text
		im.Error = text
	case im.Atomic && !im.DryRun && im.rolledBack:
		status = StatusRejected
		msg = "rows were rejected, so nothing was imported (atomic)"
		im.Error = msg.(string)
	}
	im.Status, im.FinishedAt, im.UpdatedAt = status, &now, now
	if _, err := s.db.Exec(ctx, "UPDATE imports SET status = ?, error = ?, lease_until = 0, finished_at = ?, updated_at = ? WHERE id = ?",
		status, msg, now, now, im.id); err != nil {
		return fmt.Errorf("record the end of import %s: %w", im.Key, err)
	}
	if _, err := s.db.Exec(ctx, "DELETE FROM import_chunks WHERE import_id = ?", im.id); err != nil {
		return fmt.Errorf("drop the file of import %s: %w", im.Key, err)
	}
	return nil
}

// Import runs a file from the CLI: it is recorded like an API import (so
// it shows in the list and has a report) and runs in this process.
func (s *Service) Import(ctx context.Context, p program.Principal, opts Options, name string, size int64, src io.Reader,
	onProgress func(Progress)) (Import, error) {
	var im *Import
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		var err error
		im, err = s.create(ctx, tx, p, opts, SourceCLI, StatusRunning, name, size)
		return err
	})
	if err != nil {
		return Import{}, err
	}
	runErr := s.run(ctx, im, src, onProgress)
	if err := s.finish(ctx, im, runErr, nil); err != nil {
		return *im, err
	}
	return *im, runErr
}

// chunkSize is how much of an uploaded file one import_chunks row holds.
const chunkSize = 1 << 20

// Submit stores an uploaded file with a queued import, in one
// transaction: once it returns, the file is durable and any node's worker
// will run it. The file is read from src, which should be local (a spooled
// upload) so the transaction is short.
func (s *Service) Submit(ctx context.Context, p program.Principal, opts Options, name string, src io.Reader) (Import, error) {
	var out *Import
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		im, err := s.create(ctx, tx, p, opts, SourceAPI, StatusQueued, name, 0)
		if err != nil {
			return err
		}
		buf := make([]byte, chunkSize)
		var size int64
		for seq := 0; ; seq++ {
			n, err := io.ReadFull(src, buf)
			if n > 0 {
				if _, err := tx.Exec(ctx, "INSERT INTO import_chunks (import_id, seq, data) VALUES (?, ?, ?)", im.id, seq, buf[:n]); err != nil {
					return fmt.Errorf("store the uploaded file: %w", err)
				}
				size += int64(n)
			}
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				break
			}
			if err != nil {
				return fmt.Errorf("read the uploaded file: %w", err)
			}
		}
		if size == 0 {
			return errs.E(errs.Invalid, "'file' is empty: it needs a header row naming its columns")
		}
		im.Size = size
		if _, err := tx.Exec(ctx, "UPDATE imports SET size = ? WHERE id = ?", size, im.id); err != nil {
			return fmt.Errorf("create import: %w", err)
		}
		out = im
		return nil
	})
	if err != nil {
		return Import{}, err
	}
	return *out, nil
}

// chunkReader reads an uploaded file back from its chunks, one at a time.
type chunkReader struct {
	ctx context.Context
	db  *store.DB
	id  int64
	seq int
	buf *bytes.Reader
}

func (c *chunkReader) Read(p []byte) (int, error) {
	for c.buf == nil || c.buf.Len() == 0 {
		var data []byte
		err := c.db.QueryRow(c.ctx, "SELECT data FROM import_chunks WHERE import_id = ? AND seq = ?", c.id, c.seq).Scan(&data)
		if errors.Is(err, sql.ErrNoRows) {
			return 0, io.EOF
		}
		if err != nil {
			return 0, fmt.Errorf("read the uploaded file: %w", err)
		}
		c.seq++
		c.buf = bytes.NewReader(data)
	}
	return c.buf.Read(p)
}

// claim takes a queued API import, or one whose runner's lease ran out, so
// that exactly one node runs it.
func (s *Service) claim(ctx context.Context) (*Import, error) {
	now := s.now()
	row := s.db.QueryRow(ctx, "SELECT "+importCols+` FROM imports WHERE source = ? AND status IN (?, ?) AND lease_until < ?
		ORDER BY id LIMIT 1`, SourceAPI, StatusQueued, StatusRunning, now)
	im, err := scanImport(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	res, err := s.db.Exec(ctx, `UPDATE imports SET status = ?, lease_until = ?, attempts = attempts + 1, updated_at = ?
		WHERE id = ? AND lease_until = ? AND status IN (?, ?)`, StatusRunning, now+leaseFor.Milliseconds(), now, im.id, im.leaseUntil,
		StatusQueued, StatusRunning)
	if err != nil {
		return nil, fmt.Errorf("claim import: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return nil, err // another node took it first
	}
	im.Status = StatusRunning
	return &im, nil
}

// RunOnce runs the next waiting API import, if any, and says whether it
// found one.
func (s *Service) RunOnce(ctx context.Context, log *slog.Logger) (bool, error) {
	im, err := s.claim(ctx)
	if err != nil || im == nil {
		return false, err
	}
	if im.DryRun || im.Atomic {
		// Nothing of an earlier attempt was kept: start over.
		if err := s.restart(ctx, im); err != nil {
			return true, err
		}
	}
	// The lease is renewed with each checkpoint; a single-transaction run
	// has none, so a heartbeat keeps it (on PostgreSQL, where other nodes
	// could take it over; SQLite has one node).
	hbCtx, stop := context.WithCancel(ctx)
	defer stop()
	go s.heartbeat(hbCtx, im.id)
	runErr := s.run(ctx, im, &chunkReader{ctx: ctx, db: s.db, id: im.id}, nil)
	if ctx.Err() != nil {
		return true, ctx.Err() // shutting down: another run resumes it from its checkpoint
	}
	return true, s.finish(ctx, im, runErr, log)
}

func (s *Service) restart(ctx context.Context, im *Import) error {
	return s.db.Tx(ctx, func(tx *store.Tx) error {
		if _, err := tx.Exec(ctx, "DELETE FROM import_errors WHERE import_id = ?", im.id); err != nil {
			return fmt.Errorf("restart import: %w", err)
		}
		im.Records, im.Created, im.Updated, im.Unchanged, im.Rejected, im.BytesRead = 0, 0, 0, 0, 0, 0
		_, err := tx.Exec(ctx, `UPDATE imports SET records = 0, bytes_read = 0, created = 0, updated = 0, unchanged = 0, rejected = 0
			WHERE id = ?`, im.id)
		return err
	})
}

func (s *Service) heartbeat(ctx context.Context, id int64) {
	if s.db.Dialect() != store.Postgres {
		return
	}
	t := time.NewTicker(leaseFor / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.db.Exec(ctx, "UPDATE imports SET lease_until = ? WHERE id = ? AND status = ?", s.now()+leaseFor.Milliseconds(), id, StatusRunning)
		}
	}
}

// Run processes API imports until ctx ends, checking every interval.
func (s *Service) Run(ctx context.Context, log *slog.Logger, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		for {
			found, err := s.RunOnce(ctx, log)
			if err != nil && ctx.Err() == nil {
				log.Error("run import", slog.Any("err", err))
			}
			if !found || err != nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Get returns an import of the principal's company.
func (s *Service) Get(ctx context.Context, p program.Principal, key string) (Import, error) {
	if p.IsPartner() {
		return Import{}, errs.E(errs.Forbidden, "Forbidden: imports need the company's API keys")
	}
	im, err := store.One(ctx, s.db, "import", scanImport, "SELECT "+importCols+" FROM imports WHERE company_id = ? AND key = ?", p.CompanyID, key)
	return im.shown(s.now()), err
}

// List lists the company's imports, newest first.
func (s *Service) List(ctx context.Context, p program.Principal, page store.Page) ([]Import, store.Result, error) {
	if p.IsPartner() {
		return nil, store.Result{}, errs.E(errs.Forbidden, "Forbidden: imports need the company's API keys")
	}
	spec := p.List(importColsI, "imports i", "i", "")
	page.Apply(&spec, "i")
	list, res, err := store.List(ctx, s.db, spec, scanImport)
	now := s.now()
	for i := range list {
		list[i] = list[i].shown(now)
	}
	return list, res, err
}

// Report calls fn for each rejected row of an import, in file order.
func (s *Service) Report(ctx context.Context, p program.Principal, key string, fn func(RowError) error) error {
	im, err := s.Get(ctx, p, key)
	if err != nil {
		return err
	}
	rows, err := s.db.Query(ctx, "SELECT line, col, reason, value FROM import_errors WHERE import_id = ? ORDER BY line", im.id)
	if err != nil {
		return fmt.Errorf("read import report: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e RowError
		if err := rows.Scan(&e.Line, &e.Column, &e.Reason, &e.Value); err != nil {
			return fmt.Errorf("read import report: %w", err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return rows.Err()
}

// WriteReport writes every rejected row of an import to w as CSV (with a
// header row) or as a JSON array, calling each (when set) for every row as
// it goes.
func (s *Service) WriteReport(ctx context.Context, p program.Principal, key, format string, w io.Writer, each func(RowError)) error {
	if format != "csv" && format != "json" {
		return errs.E(errs.Invalid, "'format' must be csv or json: %q", format)
	}
	bw := bufio.NewWriter(w)
	var cw *csv.Writer
	if format == "csv" {
		cw = csv.NewWriter(bw)
		if err := cw.Write([]string{"line", "column", "reason", "value"}); err != nil {
			return err
		}
	} else {
		bw.WriteByte('[')
	}
	n := 0
	err := s.Report(ctx, p, key, func(e RowError) error {
		if each != nil {
			each(e)
		}
		if cw != nil {
			return cw.Write([]string{strconv.FormatInt(e.Line, 10), e.Column, e.Reason, e.Value})
		}
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		if n++; n > 1 {
			bw.WriteByte(',')
		}
		_, err = bw.Write(b)
		return err
	})
	if err != nil {
		return err
	}
	if cw != nil {
		if cw.Flush(); cw.Error() != nil {
			return cw.Error()
		}
	} else {
		bw.WriteString("]\n")
	}
	return bw.Flush()
}
