package importer

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/partnerd/partnerd/internal/errs"
)

// field is a column a type reads: its canonical name (the API's field name,
// which the export writes) and the other spellings accepted for it.
type field struct {
	name     string
	aliases  []string
	required bool
}

// normalizeHeader makes header spellings comparable: case, surrounding
// spaces, and spaces or hyphens against underscores do not matter.
func normalizeHeader(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	return strings.NewReplacer(" ", "_", "-", "_").Replace(h)
}

// columns maps a file's header onto a type's fields.
type columns struct {
	index    map[string]int // canonical name → column
	header   []string
	warnings []string
}

// mapHeader matches a header row against fields. A missing required
// column or two columns for one field make the file unusable; a column no
// field knows is reported as a warning and ignored.
func mapHeader(header []string, fields []field) (*columns, error) {
	lookup := map[string]string{}
	for _, f := range fields {
		lookup[f.name] = f.name
		for _, a := range f.aliases {
			lookup[normalizeHeader(a)] = f.name
		}
	}
	c := &columns{index: map[string]int{}, header: header}
	for i, h := range header {
		name, ok := lookup[normalizeHeader(h)]
		if !ok {
			if strings.TrimSpace(h) == "" {
				c.warnings = append(c.warnings, fmt.Sprintf("column %d has no name and is ignored", i+1))
			} else {
				c.warnings = append(c.warnings, fmt.Sprintf("column %q is not a known column and is ignored", h))
			}
			continue
		}
		if j, dup := c.index[name]; dup {
			return nil, fmt.Errorf("columns %q and %q both give %s", header[j], h, name)
		}
		c.index[name] = i
	}
	var missing []string
	for _, f := range fields {
		if _, ok := c.index[f.name]; f.required && !ok {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("the header has no column for %s (accepted names are in docs/import-export.md)", strings.Join(missing, ", "))
	}
	return c, nil
}

// row reads one record's fields by canonical name and collects what is
// wrong with them, so that a row reports every bad column at once.
type row struct {
	line   int64
	fields []string
	cols   *columns
	errs   []RowError
}

// str is the trimmed value of a column; "" when the column is absent or
// the cell empty (an empty cell leaves a stored value as it is).
func (r *row) str(name string) string {
	i, ok := r.cols.index[name]
	if !ok {
		return ""
	}
	return strings.TrimSpace(r.fields[i])
}

// raw is a cell untrimmed (names and descriptions keep their spaces).
func (r *row) raw(name string) string {
	i, ok := r.cols.index[name]
	if !ok {
		return ""
	}
	return r.fields[i]
}

func (r *row) opt(name string) *string {
	if v := r.raw(name); strings.TrimSpace(v) != "" {
		return &v
	}
	return nil
}

func (r *row) fail(name, format string, args ...any) {
	col := name
	if i, ok := r.cols.index[name]; ok {
		col = r.cols.header[i]
	}
	r.errs = append(r.errs, RowError{Line: r.line, Column: col, Reason: fmt.Sprintf(format, args...), Value: clip(r.str(name))})
}

// domainError files an error from the domain packages under the column it
// names: their messages quote the API field first ('partner_key' …).
func (r *row) domainError(err error) {
	msg := errs.MessageOf(err)
	name := ""
	if strings.HasPrefix(msg, "'") {
		if end := strings.Index(msg[1:], "'"); end > 0 {
			name = msg[1 : end+1]
		}
	}
	if _, ok := r.cols.index[name]; !ok {
		name = r.columnFor(name)
	}
	col := name
	if i, ok := r.cols.index[name]; ok {
		col = r.cols.header[i]
	}
	r.errs = append(r.errs, RowError{Line: r.line, Column: col, Reason: msg, Value: clip(r.str(name))})
}

// columnFor maps an API field a domain error names onto the column of
// this file that gave it (a customer named by email, say, rather than key).
func (r *row) columnFor(name string) string {
	switch name {
	case "customer_key", "customer_external_key", "customer_email":
		for _, c := range []string{"customer", "customer_key", "customer_external_key", "customer_email"} {
			if r.str(c) != "" {
				return c
			}
		}
	case "group_key":
		return "group_key"
	}
	return name
}

func (r *row) int(name string) *int64 {
	s := r.str(name)
	if s == "" {
		return nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		r.fail(name, "must be a whole number of minor units (cents), such as 1999 for 19.99")
		return nil
	}
	return &v
}

// time reads ISO 8601 (with or without a time and zone; UTC when none is
// given) or epoch milliseconds.
func (r *row) time(name string) *int64 {
	s := r.str(name)
	if s == "" {
		return nil
	}
	v, ok := parseTime(s)
	if !ok {
		r.fail(name, "must be an ISO 8601 date or time (2024-05-01, 2024-05-01T12:00:00Z) or epoch milliseconds")
		return nil
	}
	return &v
}

var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999", "2006-01-02T15:04Z07:00", "2006-01-02T15:04", "2006-01-02"}

func parseTime(s string) (int64, bool) {
	if s[0] >= '0' && s[0] <= '9' && !strings.ContainsAny(s, "-:T ") {
		v, err := strconv.ParseInt(s, 10, 64)
		return v, err == nil && v >= 0
	}
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			if t.Year() < 1970 || t.Year() > 9999 {
				return 0, false
			}
			return t.UnixMilli(), true
		}
	}
	return 0, false
}

func (r *row) bool(name string) *bool {
	switch strings.ToLower(r.str(name)) {
	case "":
		return nil
	case "true", "1", "yes", "y":
		t := true
		return &t
	case "false", "0", "no", "n":
		f := false
		return &f
	}
	r.fail(name, "must be true or false")
	return nil
}

func (r *row) flag(name string) bool {
	b := r.bool(name)
	return b != nil && *b
}

// object reads a JSON object; array a JSON array.
func (r *row) object(name string) json.RawMessage { return r.json(name, '{', "a JSON object") }
func (r *row) array(name string) json.RawMessage  { return r.json(name, '[', "a JSON array") }

func (r *row) json(name string, open byte, what string) json.RawMessage {
	s := r.str(name)
	if s == "" {
		return nil
	}
	if s[0] != open || !json.Valid([]byte(s)) {
		r.fail(name, "must be %s", what)
		return nil
	}
	return json.RawMessage(s)
}

// tags reads a JSON array of strings or a comma-separated list.
func (r *row) tags(name string) *[]string {
	s := r.str(name)
	if s == "" {
		return nil
	}
	var tags []string
	if strings.HasPrefix(s, "[") {
		if err := json.Unmarshal([]byte(s), &tags); err != nil {
			r.fail(name, "must be a JSON array of strings or a comma-separated list")
			return nil
		}
	} else {
		for _, t := range strings.Split(s, ",") {
			if t = strings.TrimSpace(t); t != "" {
				tags = append(tags, t)
			}
		}
	}
	if tags == nil {
		tags = []string{}
	}
	return &tags
}
