package importer

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"
)

// FuzzRows feeds any bytes through the CSV reader and every type's row
// parser: nothing panics or loops, every record is either a row with as
// many fields as the header or a row error with a line and a reason, and
// every parse error names a column and carries valid UTF-8.
func FuzzRows(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.csv")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("key,amount\n\"unterminated,1\n"))
	f.Add([]byte("\xef\xbb\xbfemail\r\n\"a\r\nb\"\r\n"))
	f.Add([]byte("a,\"b\"c\nx,y\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rd, err := newReader(bytes.NewReader(data))
		if err != nil {
			return // no usable header: the whole file is refused with a message
		}
		var recs []record
		for i := 0; ; i++ {
			if i > len(data)+1 {
				t.Fatalf("the reader does not advance: %d records from %d bytes", i, len(data))
			}
			rec, err := rd.next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if rec.err != nil {
				if rec.err.Line < 1 || rec.err.Reason == "" || !utf8.ValidString(rec.err.Value) {
					t.Fatalf("bad row error: %+v", rec.err)
				}
				continue
			}
			if len(rec.fields) != len(rd.header) || rec.line < 2 {
				t.Fatalf("record at line %d has %d fields, header %d", rec.line, len(rec.fields), len(rd.header))
			}
			recs = append(recs, rec)
		}
		for _, k := range kinds {
			cols, err := mapHeader(rd.header, k.fields)
			if err != nil {
				continue
			}
			for _, rec := range recs {
				r := &row{line: rec.line, fields: rec.fields, cols: cols}
				k.parse(r)
				for _, e := range r.errs {
					if e.Line != rec.line || e.Column == "" || e.Reason == "" || !utf8.ValidString(e.Value) {
						t.Fatalf("bad parse error: %+v", e)
					}
				}
			}
		}
	})
}
