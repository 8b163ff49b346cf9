package store_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/partnerd/partnerd/internal/store"
)

// TestWALIsCheckpointedOffTheWriter checks that with the writer's automatic
// checkpoints turned off the background checkpointer keeps the WAL from
// growing with everything ever written, and that what was written reads
// back after a reopen.
func TestWALIsCheckpointedOffTheWriter(t *testing.T) {
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
		time.Sleep(100 * time.Millisecond) // room for the checkpointer's tick
	}
	fi, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > megabytes/2<<20 {
		t.Fatalf("after %d MB written the WAL is %d bytes: nothing checkpoints it", megabytes, fi.Size())
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
