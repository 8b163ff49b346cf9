package web

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/partnerd/partnerd/internal/accounts"
	"github.com/partnerd/partnerd/internal/errs"
	"github.com/partnerd/partnerd/internal/importer"
	"github.com/partnerd/partnerd/internal/store"
)

// maxUpload bounds an uploaded CSV, as the API does.
const maxUpload = 1 << 30

type importsView struct {
	Types   []string
	Imports []importer.Import
	Pager   pager
}

func (s *Server) imports(w http.ResponseWriter, r *http.Request, sess *accounts.Session) error {
	p, company, err := s.principal(r.Context(), sess)
	if err != nil {
		return err
	}
	l := listing[importer.Import]{name: "imports",
		fetch: func(pg store.Page) ([]importer.Import, store.Result, error) {
			return s.Importer.List(r.Context(), p, pg)
		},
		key:     func(x importer.Import) string { return x.Key },
		csvHead: []string{"key", "type", "file", "status", "records", "created", "updated", "unchanged", "rejected", "created_at"},
		csvRow: func(x importer.Import) []string {
			return []string{x.Key, x.Type, x.FileName, x.Status, fmt.Sprint(x.Records), fmt.Sprint(x.Created), fmt.Sprint(x.Updated),
				fmt.Sprint(x.Unchanged), fmt.Sprint(x.Rejected), csvTime(x.CreatedAt)}
		}}
	items, pg, done, err := l.page(w, r)
	if done || err != nil {
		return err
	}
	return s.render(w, http.StatusOK, "imports", view{Title: "Imports", Nav: "imports", Session: sess, Company: company,
		Data: importsView{Types: importer.Types(), Imports: items, Pager: pg}})
}

// upload queues an uploaded CSV: the file is stored with the import in one
// transaction, and any node's import worker runs it.
func (s *Server) upload(w http.ResponseWriter, r *http.Request, sess *accounts.Session) error {
	if !sess.User.Can() {
		return errs.E(errs.Forbidden, "a viewer cannot import")
	}
	p, _, err := s.principal(r.Context(), sess)
	if err != nil {
		return err
	}
	file, head, err := r.FormFile("file")
	if errors.Is(err, http.ErrMissingFile) {
		return errs.E(errs.Invalid, "choose a CSV file to import")
	}
	if err != nil {
		return errs.E(errs.Invalid, "the upload could not be read: %v", err)
	}
	defer file.Close()
	opts := importer.Options{Type: r.FormValue("type"), DryRun: r.FormValue("dry_run") == "1", Atomic: r.FormValue("atomic") == "1",
		NoRewards: r.FormValue("no_rewards") == "1"}
	im, err := s.Importer.Submit(r.Context(), p, opts, head.Filename, file)
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/app/imports/"+im.Key, http.StatusSeeOther)
	return nil
}

type importView struct {
	Import   importer.Import
	Rows     []importer.RowError
	More     bool
	Running  bool
	Percent  int
	Finished string
}

// importPage shows an import's progress (refreshing itself while it runs,
// with no script) and its row report.
func (s *Server) importPage(w http.ResponseWriter, r *http.Request, sess *accounts.Session) error {
	p, company, err := s.principal(r.Context(), sess)
	if err != nil {
		return err
	}
	im, err := s.Importer.Get(r.Context(), p, r.PathValue("key"))
	if err != nil {
		return err
	}
	if r.URL.Query().Get("format") == "csv" {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-report.csv"`, im.Key))
		return s.Importer.WriteReport(r.Context(), p, im.Key, "csv", w, nil)
	}
	v := importView{Import: im, Running: im.Status == importer.StatusQueued || im.Status == importer.StatusRunning}
	if im.Size > 0 {
		v.Percent = int(min(100, im.BytesRead*100/im.Size))
	}
	if im.FinishedAt != nil {
		v.Finished = time.UnixMilli(*im.FinishedAt).Sub(time.UnixMilli(im.CreatedAt)).Round(100 * time.Millisecond).String()
	}
	enough := errors.New("enough")
	err = s.Importer.Report(r.Context(), p, im.Key, func(e importer.RowError) error {
		if len(v.Rows) == 200 {
			v.More = true
			return enough
		}
		v.Rows = append(v.Rows, e)
		return nil
	})
	if err != nil && !errors.Is(err, enough) {
		return err
	}
	if v.Running {
		w.Header().Set("Refresh", "2")
	}
	return s.render(w, http.StatusOK, "import", view{Title: "Import " + im.Key, Nav: "imports", Session: sess, Company: company, Data: v})
}
