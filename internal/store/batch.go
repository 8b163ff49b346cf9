package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// maxBatch bounds how many writes share one commit.
const maxBatch = 256

// ErrClosed is returned for writes sent after the database was closed.
var ErrClosed = errors.New("store: database is closed")

type batchItem struct {
	ctx  context.Context
	fn   func(q Querier) error
	err  error
	done chan struct{}
}

// batcher is group commit: writes that arrive while a commit is running
// queue up and share the next transaction, so a busy server pays for one
// commit per batch instead of one per request. Nothing waits on a timer:
// a lone write commits at once.
type batcher struct {
	db     *DB
	queue  chan *batchItem
	once   sync.Once
	mu     sync.RWMutex
	closed bool
	wg     sync.WaitGroup
}

// Batched runs fn inside a write transaction shared with other concurrent
// Batched calls and returns once that transaction has committed (so a nil
// error means fn's writes are durable). fn may run more than once: if any
// write in a batch fails, the batch is rolled back and each write is re-run
// in a transaction of its own, so one bad write cannot fail its neighbours.
// fn must therefore only write through q and keep no state between runs
// other than what it assigns afresh.
func (db *DB) Batched(ctx context.Context, fn func(q Querier) error) error {
	return db.batch.do(db, ctx, fn)
}

// BatchedIntake is Batched for a hot path of small inserts (billing-webhook
// intake) that must not queue behind the main writer's larger transactions.
// On PostgreSQL it is a group-commit lane of its own, committing in parallel
// with the main one; SQLite has one write lock, so there it is the main lane.
func (db *DB) BatchedIntake(ctx context.Context, fn func(q Querier) error) error {
	if db.dialect == SQLite {
		return db.batch.do(db, ctx, fn)
	}
	return db.intake.do(db, ctx, fn)
}

func (b *batcher) do(db *DB, ctx context.Context, fn func(q Querier) error) error {
	b.once.Do(func() {
		b.db = db
		b.queue = make(chan *batchItem, maxBatch*4)
		b.wg.Add(1)
		go b.loop()
	})
	item := &batchItem{ctx: ctx, fn: fn, done: make(chan struct{})}
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return ErrClosed
	}
	select {
	case b.queue <- item:
	case <-ctx.Done():
		b.mu.RUnlock()
		return ctx.Err()
	}
	b.mu.RUnlock()
	<-item.done
	return item.err
}

func (b *batcher) loop() {
	defer b.wg.Done()
	batch := make([]*batchItem, 0, maxBatch)
	for first := range b.queue {
		batch = append(batch[:0], first)
	fill:
		for len(batch) < maxBatch {
			select {
			case it, ok := <-b.queue:
				if !ok {
					break fill
				}
				batch = append(batch, it)
			default:
				break fill
			}
		}
		b.run(batch)
	}
}

func (b *batcher) run(batch []*batchItem) {
	live := batch[:0:0]
	for _, it := range batch {
		if err := it.ctx.Err(); err != nil {
			it.err = err
			close(it.done)
			continue
		}
		live = append(live, it)
	}
	if len(live) == 0 {
		return
	}
	err := b.db.Tx(context.Background(), func(tx *Tx) error {
		for _, it := range live {
			if err := it.fn(tx); err != nil {
				return fmt.Errorf("batched write: %w", err)
			}
		}
		return nil
	})
	if err == nil || len(live) == 1 {
		for _, it := range live {
			if len(live) == 1 && err != nil {
				it.err = unwrapBatch(err)
			}
			close(it.done)
		}
		return
	}
	// Something in the batch failed: find out which, one write at a time.
	for _, it := range live {
		it.err = unwrapBatch(b.db.Tx(context.Background(), func(tx *Tx) error { return it.fn(tx) }))
		close(it.done)
	}
}

// unwrapBatch strips the "batched write:" wrapping so callers see their own
// error (a domain error keeps its code).
func unwrapBatch(err error) error {
	if err == nil {
		return nil
	}
	if inner := errors.Unwrap(err); inner != nil && err.Error() == "batched write: "+inner.Error() {
		return inner
	}
	return err
}

// close stops taking writes and waits for queued ones to commit.
func (b *batcher) close() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	b.mu.Unlock()
	if b.queue != nil {
		close(b.queue)
		b.wg.Wait()
	}
}
