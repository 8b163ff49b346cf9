package store_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/partnerd/partnerd/internal/store"
)

// TestWALStaysBounded checks that the WAL does not grow with everything
// ever written while writes arrive back to back (the writer's automatic
// checkpoint must stay on), and that what was written reads back after a
// reopen.
func TestWALStaysBounded(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "wal.db")
	db, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, "CREATE TABLE blobs (id INTEGER PRIMARY KEY, body TEXT NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	row := strings.Repeat("x", 1000)
	const megabytes, rowsPerMB = 12, 1000
	for mb := 0; mb < megabytes; mb++ {
		for c := 0; c < rowsPerMB/100; c++ {
			err := db.Tx(ctx, func(tx *store.Tx) error {
				for i := 0; i < 100; i++ {
					if _, err := tx.Exec(ctx, "INSERT INTO blobs (body) VALUES (?)", row); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	fi, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > megabytes/2<<20 {
		t.Fatalf("after %d MB written the WAL is %d bytes: it is never checkpointed and restarted", megabytes, fi.Size())
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(ctx, "SELECT COUNT(*) FROM blobs").Scan(&n); err != nil || n != megabytes*rowsPerMB {
		t.Fatalf("after reopening: %d rows (%v), want %d", n, err, megabytes*rowsPerMB)
	}
}
