package tracking

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"sync"
)

//go:embed snippet.js
var snippetJS []byte

// Snippet is the JS served at /v1/ and /partnerstack.js with its base URL
// (where createSignup posts) baked in, plain and gzipped. Renderings are
// kept per base, so serving it costs no work per request.
type Snippet struct {
	mu    sync.Mutex
	cache map[string][2][]byte
}

// Render returns the snippet for base, plain and gzipped.
func (s *Snippet) Render(base string) (plain, gz []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.cache[base]; ok {
		return v[0], v[1]
	}
	if s.cache == nil || len(s.cache) > 64 {
		s.cache = map[string][2][]byte{} // bounded: a base is a host, and there are few
	}
	plain = bytes.ReplaceAll(snippetJS, []byte("__PARTNERD_BASE__"), []byte(base))
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zw.Write(plain)
	zw.Close()
	s.cache[base] = [2][]byte{plain, buf.Bytes()}
	return plain, buf.Bytes()
}
