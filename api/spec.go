// Package apispec embeds api/openapi.yaml, the contract of partnerd's HTTP
// API, so the server can serve it and tests can check responses against it.
package apispec

import _ "embed"

// OpenAPI is the text of openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte
