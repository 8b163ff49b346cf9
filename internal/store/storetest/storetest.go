// Package storetest opens fresh databases for tests on every engine: SQLite
// always, PostgreSQL when PARTNERD_TEST_POSTGRES holds a URL. Each PostgreSQL
// test gets a schema of its own, dropped when the test ends.
package storetest

import (
	"context"
	"database/sql"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/partnerd/partnerd/internal/secret"
	"github.com/partnerd/partnerd/internal/store"
)

// Engine opens a fresh, migrated database of one kind.
type Engine struct {
	Name string
	// DSN returns the address of a fresh, empty database for the test.
	DSN func(t testing.TB) string
}

// Engines lists the engines available to this test run. Without
// PARTNERD_TEST_POSTGRES it logs that PostgreSQL is skipped.
func Engines(t testing.TB) []Engine {
	out := []Engine{{Name: "sqlite", DSN: SQLiteDSN}}
	if os.Getenv("PARTNERD_TEST_POSTGRES") != "" {
		out = append(out, Engine{Name: "postgres", DSN: PostgresDSN})
	} else if os.Getenv("CI") != "" {
		// CI must test both engines; a missing database is a broken CI, not a skip.
		t.Fatal("CI is set but PARTNERD_TEST_POSTGRES is not: .ci/run must start PostgreSQL")
	} else {
		t.Log("PARTNERD_TEST_POSTGRES is not set: PostgreSQL is skipped (.ci/run sets it)")
	}
	return out
}

// SQLiteDSN returns a path to a new SQLite file in the test's temp dir.
func SQLiteDSN(t testing.TB) string {
	return filepath.Join(t.TempDir(), "partnerd.db")
}

// PostgresDSN creates a new schema in the PARTNERD_TEST_POSTGRES database and
// returns a URL whose search_path points at it.
func PostgresDSN(t testing.TB) string {
	base := os.Getenv("PARTNERD_TEST_POSTGRES")
	if base == "" {
		t.Skip("PARTNERD_TEST_POSTGRES is not set")
	}
	schema := "t_" + strings.ToLower(secret.Random(12))
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	defer admin.Close()
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		a, err := sql.Open("pgx", base)
		if err != nil {
			return
		}
		defer a.Close()
		_, _ = a.Exec("DROP SCHEMA " + schema + " CASCADE")
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse PARTNERD_TEST_POSTGRES: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Open opens and migrates a fresh database of the engine, closed at cleanup.
func (e Engine) Open(t testing.TB) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), e.DSN(t))
	if err != nil {
		t.Fatalf("%s: open: %v", e.Name, err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(context.Background()); err != nil {
		t.Fatalf("%s: migrate: %v", e.Name, err)
	}
	return db
}
