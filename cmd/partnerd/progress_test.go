package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/partnerd/partnerd/internal/importer"
)

// The progress line says rows, rows/s, how far through the file and the
// time left, computed from the bytes read.
func TestProgressLine(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 10, 0, time.UTC)
	pr := importer.Progress{Records: 1000, BytesRead: 250, Size: 1000, Started: now.Add(-10 * time.Second)}
	if got, want := progressLine(pr, now), "[######..................]  25%  1000 rows  100 rows/s  ETA 30s"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	pr.Size = 0 // a file of unknown size: no bar, no ETA
	if got, want := progressLine(pr, now), "1000 rows  100 rows/s"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// Off a terminal, progress is plain lines no more often than every 5 s.
func TestProgressPlainLines(t *testing.T) {
	var buf bytes.Buffer
	p := newProgress(&buf, 100)
	if p.tty {
		t.Fatal("a buffer taken for a terminal")
	}
	pr := importer.Progress{Records: 10, BytesRead: 10, Size: 100, Started: time.Now()}
	p.update(pr)
	p.update(pr)
	p.done()
	out := buf.String()
	if strings.Count(out, "\n") != 1 || strings.Contains(out, "\r") || !strings.Contains(out, "10 rows") {
		t.Fatalf("plain progress output %q", out)
	}
}
