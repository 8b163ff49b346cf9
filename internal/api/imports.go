package api

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/partnerd/partnerd/internal/errs"
	"github.com/partnerd/partnerd/internal/importer"
)

// UseImporter sets the importer.
func (s *Server) UseImporter(i *importer.Service) { s.importer = i }

// maxUpload bounds an uploaded import file.
const maxUpload = 1 << 30

type importJSON struct {
	Key        string   `json:"key"`
	Type       string   `json:"type"`
	FileName   string   `json:"file_name"`
	Size       int64    `json:"size"`
	DryRun     bool     `json:"dry_run"`
	Atomic     bool     `json:"atomic"`
	NoRewards  bool     `json:"no_rewards"`
	Test       bool     `json:"test"`
	Source     string   `json:"source"`
	Status     string   `json:"status"`
	Error      *string  `json:"error"`
	Warnings   []string `json:"warnings"`
	Rows       int64    `json:"rows"`
	BytesRead  int64    `json:"bytes_read"`
	Created    int64    `json:"created"`
	Updated    int64    `json:"updated"`
	Unchanged  int64    `json:"unchanged"`
	Rejected   int64    `json:"rejected"`
	CreatedAt  int64    `json:"created_at"`
	UpdatedAt  int64    `json:"updated_at"`
	FinishedAt *int64   `json:"finished_at"`
	// Errors are the first rejected rows; the whole report is at
	// /api/v2/imports/{key}/report.
	Errors []importer.RowError `json:"errors,omitempty"`
}

func renderImport(im importer.Import) importJSON {
	out := importJSON{Key: im.Key, Type: im.Type, FileName: im.FileName, Size: im.Size, DryRun: im.DryRun, Atomic: im.Atomic,
		NoRewards: im.NoRewards, Test: im.Test, Source: im.Source, Status: im.Status, Warnings: im.Warnings, Rows: im.Records,
		BytesRead: im.BytesRead, Created: im.Created, Updated: im.Updated, Unchanged: im.Unchanged, Rejected: im.Rejected,
		CreatedAt: im.CreatedAt, UpdatedAt: im.UpdatedAt, FinishedAt: im.FinishedAt}
	if im.Error != "" {
		out.Error = &im.Error
	}
	return out
}

// createImport takes a multipart upload (fields type, dry_run, atomic,
// no_rewards and the file in "file"), stores it and queues the import. The
// file is spooled to disk first so the database transaction that stores it
// does not wait on the network.
func (s *Server) createImport(w http.ResponseWriter, r *http.Request) error {
	// An upload may take longer than the server's usual read timeout.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(30 * time.Minute))
	r.Body = http.MaxBytesReader(w, r.Body, maxUpload)
	mr, err := r.MultipartReader()
	if err != nil {
		return errs.E(errs.Invalid, "the body must be multipart/form-data with the CSV in a part named 'file'")
	}
	fields := map[string]string{}
	var spool *os.File
	var name string
	defer func() {
		if spool != nil {
			spool.Close()
			os.Remove(spool.Name())
		}
	}()
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return uploadError(err)
		}
		if part.FormName() == "file" {
			if spool != nil {
				return errs.E(errs.Invalid, "'file' was sent twice")
			}
			if spool, err = os.CreateTemp("", "partnerd-upload-*"); err != nil {
				return fmt.Errorf("spool upload: %w", err)
			}
			name = part.FileName()
			if _, err := io.Copy(spool, part); err != nil {
				return uploadError(err)
			}
			continue
		}
		v, err := io.ReadAll(io.LimitReader(part, 1024))
		if err != nil {
			return uploadError(err)
		}
		fields[part.FormName()] = string(v)
	}
	if spool == nil {
		return errs.E(errs.Invalid, "'file' is a required part: the CSV file to import")
	}
	opts := importer.Options{Type: fields["type"]}
	for _, f := range []struct {
		name string
		dst  *bool
	}{{"dry_run", &opts.DryRun}, {"atomic", &opts.Atomic}, {"no_rewards", &opts.NoRewards}} {
		switch fields[f.name] {
		case "", "false", "0":
		case "true", "1":
			*f.dst = true
		default:
			return errs.E(errs.Invalid, "'%s' must be true or false", f.name)
		}
	}
	if opts.Type == "" {
		return errs.E(errs.Invalid, "'type' is required: one of groups, partners, customers, transactions, rewards")
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("spool upload: %w", err)
	}
	im, err := s.importer.Submit(r.Context(), principalOf(r), opts, name, spool)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, envelope{Data: renderImport(im), Message: "Import queued", Status: http.StatusAccepted})
	return nil
}

func uploadError(err error) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return errs.E(errs.Invalid, "the upload is too large (limit %d bytes)", maxUpload)
	}
	return errs.E(errs.Invalid, "could not read the upload: %s", err.Error())
}

// getImport shows an import's progress and its first rejected rows.
func (s *Server) getImport(w http.ResponseWriter, r *http.Request) error {
	p := principalOf(r)
	im, err := s.importer.Get(r.Context(), p, r.PathValue("key"))
	if err != nil {
		return err
	}
	out := renderImport(im)
	out.Errors = []importer.RowError{}
	errStop := errors.New("enough")
	err = s.importer.Report(r.Context(), p, im.Key, func(e importer.RowError) error {
		if len(out.Errors) == 100 {
			return errStop
		}
		out.Errors = append(out.Errors, e)
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return err
	}
	writeData(w, out, "Import retrieved")
	return nil
}

func (s *Server) listImports(w http.ResponseWriter, r *http.Request) error {
	page, err := parsePage(r.URL.Query())
	if err != nil {
		return err
	}
	items, res, err := s.importer.List(r.Context(), principalOf(r), page)
	return replyList(w, items, res, err, renderImport, "Imports retrieved")
}

// importReport streams every rejected row of an import as CSV or JSON.
func (s *Server) importReport(w http.ResponseWriter, r *http.Request) error {
	p := principalOf(r)
	im, err := s.importer.Get(r.Context(), p, r.PathValue("key"))
	if err != nil {
		return err
	}
	format := r.URL.Query().Get("format")
	switch format {
	case "", "json":
		format = "json"
		w.Header().Set("Content-Type", "application/json")
	case "csv":
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="`+im.Key+`-report.csv"`)
	default:
		return errs.E(errs.Invalid, "'format' must be csv or json: %q", format)
	}
	// The status is sent with the first row: a failure after it leaves a
	// truncated body, which the client sees.
	_ = s.importer.WriteReport(r.Context(), p, im.Key, format, w, nil)
	return nil
}

// exportType streams one object type of the company as CSV or JSON lines.
func (s *Server) exportType(w http.ResponseWriter, r *http.Request) error {
	typ := r.PathValue("type")
	format := r.URL.Query().Get("format")
	if format == "" {
		format = importer.CSV
	}
	if format != importer.CSV && format != importer.JSONL {
		return errs.E(errs.Invalid, "'format' must be csv or jsonl: %q", format)
	}
	ct := "text/csv; charset=utf-8"
	if format == importer.JSONL {
		ct = "application/x-ndjson"
	}
	// A large export may take longer than the server's usual write timeout.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(time.Hour))
	lw := &lazyHeader{w: w, contentType: ct, name: typ + "." + format}
	_, err := s.importer.ExportOne(r.Context(), principalOf(r), typ, format, lw)
	if err != nil && !lw.started {
		return err // nothing sent yet: an ordinary error answer
	}
	return nil
}

// lazyHeader sets the download headers on the first write, so an error
// found before any row (an unknown type) still answers as JSON.
type lazyHeader struct {
	w           http.ResponseWriter
	contentType string
	name        string
	started     bool
}

func (l *lazyHeader) Write(p []byte) (int, error) {
	if !l.started {
		l.started = true
		l.w.Header().Set("Content-Type", l.contentType)
		l.w.Header().Set("Content-Disposition", `attachment; filename="`+l.name+`"`)
	}
	return l.w.Write(p)
}
