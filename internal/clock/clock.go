// Package clock is the one source of time for partnerd. Everything stored or
// sent is epoch milliseconds read from a Clock, so tests can fix or advance it.
package clock

import (
	"sync"
	"time"
)

// Clock tells the current time.
type Clock interface {
	Now() time.Time
}

// System is the wall clock.
type System struct{}

// Now returns time.Now.
func (System) Now() time.Time { return time.Now() }

// Millis returns the clock's time as epoch milliseconds.
func Millis(c Clock) int64 { return c.Now().UnixMilli() }

// Manual is a clock that only moves when told to; safe for concurrent use.
type Manual struct {
	mu  sync.Mutex
	now time.Time
}

// NewManual returns a Manual clock set to t.
func NewManual(t time.Time) *Manual { return &Manual{now: t} }

// Now returns the clock's current time.
func (m *Manual) Now() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.now
}

// Advance moves the clock forward by d.
func (m *Manual) Advance(d time.Duration) {
	m.mu.Lock()
	m.now = m.now.Add(d)
	m.mu.Unlock()
}

// Set moves the clock to t.
func (m *Manual) Set(t time.Time) {
	m.mu.Lock()
	m.now = t
	m.mu.Unlock()
}

// Shifted is the system clock moved by an offset that can be changed: a
// running program can be put back in time (to seed history, as
// `partnerd demo` does) and then returned to the present, while time
// still passes.
type Shifted struct {
	mu     sync.Mutex
	offset time.Duration
}

// Now returns the system time plus the offset.
func (s *Shifted) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Now().Add(s.offset)
}

// Set makes Now return t from this instant on (and time pass from there).
func (s *Shifted) Set(t time.Time) {
	s.mu.Lock()
	s.offset = time.Until(t)
	s.mu.Unlock()
}

// Reset returns the clock to the present.
func (s *Shifted) Reset() {
	s.mu.Lock()
	s.offset = 0
	s.mu.Unlock()
}
