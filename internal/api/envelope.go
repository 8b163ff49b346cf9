package api

import (
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/partnerd/partnerd/internal/errs"
	"github.com/partnerd/partnerd/internal/store"
)

// statusOf is the one table from error codes to HTTP statuses.
var statusOf = map[errs.Code]int{
	errs.Invalid:      http.StatusBadRequest,
	errs.NotFound:     http.StatusNotFound,
	errs.Conflict:     http.StatusConflict,
	errs.Unauthorized: http.StatusUnauthorized,
	errs.Forbidden:    http.StatusForbidden,
	errs.RateLimited:  http.StatusTooManyRequests,
	errs.Internal:     http.StatusInternalServerError,
}

// envelope is PartnerStack's success body.
type envelope struct {
	Data    any    `json:"data"`
	Message string `json:"message"`
	Status  int    `json:"status"`
}

// errorBody is PartnerStack's error body.
type errorBody struct {
	Message string `json:"message"`
	Status  int    `json:"status"`
}

// list is the data of a list response.
type list struct {
	HasMore bool `json:"has_more"`
	Items   any  `json:"items"`
	Total   int  `json:"total"`
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func writeData(w http.ResponseWriter, data any, message string) {
	writeJSON(w, http.StatusOK, envelope{Data: data, Message: message, Status: http.StatusOK})
}

// writeError answers with the error envelope. Internal errors are logged
// with their cause and shown to the caller only as "internal error".
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := errs.CodeOf(err)
	status := statusOf[code]
	if code == errs.Internal {
		s.log.ErrorContext(r.Context(), "request failed", slog.String("method", r.Method), slog.String("route", r.Pattern), slog.Any("err", err))
	}
	if code == errs.Unauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="partnerd"`)
	}
	writeJSON(w, status, errorBody{Message: errs.MessageOf(err), Status: status})
}

// reply answers with v rendered in the envelope, or with err.
func reply[T, J any](w http.ResponseWriter, v T, err error, render func(T) J, message string) error {
	if err != nil {
		return err
	}
	writeData(w, render(v), message)
	return nil
}

// replyList answers with a page of items, or with err.
func replyList[T, J any](w http.ResponseWriter, items []T, res store.Result, err error, render func(T) J, message string) error {
	if err != nil {
		return err
	}
	writeData(w, list{HasMore: res.HasMore, Items: renderAll(items, render), Total: res.Total}, message)
	return nil
}
