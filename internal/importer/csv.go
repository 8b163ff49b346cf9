// Package importer reads CSV files of partners, customers, transactions,
// rewards and groups into a program, row by row and idempotently, and
// writes every object type back out as CSV and JSON lines. The domain
// packages own the writes; this package owns the file formats, the
// validation report, batching and the import jobs.
package importer

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// RowError is one reason a row was rejected: its line in the file (where
// the record starts; a quoted field may span lines), the column as the
// file spells it ("" for the whole row) and why.
type RowError struct {
	Line   int64  `json:"line"`
	Column string `json:"column"`
	Reason string `json:"reason"`
	Value  string `json:"value"`
}

// counter counts the bytes read through it, for progress and ETA.
type counter struct {
	r io.Reader
	n int64
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// reader streams a CSV file one record at a time: a UTF-8 byte order mark
// is skipped, CRLF and LF both end records, quoted fields may hold commas,
// quotes and newlines. A malformed record is returned as a row error and
// reading goes on with the next one.
type reader struct {
	cr     *csv.Reader
	count  *counter
	header []string // as the file spells it
}

// record is one row of the file: its fields, or why it could not be read.
type record struct {
	line   int64
	fields []string
	err    *RowError
}

var errEmptyFile = errors.New("the file is empty: it needs a header row naming its columns")

func newReader(r io.Reader) (*reader, error) {
	c := &counter{r: r}
	br := bufio.NewReaderSize(c, 64<<10)
	if bom, err := br.Peek(3); err == nil && string(bom) == "\uFEFF" {
		if _, err := br.Discard(3); err != nil {
			return nil, fmt.Errorf("skip byte order mark: %w", err)
		}
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1 // a short or long row is a row error, not the end of the file
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, errEmptyFile
	}
	if err != nil {
		return nil, fmt.Errorf("read the header row: %w", err)
	}
	for i, h := range header {
		if !utf8.ValidString(h) {
			return nil, fmt.Errorf("header column %d is not valid UTF-8: save the file as UTF-8", i+1)
		}
	}
	return &reader{cr: cr, count: c, header: append([]string(nil), header...)}, nil
}

// next returns the next record, or io.EOF after the last.
func (r *reader) next() (record, error) {
	fields, err := r.cr.Read()
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return record{line: int64(pe.StartLine), err: &RowError{Line: int64(pe.StartLine), Reason: "malformed CSV: " + pe.Err.Error()}}, nil
		}
		if errors.Is(err, io.EOF) {
			return record{}, io.EOF
		}
		return record{}, fmt.Errorf("read the file: %w", err)
	}
	line, _ := r.cr.FieldPos(0)
	rec := record{line: int64(line), fields: fields}
	if len(fields) != len(r.header) {
		// A blank line inside the data is skipped by encoding/csv; a
		// record of one empty field is a line of only spaces or a lone
		// quote pair, treated the same.
		rec.err = &RowError{Line: rec.line, Reason: fmt.Sprintf("the row has %d fields; the header has %d", len(fields), len(r.header))}
		return rec, nil
	}
	for i, f := range fields {
		if !utf8.ValidString(f) {
			rec.err = &RowError{Line: rec.line, Column: r.header[i], Reason: "not valid UTF-8: save the file as UTF-8",
				Value: strings.ToValidUTF8(clip(f), "\uFFFD")}
			return rec, nil
		}
	}
	return rec, nil
}

// bytesRead is how far into the file reading has got.
func (r *reader) bytesRead() int64 { return r.count.n }

// clip shortens a value quoted in a report.
func clip(s string) string {
	const max = 100
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
