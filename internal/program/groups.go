package program

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/partnerd/partnerd/internal/errs"
	"github.com/partnerd/partnerd/internal/secret"
	"github.com/partnerd/partnerd/internal/store"
)

// Group is a set of partnerships that share terms.
type Group struct {
	ID        int64
	Key       string
	Name      string
	Slug      string
	Default   bool
	Archived  bool
	Features  json.RawMessage
	CreatedAt int64
	UpdatedAt int64
}

const groupCols = "g.id, g.key, g.name, g.slug, g.is_default, g.archived, g.features, g.created_at, g.updated_at"

func scanGroup(sc store.Scanner) (Group, error) {
	var g Group
	var features string
	if err := sc.Scan(&g.ID, &g.Key, &g.Name, &g.Slug, &g.Default, &g.Archived, &features, &g.CreatedAt, &g.UpdatedAt); err != nil {
		return g, fmt.Errorf("scan group: %w", err)
	}
	g.Features = json.RawMessage(features)
	return g, nil
}

var nonSlug = regexp.MustCompile(`[^a-z0-9]+`)

// Slugify turns a group name into its slug: lower case, with spaces and
// special characters removed, which is how PartnerStack's "group" filter
// names a group.
func Slugify(name string) string {
	return nonSlug.ReplaceAllString(strings.ToLower(name), "")
}

// GroupInput is what a caller sends to create a group.
type GroupInput struct {
	Name     string
	Features json.RawMessage // a JSON object, or nil
}

// CreateGroup creates a group in the company.
func (s *Service) CreateGroup(ctx context.Context, p Principal, in GroupInput) (Group, error) {
	name := strings.TrimSpace(in.Name)
	if name == "" {
		return Group{}, errs.E(errs.Invalid, "'name' must not be empty")
	}
	slug := Slugify(name)
	if slug == "" {
		return Group{}, errs.E(errs.Invalid, "'name' must contain at least one letter or digit")
	}
	features := "{}"
	if len(in.Features) > 0 && string(in.Features) != "null" {
		features = string(in.Features)
	}
	now := s.now()
	key := secret.Key("grup")
	_, err := s.db.Exec(ctx, `INSERT INTO groups (key, company_id, name, slug, features, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, key, p.CompanyID, name, slug, features, now, now)
	if store.IsUniqueViolation(err) {
		return Group{}, errs.E(errs.Conflict, "a group named like %q already exists (slug %s)", name, slug)
	}
	if err != nil {
		return Group{}, fmt.Errorf("insert group: %w", err)
	}
	return s.groupBy(ctx, s.db, p.CompanyID, "g.key = ?", key)
}

func (s *Service) groupBy(ctx context.Context, q store.Querier, companyID int64, cond string, arg any) (Group, error) {
	return store.One(ctx, q, "group", scanGroup, "SELECT "+groupCols+" FROM groups g WHERE g.company_id = ? AND "+cond, companyID, arg)
}

// ListGroups lists the company's groups.
func (s *Service) ListGroups(ctx context.Context, p Principal, page store.Page) ([]Group, store.Result, error) {
	spec := p.List(groupCols, "groups g", "g", "")
	page.Apply(&spec, "g")
	return store.List(ctx, s.db, spec, scanGroup)
}
