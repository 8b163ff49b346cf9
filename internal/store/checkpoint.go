package store

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"
)

// checkpointEvery is how often the checkpointer copies committed WAL frames
// into the database file.
const checkpointEvery = 200 * time.Millisecond

// checkpointer runs SQLite's WAL checkpoints on a connection of its own.
// SQLite's default is an automatic checkpoint inside whichever commit pushes
// the WAL past 1,000 pages, which on our single writer stalls every write
// behind it: a profile of ingest with three offers showed the writer
// spending a fifth of its time copying pages. A passive checkpoint never
// blocks the writer or readers; it copies what no reader still needs.
type checkpointer struct {
	conn *sql.DB
	stop chan struct{}
	done chan struct{}
	once sync.Once
	err  error
}

func startCheckpointer(ctx context.Context, path string) (*checkpointer, error) {
	conn, err := sql.Open("sqlite", sqliteDSN(path, nil))
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s for checkpoints: %w", path, err)
	}
	conn.SetMaxOpenConns(1)
	conn.SetMaxIdleConns(1)
	if err := conn.PingContext(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("open sqlite %s for checkpoints: %w", path, err)
	}
	c := &checkpointer{conn: conn, stop: make(chan struct{}), done: make(chan struct{})}
	go c.loop()
	return c, nil
}

func (c *checkpointer) loop() {
	defer close(c.done)
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			// An error (SQLITE_BUSY while another process checkpoints, say)
			// only delays the copy to the next tick; the WAL stays valid.
			_, _ = c.conn.Exec("PRAGMA wal_checkpoint(PASSIVE)")
		}
	}
}

// close stops the loop and closes its connection. The last connection to
// close checkpoints the whole WAL, as SQLite always does.
func (c *checkpointer) close() error {
	c.once.Do(func() {
		close(c.stop)
		<-c.done
		c.err = c.conn.Close()
	})
	return c.err
}
