package program

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/partnerd/partnerd/internal/errs"
	"github.com/partnerd/partnerd/internal/outbox"
	"github.com/partnerd/partnerd/internal/secret"
	"github.com/partnerd/partnerd/internal/store"
)

// Partnership is one partner's membership in the company's program.
type Partnership struct {
	ID           int64
	Key          string
	PartnerKey   string
	Email        string
	FirstName    string
	LastName     string
	ManagerEmail *string
	ManagerName  *string
	Tags         []string
	Fields       json.RawMessage
	Meta         json.RawMessage
	Test         bool
	Archived     bool
	JoinedAt     int64
	CreatedAt    int64
	UpdatedAt    int64
	Group        Group
	Company      CompanyRef
}

const partnershipCols = `p.id, p.key, p.partner_key, p.email, p.first_name, p.last_name, p.manager_email, p.manager_name,
	p.tags, p.fields, p.meta, p.test, p.archived, p.joined_at, p.created_at, p.updated_at, c.key, c.name, ` + groupCols

const partnershipFrom = "partnerships p JOIN groups g ON g.id = p.group_id JOIN companies c ON c.id = p.company_id"

func scanPartnership(sc store.Scanner) (Partnership, error) {
	var p Partnership
	var tags, fields, meta, features string
	err := sc.Scan(&p.ID, &p.Key, &p.PartnerKey, &p.Email, &p.FirstName, &p.LastName, &p.ManagerEmail, &p.ManagerName,
		&tags, &fields, &meta, &p.Test, &p.Archived, &p.JoinedAt, &p.CreatedAt, &p.UpdatedAt, &p.Company.Key, &p.Company.Name,
		&p.Group.ID, &p.Group.Key, &p.Group.Name, &p.Group.Slug, &p.Group.Default, &p.Group.Archived, &features,
		&p.Group.CreatedAt, &p.Group.UpdatedAt)
	if err != nil {
		return p, fmt.Errorf("scan partnership: %w", err)
	}
	if err := json.Unmarshal([]byte(tags), &p.Tags); err != nil {
		return p, fmt.Errorf("decode partnership tags: %w", err)
	}
	p.Fields, p.Meta, p.Group.Features = json.RawMessage(fields), json.RawMessage(meta), json.RawMessage(features)
	return p, nil
}

// PartnershipInput is what a caller sends to create or update a
// partnership. A nil field is left as it is; an empty ManagerEmail or
// ManagerName clears it.
type PartnershipInput struct {
	Email        *string
	FirstName    *string
	LastName     *string
	GroupKey     *string
	PartnerKey   *string
	ManagerEmail *string
	ManagerName  *string
	Tags         *[]string
	Fields       json.RawMessage // a JSON array of field objects
	Meta         json.RawMessage // a JSON object (meta or field_data)
}

var partnerKeyRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$`)

// ValidPartnerKey tells whether k can be a partner key: it appears in
// referral links, so it is limited to letters, digits, '_', '.' and '-'.
func ValidPartnerKey(k string) bool { return partnerKeyRe.MatchString(k) }

func (s *Service) groupForInput(ctx context.Context, q store.Querier, companyID int64, key *string) (int64, error) {
	var id int64
	var err error
	if key == nil || *key == "" {
		err = q.QueryRow(ctx, "SELECT id FROM groups WHERE company_id = ? AND is_default = 1", companyID).Scan(&id)
	} else {
		err = q.QueryRow(ctx, "SELECT id FROM groups WHERE company_id = ? AND key = ?", companyID, *key).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return 0, errs.E(errs.Invalid, "'group_key' does not match any group of this company: %s", *key)
		}
	}
	if err != nil {
		return 0, fmt.Errorf("find group: %w", err)
	}
	return id, nil
}

// derivePartnerKey makes a partner key from an email's local part.
func derivePartnerKey(email string) string {
	local := email[:strings.Index(email, "@")]
	k := nonSlug.ReplaceAllString(local, "")
	if k == "" {
		k = "partner"
	}
	if len(k) > 40 {
		k = k[:40]
	}
	return k
}

// freePartnerKey derives a partner key from an email that no partnership
// of the company has yet: the local part, then with 2, 3, … appended.
func freePartnerKey(ctx context.Context, q store.Querier, companyID int64, email string) (string, error) {
	base := derivePartnerKey(email)
	key := base
	for i := 2; ; i++ {
		var n int
		if err := q.QueryRow(ctx, "SELECT COUNT(*) FROM partnerships WHERE company_id = ? AND partner_key = ?", companyID, key).Scan(&n); err != nil {
			return "", fmt.Errorf("check partner key: %w", err)
		}
		if n == 0 {
			return key, nil
		}
		key = fmt.Sprintf("%s%d", base, i)
	}
}

// CreatePartnership adds a partner to the program. Partnerships created with
// test keys are test partnerships.
func (s *Service) CreatePartnership(ctx context.Context, p Principal, in PartnershipInput) (Partnership, error) {
	if in.Email == nil {
		return Partnership{}, errs.E(errs.Invalid, "'email' is a required property")
	}
	email, err := NormalizeEmail("email", *in.Email)
	if err != nil {
		return Partnership{}, err
	}
	var out Partnership
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		groupID, err := s.groupForInput(ctx, tx, p.CompanyID, in.GroupKey)
		if err != nil {
			return err
		}
		var exists int
		if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM partnerships WHERE company_id = ? AND email = ?", p.CompanyID, email).Scan(&exists); err != nil {
			return fmt.Errorf("check email: %w", err)
		}
		if exists > 0 {
			return errs.E(errs.Conflict, "'email' is already used by a partnership in this program: %s", email)
		}
		partnerKey := ""
		if in.PartnerKey != nil && *in.PartnerKey != "" {
			partnerKey = *in.PartnerKey
			if !ValidPartnerKey(partnerKey) {
				return errs.E(errs.Invalid, "'partner_key' may contain only letters, digits, '_', '.' and '-' (at most 255): %q", partnerKey)
			}
		} else if partnerKey, err = freePartnerKey(ctx, tx, p.CompanyID, email); err != nil {
			return err
		}
		now := s.now()
		key := secret.Key("part")
		tags := "[]"
		if in.Tags != nil {
			b, _ := json.Marshal(*in.Tags)
			tags = string(b)
		}
		var id int64
		err = tx.QueryRow(ctx, `INSERT INTO partnerships (key, company_id, group_id, partner_key, email, first_name, last_name,
			manager_email, manager_name, tags, fields, meta, test, joined_at, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			key, p.CompanyID, groupID, partnerKey, email, deref(in.FirstName), deref(in.LastName),
			emptyToNil(in.ManagerEmail), emptyToNil(in.ManagerName), tags, rawOr(in.Fields, "[]"), rawOr(in.Meta, "{}"),
			store.Bool(p.Test), now, now, now).Scan(&id)
		if store.IsUniqueViolation(err) {
			return errs.E(errs.Conflict, "'partner_key' is already used in this program: %s", partnerKey)
		}
		if err != nil {
			return fmt.Errorf("insert partnership: %w", err)
		}
		if err := createDefaultLink(ctx, tx, p.CompanyID, id, partnerKey, now); err != nil {
			return err
		}
		if err := outbox.Emit(ctx, tx, p.CompanyID, outbox.PartnershipCreated, outbox.KindPartnership, id, now); err != nil {
			return err
		}
		out, err = s.partnershipBy(ctx, tx, Principal{CompanyID: p.CompanyID}, "p.key = ?", key)
		return err
	})
	return out, err
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func emptyToNil(s *string) any {
	if s == nil || *s == "" {
		return nil
	}
	return *s
}

func rawOr(r json.RawMessage, def string) string {
	if len(r) == 0 || string(r) == "null" {
		return def
	}
	return string(r)
}

func (s *Service) partnershipBy(ctx context.Context, q store.Querier, p Principal, cond string, args ...any) (Partnership, error) {
	query, all := p.Scoped("SELECT "+partnershipCols+" FROM "+partnershipFrom, "p.company_id", "p.id", cond, args...)
	return store.One(ctx, q, "partnership", scanPartnership, query, all...)
}

// GetPartnership finds a partnership by its key, its partner key or its
// partner's email, as PartnerStack's retrieve endpoint does.
func (s *Service) GetPartnership(ctx context.Context, p Principal, ident string) (Partnership, error) {
	return s.partnershipBy(ctx, s.db, p, "(p.key = ? OR p.partner_key = ? OR p.email = ?)", ident, ident, strings.ToLower(ident))
}

// UpdatePartnership changes the fields set in in.
func (s *Service) UpdatePartnership(ctx context.Context, p Principal, ident string, in PartnershipInput) (Partnership, error) {
	var out Partnership
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		cur, err := s.partnershipBy(ctx, tx, p, "(p.key = ? OR p.partner_key = ? OR p.email = ?)", ident, ident, strings.ToLower(ident))
		if err != nil {
			return err
		}
		sets := []string{}
		args := []any{}
		set := func(col string, v any) { sets = append(sets, col+" = ?"); args = append(args, v) }
		if in.Email != nil {
			email, err := NormalizeEmail("email", *in.Email)
			if err != nil {
				return err
			}
			set("email", email)
		}
		if in.FirstName != nil {
			set("first_name", *in.FirstName)
		}
		if in.LastName != nil {
			set("last_name", *in.LastName)
		}
		if in.GroupKey != nil {
			if *in.GroupKey == "" {
				return errs.E(errs.Invalid, "'group_key' must not be empty")
			}
			gid, err := s.groupForInput(ctx, tx, p.CompanyID, in.GroupKey)
			if err != nil {
				return err
			}
			set("group_id", gid)
		}
		if in.PartnerKey != nil {
			if !ValidPartnerKey(*in.PartnerKey) {
				return errs.E(errs.Invalid, "'partner_key' may contain only letters, digits, '_', '.' and '-' (at most 255): %q", *in.PartnerKey)
			}
			if cur.Test && *in.PartnerKey != cur.PartnerKey && cur.PartnerKey == TestPartnerKey {
				return errs.E(errs.Invalid, "'partner_key' of the test partner %s cannot change", TestPartnerKey)
			}
			set("partner_key", *in.PartnerKey)
		}
		if in.ManagerEmail != nil {
			if *in.ManagerEmail != "" {
				if _, err := NormalizeEmail("manager_email", *in.ManagerEmail); err != nil {
					return err
				}
			}
			set("manager_email", emptyToNil(in.ManagerEmail))
		}
		if in.ManagerName != nil {
			set("manager_name", emptyToNil(in.ManagerName))
		}
		if in.Tags != nil {
			b, _ := json.Marshal(*in.Tags)
			set("tags", string(b))
		}
		if len(in.Fields) > 0 {
			set("fields", rawOr(in.Fields, "[]"))
		}
		if len(in.Meta) > 0 {
			set("meta", rawOr(in.Meta, "{}"))
		}
		if len(sets) == 0 {
			out = cur
			return nil
		}
		set("updated_at", s.now())
		args = append(args, cur.ID)
		if _, err := tx.Exec(ctx, "UPDATE partnerships SET "+strings.Join(sets, ", ")+" WHERE id = ?", args...); err != nil {
			if store.IsUniqueViolation(err) {
				return errs.E(errs.Conflict, "'partner_key' or 'email' is already used by another partnership in this program")
			}
			return fmt.Errorf("update partnership: %w", err)
		}
		if err := outbox.Emit(ctx, tx, p.CompanyID, outbox.PartnershipUpdated, outbox.KindPartnership, cur.ID, s.now()); err != nil {
			return err
		}
		out, err = s.partnershipBy(ctx, tx, p, "p.id = ?", cur.ID)
		return err
	})
	return out, err
}

// ArchivePartnership archives a partnership: it leaves lists unless archived
// items are asked for, and its data stays.
func (s *Service) ArchivePartnership(ctx context.Context, p Principal, ident string) (Partnership, error) {
	var out Partnership
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		cur, err := s.partnershipBy(ctx, tx, p, "(p.key = ? OR p.partner_key = ? OR p.email = ?)", ident, ident, strings.ToLower(ident))
		if err != nil {
			return err
		}
		if !cur.Archived {
			if _, err := tx.Exec(ctx, "UPDATE partnerships SET archived = 1, updated_at = ? WHERE id = ?", s.now(), cur.ID); err != nil {
				return fmt.Errorf("archive partnership: %w", err)
			}
			if err := outbox.Emit(ctx, tx, p.CompanyID, outbox.PartnershipUpdated, outbox.KindPartnership, cur.ID, s.now()); err != nil {
				return err
			}
		}
		out, err = s.partnershipBy(ctx, tx, p, "p.id = ?", cur.ID)
		return err
	})
	return out, err
}

// PartnershipFilter narrows a partnership list.
type PartnershipFilter struct {
	GroupKey        string
	Group           string // group name with spaces and special characters removed (its slug)
	PartnerKey      string
	PartnershipKey  string
	Email           string
	IncludeArchived bool
}

// ListPartnerships lists partnerships the principal may see.
func (s *Service) ListPartnerships(ctx context.Context, p Principal, f PartnershipFilter, page store.Page) ([]Partnership, store.Result, error) {
	spec := p.List(partnershipCols, partnershipFrom, "p", "p.id")
	spec.WhereSet("g.key = ?", f.GroupKey)
	if f.Group != "" {
		spec.Where("g.slug = ?", Slugify(f.Group))
	}
	spec.WhereSet("p.partner_key = ?", f.PartnerKey)
	spec.WhereSet("p.key = ?", f.PartnershipKey)
	if f.Email != "" {
		spec.Where("p.email = ?", strings.ToLower(strings.TrimSpace(f.Email)))
	}
	if !f.IncludeArchived {
		spec.Where("p.archived = 0")
	}
	page.Apply(&spec, "p")
	return store.List(ctx, s.db, spec, scanPartnership)
}
