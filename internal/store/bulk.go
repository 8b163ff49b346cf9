package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// bulkChunk is the most rows one SQLite INSERT carries. Chunks are powers
// of two so that only a handful of statement texts get prepared.
const bulkChunk = 256

// InsertRows writes many rows into table in one transaction: COPY on
// PostgreSQL, chunked multi-row INSERTs on SQLite. It is the dialect fast
// path for high-volume appends such as clicks. Values are passed as for
// any query (booleans as INTEGER 0/1).
func (db *DB) InsertRows(ctx context.Context, table string, cols []string, rows [][]any) error {
	if len(rows) == 0 {
		return nil
	}
	if db.dialect == Postgres {
		return db.copyRows(ctx, table, cols, rows)
	}
	return db.Tx(ctx, func(tx *Tx) error {
		for rest := rows; len(rest) > 0; {
			n := bulkChunk
			for n > len(rest) {
				n /= 2
			}
			if err := insertChunk(ctx, tx, table, cols, rest[:n]); err != nil {
				return err
			}
			rest = rest[n:]
		}
		return nil
	})
}

func insertChunk(ctx context.Context, tx *Tx, table string, cols []string, rows [][]any) error {
	one := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + ")"
	var q strings.Builder
	q.WriteString("INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES ")
	args := make([]any, 0, len(rows)*len(cols))
	for i, r := range rows {
		if i > 0 {
			q.WriteByte(',')
		}
		q.WriteString(one)
		args = append(args, r...)
	}
	if _, err := tx.Exec(ctx, q.String(), args...); err != nil {
		return fmt.Errorf("insert %d rows into %s: %w", len(rows), table, err)
	}
	return nil
}

func (db *DB) copyRows(ctx context.Context, table string, cols []string, rows [][]any) error {
	conn, err := db.write.Conn(ctx)
	if err != nil {
		return fmt.Errorf("copy into %s: %w", table, err)
	}
	defer conn.Close()
	return conn.Raw(func(driverConn any) error {
		c, ok := driverConn.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("copy into %s: unexpected driver connection %T", table, driverConn)
		}
		n, err := c.Conn().CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromRows(rows))
		if err != nil {
			return fmt.Errorf("copy into %s: %w", table, err)
		}
		if int(n) != len(rows) {
			return fmt.Errorf("copy into %s: %d of %d rows written", table, n, len(rows))
		}
		return nil
	})
}
