package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/partnerd/partnerd/internal/errs"
)

// maxBody bounds every request body; larger bodies are refused before they
// are parsed.
const maxBody = 1 << 20

type kind int

const (
	kString kind = iota
	kInteger
	kBoolean
	kObject
	kArray
	kStringArray
)

var kindName = map[kind]string{kString: "string", kInteger: "integer", kBoolean: "boolean", kObject: "object", kArray: "array", kStringArray: "array"}

// field describes one property of a request body, in the terms of the JSON
// schema PartnerStack validates with.
type field struct {
	name     string
	kind     kind
	required bool
	nullable bool
	min, max int64 // string length in characters, or integer value; 0,0 = unbounded
}

// schema is a request body's shape. A strict schema refuses properties it
// does not name, as PartnerStack's v2 API does; a lenient one ignores them,
// for v1 clients that send extras such as ip_address.
type schema struct {
	fields []field
	strict bool
}

// body is a validated request body.
type body map[string]json.RawMessage

// decodeBody reads and validates r's JSON body against sc. Every failure is
// an errs.Invalid whose message names the field.
func decodeBody(w http.ResponseWriter, r *http.Request, sc schema) (body, error) {
	raw, err := readBody(w, r)
	if err != nil {
		return nil, err
	}
	return parseBody(raw, sc)
}

// readBody reads r's body, at most maxBody bytes, as it came.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, errs.E(errs.Invalid, "request body is too large (limit %d bytes)", maxBody)
		}
		return nil, errs.E(errs.Invalid, "could not read the request body")
	}
	return raw, nil
}

func parseBody(raw []byte, sc schema) (body, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		raw = []byte("{}")
	}
	if raw[0] != '{' {
		return nil, errs.E(errs.Invalid, "request body must be a JSON object")
	}
	var b body
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&b); err != nil {
		return nil, errs.E(errs.Invalid, "malformed JSON in request body: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return nil, errs.E(errs.Invalid, "malformed JSON in request body: unexpected data after the object")
	}
	known := map[string]field{}
	for _, f := range sc.fields {
		known[f.name] = f
	}
	if sc.strict {
		var unknown []string
		for k := range b {
			if _, ok := known[k]; !ok {
				unknown = append(unknown, k)
			}
		}
		if len(unknown) > 0 {
			sort.Strings(unknown)
			return nil, errs.E(errs.Invalid, "Additional properties are not allowed ('%s' was unexpected)", strings.Join(unknown, "', '"))
		}
	}
	for _, f := range sc.fields {
		v, ok := b[f.name]
		if !ok {
			if f.required {
				return nil, errs.E(errs.Invalid, "'%s' is a required property", f.name)
			}
			continue
		}
		if err := checkField(f, v); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func checkField(f field, v json.RawMessage) error {
	s := string(v)
	if s == "null" {
		if f.nullable {
			return nil
		}
		return errs.E(errs.Invalid, "'%s' is not of type '%s' (null is not allowed)", f.name, kindName[f.kind])
	}
	wrongType := errs.E(errs.Invalid, "'%s' is not of type '%s'", f.name, kindName[f.kind])
	switch f.kind {
	case kString:
		var str string
		if json.Unmarshal(v, &str) != nil {
			return wrongType
		}
		if strings.ContainsRune(str, 0) {
			return errs.E(errs.Invalid, "'%s' must not contain NUL characters", f.name)
		}
		n := int64(utf8.RuneCountInString(str))
		if f.max > 0 && n > f.max {
			return errs.E(errs.Invalid, "'%s' is too long (maximum %d characters)", f.name, f.max)
		}
		if f.min > 0 && n < f.min {
			return errs.E(errs.Invalid, "'%s' is too short (minimum %d characters)", f.name, f.min)
		}
	case kInteger:
		if len(s) == 0 || !(s[0] == '-' || (s[0] >= '0' && s[0] <= '9')) {
			return wrongType
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			if _, ferr := strconv.ParseFloat(s, 64); ferr == nil && !strings.ContainsAny(s, ".eE") {
				return errs.E(errs.Invalid, "'%s' is out of range", f.name)
			}
			return wrongType
		}
		if (f.min != 0 || f.max != 0) && (n < f.min || n > f.max) {
			return errs.E(errs.Invalid, "'%s' must be between %d and %d", f.name, f.min, f.max)
		}
	case kBoolean:
		if s != "true" && s != "false" {
			return wrongType
		}
	case kObject:
		if s[0] != '{' {
			return wrongType
		}
	case kArray:
		if s[0] != '[' {
			return wrongType
		}
	case kStringArray:
		var arr []string
		if s[0] != '[' || json.Unmarshal(v, &arr) != nil {
			return errs.E(errs.Invalid, "'%s' is not of type 'array' of strings", f.name)
		}
		for _, x := range arr {
			if strings.ContainsRune(x, 0) {
				return errs.E(errs.Invalid, "'%s' must not contain NUL characters", f.name)
			}
			if f.max > 0 && int64(utf8.RuneCountInString(x)) > f.max {
				return errs.E(errs.Invalid, "'%s' has an item longer than %d characters", f.name, f.max)
			}
		}
	}
	return nil
}

// has tells whether the body carries name, null included.
func (b body) has(name string) bool { _, ok := b[name]; return ok }

// str returns a string property; nil when absent or null.
func (b body) str(name string) *string {
	v, ok := b[name]
	if !ok || string(v) == "null" {
		return nil
	}
	var s string
	_ = json.Unmarshal(v, &s) // validated already
	return &s
}

// strOrClear returns a string property where null means "clear": absent is
// nil, null is a pointer to "".
func (b body) strOrClear(name string) *string {
	v, ok := b[name]
	if !ok {
		return nil
	}
	if string(v) == "null" {
		empty := ""
		return &empty
	}
	return b.str(name)
}

// boolean returns a boolean property; nil when absent or null.
func (b body) boolean(name string) *bool {
	v, ok := b[name]
	if !ok || string(v) == "null" {
		return nil
	}
	t := string(v) == "true" // validated already
	return &t
}

func (b body) int(name string) *int64 {
	v, ok := b[name]
	if !ok || string(v) == "null" {
		return nil
	}
	n, _ := strconv.ParseInt(string(v), 10, 64) // validated already
	return &n
}

func (b body) strs(name string) *[]string {
	v, ok := b[name]
	if !ok || string(v) == "null" {
		return nil
	}
	var out []string
	_ = json.Unmarshal(v, &out)
	if out == nil {
		out = []string{}
	}
	return &out
}

// raw returns a property as JSON, or nil when absent.
func (b body) raw(name string) json.RawMessage { return b[name] }

// checkMetadata applies PartnerStack's limits to a transaction's metadata:
// at most 25 attributes, names up to 30 characters, values up to 100.
func checkMetadata(m json.RawMessage) error {
	if len(m) == 0 || string(m) == "null" {
		return nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(m, &obj); err != nil {
		return errs.E(errs.Invalid, "'metadata' is not of type 'object'")
	}
	if len(obj) > 25 {
		return errs.E(errs.Invalid, "'metadata' has more than 25 attributes")
	}
	for k, v := range obj {
		if utf8.RuneCountInString(k) > 30 {
			return errs.E(errs.Invalid, "'metadata' attribute name is longer than 30 characters: %q", k)
		}
		val := string(v)
		if val != "" && (val[0] == '{' || val[0] == '[') {
			return errs.E(errs.Invalid, "'metadata.%s' must be a string, number or boolean", k)
		}
		var str string
		if json.Unmarshal(v, &str) == nil {
			val = str
		}
		if utf8.RuneCountInString(val) > 100 {
			return errs.E(errs.Invalid, "'metadata.%s' is longer than 100 characters", k)
		}
	}
	return nil
}

// checkObjectArray checks that a fields[] property holds only objects.
func checkObjectArray(name string, v json.RawMessage) error {
	if len(v) == 0 || string(v) == "null" {
		return nil
	}
	var arr []map[string]json.RawMessage
	if err := json.Unmarshal(v, &arr); err != nil {
		return errs.E(errs.Invalid, "'%s' must be an array of objects", name)
	}
	return nil
}
