// Package errs defines partnerd's domain errors: each carries a Code that the
// HTTP layer maps to a status in exactly one table, and a message written for
// the caller (it names the offending field where there is one).
package errs

import (
	"errors"
	"fmt"
)

// Code classifies an error for callers.
type Code string

// The codes. HTTP statuses for them live in internal/api.
const (
	Invalid      Code = "invalid"
	NotFound     Code = "not_found"
	Conflict     Code = "conflict"
	Unauthorized Code = "unauthorized"
	Forbidden    Code = "forbidden"
	RateLimited  Code = "rate_limited"
	Internal     Code = "internal"
)

// Error is a domain error with a code and a caller-facing message.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string { return e.Message }

// E returns an error with the given code and formatted message.
func E(code Code, format string, args ...any) error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the code of err, or Internal when err carries none.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// MessageOf returns the caller-facing message of err. Errors without a code
// are internal and their text is not shown to callers.
func MessageOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}
