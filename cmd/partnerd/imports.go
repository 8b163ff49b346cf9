package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/partnerd/partnerd/internal/importer"
	"github.com/partnerd/partnerd/internal/program"
)

// parseInterleaved parses flags that may come before, between or after the
// positional arguments ("import transactions FILE --company KEY").
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func importCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, db := newFlags("import TYPE FILE.csv --company KEY [flags]",
		"Imports a CSV file of "+strings.Join(importer.Types(), ", ")+" into a company.\n"+
			"Rows are found by their natural keys, so importing a file again creates nothing new, and an\n"+
			"interrupted import is finished by running it again. Rejected rows are listed with their line,\n"+
			"column and reason; the others are imported (or none, with --atomic). Columns: docs/import-export.md.", stderr)
	company := fs.String("company", "", "the company key (required)")
	dryRun := fs.Bool("dry-run", false, "validate every row against the database and report, writing nothing")
	atomic := fs.Bool("atomic", false, "import every row or, if any row is rejected, none")
	noRewards := fs.Bool("no-rewards", false, "import history: new customers and transactions earn no rewards")
	report := fs.String("report", "", "write every rejected row to this file (.csv or .json)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		fs.Usage()
		return errors.New("give the type and the file: partnerd import TYPE FILE.csv --company KEY")
	}
	typ, path := pos[0], pos[1]
	if *report != "" && !strings.HasSuffix(*report, ".csv") && !strings.HasSuffix(*report, ".json") {
		return errors.New("--report must name a .csv or .json file")
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	a, p, err := openCompany(ctx, *db, *company)
	if err != nil {
		return err
	}
	defer a.Close()
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	bar := newProgress(stderr, st.Size())
	opts := importer.Options{Type: typ, DryRun: *dryRun, Atomic: *atomic, NoRewards: *noRewards}
	im, runErr := a.Importer.Import(ctx, p, opts, filepath.Base(path), st.Size(), f, bar.update)
	bar.done()
	if im.Key == "" {
		return runErr // refused before it started (an unknown type)
	}
	verb := map[bool]string{true: "would be ", false: ""}[*dryRun || im.Status == importer.StatusRejected]
	fmt.Fprintf(stdout, "import %s (%s): %d rows: %d %screated, %d %supdated, %d unchanged, %d rejected\n",
		im.Key, im.Type, im.Records, im.Created, verb, im.Updated, verb, im.Unchanged, im.Rejected)
	for _, w := range im.Warnings {
		fmt.Fprintln(stderr, "warning:", w)
	}
	if err := printReport(ctx, a.Importer, p, im.Key, *report, stderr); err != nil {
		return err
	}
	switch {
	case runErr != nil:
		return runErr
	case im.Status == importer.StatusRejected:
		return errors.New("rows were rejected, so nothing was imported (--atomic)")
	case im.Rejected > 0:
		return fmt.Errorf("%d rows were rejected", im.Rejected)
	}
	return nil
}

// printReport shows the first rejected rows and writes them all to path.
func printReport(ctx context.Context, imp *importer.Service, p program.Principal, key, path string, stderr io.Writer) error {
	n := 0
	show := func(e importer.RowError) {
		switch {
		case n < 20:
			col := ""
			if e.Column != "" {
				col = " " + e.Column + ":"
			}
			fmt.Fprintf(stderr, "line %d:%s %s\n", e.Line, col, e.Reason)
		case n == 20 && path == "":
			fmt.Fprintln(stderr, "… more rejected rows: use --report FILE.csv to see them all")
		}
		n++
	}
	if path == "" {
		return imp.Report(ctx, p, key, func(e importer.RowError) error { show(e); return nil })
	}
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	err = imp.WriteReport(ctx, p, key, strings.TrimPrefix(filepath.Ext(path), "."), out, show)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// progress draws a bar on a terminal and plain lines elsewhere (a log, CI).
type progress struct {
	w        io.Writer
	tty      bool
	size     int64
	last     time.Time
	lastLine string
}

func newProgress(w io.Writer, size int64) *progress {
	tty := false
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return &progress{w: w, tty: tty, size: size}
}

func (p *progress) update(pr importer.Progress) {
	now := time.Now()
	every := 5 * time.Second
	if p.tty {
		every = 200 * time.Millisecond
	}
	if now.Sub(p.last) < every {
		return
	}
	p.last = now
	p.lastLine = progressLine(pr, now)
	if p.tty {
		fmt.Fprintf(p.w, "\r%s\033[K", p.lastLine)
	} else {
		fmt.Fprintln(p.w, p.lastLine)
	}
}

// progressLine says rows done, the rate, and (from the bytes read) how
// far through the file and how long is left.
func progressLine(pr importer.Progress, now time.Time) string {
	elapsed := now.Sub(pr.Started).Seconds()
	rate := 0.0
	if elapsed > 0 {
		rate = float64(pr.Records) / elapsed
	}
	s := fmt.Sprintf("%d rows  %.0f rows/s", pr.Records, rate)
	if pr.Size > 0 && pr.BytesRead > 0 {
		frac := float64(pr.BytesRead) / float64(pr.Size)
		const width = 24
		filled := int(frac * width)
		if filled > width {
			filled = width
		}
		eta := time.Duration(elapsed * (1 - frac) / frac * float64(time.Second)).Round(time.Second)
		s = fmt.Sprintf("[%s%s] %3.0f%%  %s  ETA %s", strings.Repeat("#", filled), strings.Repeat(".", width-filled), frac*100, s, eta)
	}
	return s
}

func (p *progress) done() {
	if p.tty && p.lastLine != "" {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

func exportCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, db := newFlags("export --company KEY --out DIR",
		"Writes every object type of a company into DIR as TYPE.csv and TYPE.jsonl, from one consistent\n"+
			"snapshot. The CSV files of "+strings.Join(importer.Types(), ", ")+" import back with partnerd import.", stderr)
	company := fs.String("company", "", "the company key (required)")
	out := fs.String("out", "", "the directory to write (created if missing; files in it are replaced)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		fs.Usage()
		return errors.New("--out is required")
	}
	a, p, err := openCompany(ctx, *db, *company)
	if err != nil {
		return err
	}
	defer a.Close()
	counts, err := a.Importer.ExportAll(ctx, p, *out)
	if err != nil {
		return err
	}
	for _, t := range importer.ExportTypes() {
		fmt.Fprintf(stdout, "%-13s %d rows\n", t, counts[t])
	}
	return nil
}
