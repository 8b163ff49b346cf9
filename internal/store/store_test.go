package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/partnerd/partnerd/internal/store"
	"github.com/partnerd/partnerd/internal/store/storetest"
)

func TestMigrateIsIdempotent(t *testing.T) {
	for _, eng := range storetest.Engines(t) {
		t.Run(eng.Name, func(t *testing.T) {
			db := eng.Open(t) // migrated once
			applied, err := db.Migrate(context.Background())
			if err != nil || len(applied) != 0 {
				t.Fatalf("second migrate applied %v (%v)", applied, err)
			}
			var n int
			if err := db.QueryRow(context.Background(), "SELECT COUNT(*) FROM schema_migrations").Scan(&n); err != nil || n == 0 {
				t.Fatalf("schema_migrations: %d %v", n, err)
			}
		})
	}
}

func TestUniqueViolationAndRollback(t *testing.T) {
	for _, eng := range storetest.Engines(t) {
		t.Run(eng.Name, func(t *testing.T) {
			ctx := context.Background()
			db := eng.Open(t)
			ins := "INSERT INTO companies (key, name, created_at, updated_at) VALUES (?, ?, 1, 1)"
			if _, err := db.Exec(ctx, ins, "comp_a", "A"); err != nil {
				t.Fatal(err)
			}
			_, err := db.Exec(ctx, ins, "comp_a", "again")
			if !store.IsUniqueViolation(err) {
				t.Fatalf("duplicate key: %v is not recognised as a unique violation", err)
			}
			if store.IsUniqueViolation(errors.New("other")) {
				t.Fatal("plain error taken for a unique violation")
			}
			// A failing transaction leaves nothing behind.
			err = db.Tx(ctx, func(tx *store.Tx) error {
				if _, err := tx.Exec(ctx, ins, "comp_b", "B"); err != nil {
					return err
				}
				return errors.New("changed my mind")
			})
			if err == nil {
				t.Fatal("Tx swallowed the error")
			}
			var n int
			db.QueryRow(ctx, "SELECT COUNT(*) FROM companies WHERE key = ?", "comp_b").Scan(&n)
			if n != 0 {
				t.Fatal("rolled-back write is visible")
			}
		})
	}
}

// TestBatchedIsolatesFailures: writes sharing a commit do not fail each
// other, and each caller learns its own outcome.
func TestBatchedIsolatesFailures(t *testing.T) {
	for _, eng := range storetest.Engines(t) {
		t.Run(eng.Name, func(t *testing.T) {
			ctx := context.Background()
			db := eng.Open(t)
			ins := "INSERT INTO companies (key, name, created_at, updated_at) VALUES (?, 'n', 1, 1)"
			if _, err := db.Exec(ctx, ins, "comp_taken"); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			errs := make([]error, 200)
			for i := range errs {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					key := "comp_" + string(rune('A'+i%26)) + string(rune('a'+i/26))
					if i%50 == 0 {
						key = "comp_taken" // fails: unique violation
					}
					errs[i] = db.Batched(ctx, func(q store.Querier) error {
						_, err := q.Exec(ctx, ins, key)
						return err
					})
				}(i)
			}
			wg.Wait()
			failed := 0
			for i, err := range errs {
				if i%50 == 0 {
					if !store.IsUniqueViolation(err) {
						t.Fatalf("write %d should fail with a unique violation, got %v", i, err)
					}
					failed++
				} else if err != nil {
					t.Fatalf("write %d failed because of a neighbour: %v", i, err)
				}
			}
			var n int
			db.QueryRow(ctx, "SELECT COUNT(*) FROM companies").Scan(&n)
			if n != 1+200-failed {
				t.Fatalf("stored %d companies, want %d", n, 1+200-failed)
			}
		})
	}
}

func TestBatchedAfterClose(t *testing.T) {
	db := storetest.Engines(t)[0].Open(t)
	ctx := context.Background()
	if err := db.Batched(ctx, func(q store.Querier) error { return nil }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if err := db.Batched(ctx, func(q store.Querier) error { return nil }); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
}

// TestInsertRows checks the bulk path (COPY on PostgreSQL, chunked INSERTs
// on SQLite) writes every row exactly, across chunk boundaries.
func TestInsertRows(t *testing.T) {
	for _, eng := range storetest.Engines(t) {
		t.Run(eng.Name, func(t *testing.T) {
			ctx := context.Background()
			db := eng.Open(t)
			var rows [][]any
			for i := 0; i < 1000; i++ { // 1000 = 3*256 + 128 + 64 + 32 + 8: every chunk size but a few
				rows = append(rows, []any{fmt.Sprintf("comp_%04d", i), fmt.Sprintf("name %d", i), int64(i), int64(i * 2)})
			}
			if err := db.InsertRows(ctx, "companies", []string{"key", "name", "created_at", "updated_at"}, rows); err != nil {
				t.Fatal(err)
			}
			var n, sum int64
			db.QueryRow(ctx, "SELECT COUNT(*), SUM(updated_at) FROM companies").Scan(&n, &sum)
			if n != 1000 || sum != 999*1000 {
				t.Fatalf("stored %d rows, sum %d", n, sum)
			}
			var name string
			db.QueryRow(ctx, "SELECT name FROM companies WHERE key = 'comp_0999'").Scan(&name)
			if name != "name 999" {
				t.Fatalf("last row: %q", name)
			}
			// A failing batch writes nothing.
			bad := [][]any{{"comp_new", "n", int64(1), int64(1)}, {"comp_0001", "dup", int64(1), int64(1)}}
			if err := db.InsertRows(ctx, "companies", []string{"key", "name", "created_at", "updated_at"}, bad); err == nil {
				t.Fatal("duplicate key accepted")
			}
			db.QueryRow(ctx, "SELECT COUNT(*) FROM companies WHERE key = 'comp_new'").Scan(&n)
			if n != 0 {
				t.Fatal("a failed bulk insert left rows behind")
			}
		})
	}
}
