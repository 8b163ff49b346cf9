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

// Imports create or update one object per row inside the importer's
// transaction. A row names its object by natural keys (a key, a partner
// key, a customer_key, an email), so importing the same row twice finds
// the stored object and changes nothing. Errors name the offending field
// in quotes, as every domain error does, so the importer can point at the
// column.

// Outcome is what importing one row did.
type Outcome string

// The outcomes of a row that was not rejected.
const (
	Created   Outcome = "created"
	Updated   Outcome = "updated"
	Unchanged Outcome = "unchanged"
)

var importKeyRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,254}$`)

// CheckImportKey refuses a key a file gives that cannot be an object's
// key: keys appear in URLs, so they are limited like partner keys (and
// ':'). An empty key is for the caller to refuse or generate.
func CheckImportKey(field, k string) error {
	if k != "" && !importKeyRe.MatchString(k) {
		return errs.E(errs.Invalid, "'%s' may contain only letters, digits, '_', '.', ':' and '-' (at most 255): %q", field, k)
	}
	return nil
}

// GroupImport is one row of a group import.
type GroupImport struct {
	Key       string
	Name      string
	Features  json.RawMessage
	Archived  *bool
	CreatedAt *int64
}

// ImportGroup creates the row's group, or updates the group with its key
// (or, without one, its slug).
func (s *Service) ImportGroup(ctx context.Context, tx *store.Tx, p Principal, in GroupImport) (Outcome, error) {
	name := strings.TrimSpace(in.Name)
	slug := Slugify(name)
	if slug == "" {
		return "", errs.E(errs.Invalid, "'name' must contain at least one letter or digit")
	}
	if err := CheckImportKey("key", in.Key); err != nil {
		return "", err
	}
	features := rawOr(in.Features, "{}")
	cur, err := s.importedGroup(ctx, tx, p.CompanyID, in.Key, slug)
	if err != nil {
		return "", err
	}
	now := s.now()
	if cur == nil {
		key := in.Key
		if key == "" {
			key = secret.Key("grup")
		}
		created := now
		if in.CreatedAt != nil {
			created = *in.CreatedAt
		}
		_, err := tx.Exec(ctx, `INSERT INTO groups (key, company_id, name, slug, archived, features, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, key, p.CompanyID, name, slug, store.Bool(in.Archived != nil && *in.Archived), features, created, now)
		if err != nil {
			return "", fmt.Errorf("insert group: %w", err)
		}
		return Created, nil
	}
	archived := cur.Archived
	if in.Archived != nil {
		archived = *in.Archived
	}
	if len(in.Features) == 0 {
		features = string(cur.Features)
	}
	if cur.Name == name && cur.Archived == archived && sameJSON(string(cur.Features), features) {
		return Unchanged, nil
	}
	if cur.Default && archived {
		return "", errs.E(errs.Invalid, "'archived': the default group cannot be archived")
	}
	if _, err := tx.Exec(ctx, "UPDATE groups SET name = ?, slug = ?, archived = ?, features = ?, updated_at = ? WHERE id = ?",
		name, slug, store.Bool(archived), features, now, cur.ID); err != nil {
		return "", fmt.Errorf("update group: %w", err)
	}
	return Updated, nil
}

// importedGroup finds the group a row names: by key, else by slug. A key
// and a slug that name two different groups are a conflict, and so is a
// key taken by another company.
func (s *Service) importedGroup(ctx context.Context, tx *store.Tx, companyID int64, key, slug string) (*Group, error) {
	bySlug, err := s.groupBy(ctx, tx, companyID, "g.slug = ?", slug)
	if err != nil && errs.CodeOf(err) != errs.NotFound {
		return nil, err
	}
	if key == "" {
		if err != nil {
			return nil, nil
		}
		return &bySlug, nil
	}
	byKey, kerr := s.groupBy(ctx, tx, companyID, "g.key = ?", key)
	switch {
	case kerr == nil:
		if err == nil && bySlug.ID != byKey.ID {
			return nil, errs.E(errs.Conflict, "'name' is already used by another group of this program (slug %s)", slug)
		}
		return &byKey, nil
	case errs.CodeOf(kerr) != errs.NotFound:
		return nil, kerr
	case err == nil:
		// The program already has this group under another key (the
		// default group every program starts with, say): the stored key stays.
		return &bySlug, nil
	}
	return nil, KeyFree(ctx, tx, "groups", "group", key)
}

// KeyFree refuses a key a file gives for a new object when another
// program's object of that table has it: object keys are unique across the
// database.
func KeyFree(ctx context.Context, q store.Querier, table, what, key string) error {
	var n int
	if err := q.QueryRow(ctx, "SELECT COUNT(*) FROM "+table+" WHERE key = ?", key).Scan(&n); err != nil {
		return fmt.Errorf("check %s key: %w", table, err)
	}
	if n > 0 {
		return errs.E(errs.Conflict, "'key' is already used by another program's %s: %s", what, key)
	}
	return nil
}

func sameJSON(a, b string) bool {
	if a == b {
		return true
	}
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	ja, _ := json.Marshal(x)
	jb, _ := json.Marshal(y)
	return string(ja) == string(jb)
}

// PartnershipImport is one row of a partner import. Nil fields are left
// as stored (or defaulted on create).
type PartnershipImport struct {
	Key          string
	PartnerKey   string
	Email        string
	FirstName    *string
	LastName     *string
	GroupKey     string // a group's key (or slug)
	GroupName    string // a group's name, used when GroupKey is empty or names no group; the default group when both are empty
	ManagerEmail *string
	ManagerName  *string
	Tags         *[]string
	Fields       json.RawMessage
	Meta         json.RawMessage
	Test         bool
	Archived     *bool
	JoinedAt     *int64
	CreatedAt    *int64
}

// ImportPartnership creates the row's partnership or updates the one its
// key, partner key or email names.
func (s *Service) ImportPartnership(ctx context.Context, tx *store.Tx, p Principal, in PartnershipImport) (Outcome, error) {
	if in.Email == "" {
		return "", errs.E(errs.Invalid, "'email' is a required property")
	}
	email, err := NormalizeEmail("email", in.Email)
	if err != nil {
		return "", err
	}
	if err := CheckImportKey("key", in.Key); err != nil {
		return "", err
	}
	if in.PartnerKey != "" && !ValidPartnerKey(in.PartnerKey) {
		return "", errs.E(errs.Invalid, "'partner_key' may contain only letters, digits, '_', '.' and '-' (at most 255): %q", in.PartnerKey)
	}
	if in.ManagerEmail != nil && *in.ManagerEmail != "" {
		if _, err := NormalizeEmail("manager_email", *in.ManagerEmail); err != nil {
			return "", err
		}
	}
	cur, err := s.importedPartnership(ctx, tx, p, in.Key, in.PartnerKey, email)
	if err != nil {
		return "", err
	}
	var groupID int64
	if in.GroupKey != "" || in.GroupName != "" || cur == nil {
		if groupID, err = s.importGroupID(ctx, tx, p.CompanyID, in.GroupKey, in.GroupName); err != nil {
			return "", err
		}
	}
	if cur == nil {
		return s.insertImportedPartnership(ctx, tx, p, in, email, groupID)
	}
	sets, args := []string{}, []any{}
	set := func(col string, changed bool, v any) {
		if changed {
			sets, args = append(sets, col+" = ?"), append(args, v)
		}
	}
	set("email", email != cur.Email, email)
	set("partner_key", in.PartnerKey != "" && in.PartnerKey != cur.PartnerKey, in.PartnerKey)
	set("first_name", in.FirstName != nil && *in.FirstName != cur.FirstName, deref(in.FirstName))
	set("last_name", in.LastName != nil && *in.LastName != cur.LastName, deref(in.LastName))
	set("group_id", groupID != 0 && groupID != cur.Group.ID, groupID)
	set("manager_email", in.ManagerEmail != nil && deref(in.ManagerEmail) != deref(cur.ManagerEmail), emptyToNil(in.ManagerEmail))
	set("manager_name", in.ManagerName != nil && deref(in.ManagerName) != deref(cur.ManagerName), emptyToNil(in.ManagerName))
	if in.Tags != nil {
		b, _ := json.Marshal(*in.Tags)
		old, _ := json.Marshal(cur.Tags)
		set("tags", string(b) != string(old), string(b))
	}
	set("fields", len(in.Fields) > 0 && !sameJSON(string(in.Fields), string(cur.Fields)), rawOr(in.Fields, "[]"))
	set("meta", len(in.Meta) > 0 && !sameJSON(string(in.Meta), string(cur.Meta)), rawOr(in.Meta, "{}"))
	set("archived", in.Archived != nil && *in.Archived != cur.Archived, store.Bool(in.Archived != nil && *in.Archived))
	set("joined_at", in.JoinedAt != nil && *in.JoinedAt != cur.JoinedAt, in.JoinedAt)
	if len(sets) == 0 {
		return Unchanged, nil
	}
	if cur.PartnerKey == TestPartnerKey && cur.Test && in.PartnerKey != "" && in.PartnerKey != TestPartnerKey {
		return "", errs.E(errs.Invalid, "'partner_key' of the test partner %s cannot change", TestPartnerKey)
	}
	now := s.now()
	sets, args = append(sets, "updated_at = ?"), append(args, now, cur.ID)
	if _, err := tx.Exec(ctx, "UPDATE partnerships SET "+strings.Join(sets, ", ")+" WHERE id = ?", args...); err != nil {
		return "", fmt.Errorf("update partnership: %w", err)
	}
	if err := outbox.Emit(ctx, tx, p.CompanyID, outbox.PartnershipUpdated, outbox.KindPartnership, cur.ID, now); err != nil {
		return "", err
	}
	return Updated, nil
}

func (s *Service) insertImportedPartnership(ctx context.Context, tx *store.Tx, p Principal, in PartnershipImport, email string, groupID int64) (Outcome, error) {
	partnerKey := in.PartnerKey
	if partnerKey == "" {
		var err error
		if partnerKey, err = freePartnerKey(ctx, tx, p.CompanyID, email); err != nil {
			return "", err
		}
	}
	key := in.Key
	if key == "" {
		key = secret.Key("part")
	}
	now := s.now()
	created := now
	if in.CreatedAt != nil {
		created = *in.CreatedAt
	}
	joined := created
	if in.JoinedAt != nil {
		joined = *in.JoinedAt
	}
	tags := "[]"
	if in.Tags != nil {
		b, _ := json.Marshal(*in.Tags)
		tags = string(b)
	}
	var id int64
	err := tx.QueryRow(ctx, `INSERT INTO partnerships (key, company_id, group_id, partner_key, email, first_name, last_name,
		manager_email, manager_name, tags, fields, meta, test, archived, joined_at, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		key, p.CompanyID, groupID, partnerKey, email, deref(in.FirstName), deref(in.LastName), emptyToNil(in.ManagerEmail),
		emptyToNil(in.ManagerName), tags, rawOr(in.Fields, "[]"), rawOr(in.Meta, "{}"), store.Bool(p.Test || in.Test),
		store.Bool(in.Archived != nil && *in.Archived), joined, created, now).Scan(&id)
	if err != nil {
		return "", fmt.Errorf("insert partnership: %w", err)
	}
	if err := createDefaultLink(ctx, tx, p.CompanyID, id, partnerKey, now); err != nil {
		return "", err
	}
	if err := outbox.Emit(ctx, tx, p.CompanyID, outbox.PartnershipCreated, outbox.KindPartnership, id, now); err != nil {
		return "", err
	}
	return Created, nil
}

// importedPartnership finds the partnership a row names. Its key, partner
// key and email must not name different partnerships: that row would merge
// two partners, so it is rejected.
func (s *Service) importedPartnership(ctx context.Context, tx *store.Tx, p Principal, key, partnerKey, email string) (*Partnership, error) {
	scope := Principal{CompanyID: p.CompanyID}
	var found *Partnership
	for _, by := range []struct{ field, cond, val string }{
		{"key", "p.key = ?", key}, {"partner_key", "p.partner_key = ?", partnerKey}, {"email", "p.email = ?", email},
	} {
		if by.val == "" {
			continue
		}
		got, err := s.partnershipBy(ctx, tx, scope, by.cond, by.val)
		if errs.CodeOf(err) == errs.NotFound {
			continue
		}
		if err != nil {
			return nil, err
		}
		if found != nil && found.ID != got.ID {
			return nil, errs.E(errs.Conflict, "'%s' %s belongs to another partnership (%s) than the row's other keys (%s)", by.field, by.val, got.Key, found.Key)
		}
		found = &got
	}
	if found == nil && key != "" {
		if err := KeyFree(ctx, tx, "partnerships", "partnership", key); err != nil {
			return nil, err
		}
	}
	if found != nil && p.Test && !found.Test {
		return nil, errs.E(errs.Invalid, "test keys can only change test partnerships")
	}
	return found, nil
}

// importGroupID finds a group by key (or slug), else by name; with
// neither, the default group. A key another program's export gave its
// default group is not found here, and the name ("Default") finds ours.
func (s *Service) importGroupID(ctx context.Context, q store.Querier, companyID int64, key, name string) (int64, error) {
	if key == "" && name == "" {
		return s.groupForInput(ctx, q, companyID, nil)
	}
	var id int64
	for _, ref := range []string{key, name} {
		if ref == "" {
			continue
		}
		err := q.QueryRow(ctx, "SELECT id FROM groups WHERE company_id = ? AND (key = ? OR slug = ?) ORDER BY id LIMIT 1",
			companyID, ref, Slugify(ref)).Scan(&id)
		if err == nil {
			return id, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return 0, fmt.Errorf("find group: %w", err)
		}
	}
	field, ref := "group_key", key
	if key == "" {
		field, ref = "group", name
	}
	return 0, errs.E(errs.Invalid, "'%s' does not match any group's key or name in this program (import groups first): %s", field, ref)
}

// CustomerImport is one row of a customer import. Nil fields are left as
// stored (or defaulted on create).
type CustomerImport struct {
	Key         string
	CustomerKey string
	Email       string
	Name        *string
	PartnerKey  string
	ProviderKey *string
	SourceType  string
	Meta        json.RawMessage
	SubIDs      json.RawMessage
	Test        bool
	Archived    *bool
	CreatedAt   *int64
}

// importSources are the source_type values a customer row may carry.
var importSources = map[string]bool{SourceAPI: true, SourceAPIv1: true, SourceJS: true, SourceS2S: true, SourceImport: true,
	SourceLead: true, SourceDeal: true}

// SourceImport is the source_type of a customer created by an import
// whose file names none.
const SourceImport = "import"

// ImportCustomer creates the row's customer, attributed to its partner,
// or updates the customer its key, customer_key or (with neither) email
// names. A stored customer keeps its partnership: a row attributing it to
// another partner is rejected. hook, when set, runs for a new customer as
// CreateCustomer's does (sign-up rewards, waiting billing events).
func (s *Service) ImportCustomer(ctx context.Context, tx *store.Tx, p Principal, in CustomerImport, hook CustomerHook) (Outcome, error) {
	email := ""
	if in.Email != "" {
		var err error
		if email, err = NormalizeEmail("email", in.Email); err != nil {
			return "", err
		}
	}
	if err := CheckImportKey("key", in.Key); err != nil {
		return "", err
	}
	if in.SourceType != "" && !importSources[in.SourceType] {
		return "", errs.E(errs.Invalid, "'source_type' must be one of api, api_v1, js, s2s, import, lead, deal: %q", in.SourceType)
	}
	cur, err := s.importedCustomer(ctx, tx, p, in.Key, in.CustomerKey, email)
	if err != nil {
		return "", err
	}
	if cur == nil {
		return s.insertImportedCustomer(ctx, tx, p, in, email, hook)
	}
	if in.PartnerKey != "" && in.PartnerKey != cur.PartnerKey {
		return "", errs.E(errs.Conflict, "'partner_key' %s differs from the partner the customer %s is attributed to (%s); attribution does not change",
			in.PartnerKey, cur.Key, cur.PartnerKey)
	}
	sets, args := []string{}, []any{}
	set := func(col string, changed bool, v any) {
		if changed {
			sets, args = append(sets, col+" = ?"), append(args, v)
		}
	}
	set("email", email != "" && email != cur.Email, email)
	set("customer_key", in.CustomerKey != "" && in.CustomerKey != deref(cur.CustomerKey), in.CustomerKey)
	set("name", in.Name != nil && *in.Name != cur.Name, deref(in.Name))
	set("provider_key", in.ProviderKey != nil && *in.ProviderKey != deref(cur.ProviderKey), emptyToNil(in.ProviderKey))
	set("meta", len(in.Meta) > 0 && !sameJSON(string(in.Meta), string(cur.Meta)), rawOr(in.Meta, "{}"))
	set("archived", in.Archived != nil && *in.Archived != cur.Archived, store.Bool(in.Archived != nil && *in.Archived))
	if len(in.SubIDs) > 0 {
		var old string
		if err := tx.QueryRow(ctx, "SELECT sub_ids FROM customers WHERE id = ?", cur.ID).Scan(&old); err != nil {
			return "", fmt.Errorf("read sub ids: %w", err)
		}
		set("sub_ids", !sameJSON(old, string(in.SubIDs)), string(in.SubIDs))
	}
	if len(sets) == 0 {
		return Unchanged, nil
	}
	now := s.now()
	sets, args = append(sets, "updated_at = ?"), append(args, now, cur.ID)
	if _, err := tx.Exec(ctx, "UPDATE customers SET "+strings.Join(sets, ", ")+" WHERE id = ?", args...); err != nil {
		if store.IsUniqueViolation(err) {
			return "", errs.E(errs.Conflict, "'customer_key' is already used by another customer: %s", in.CustomerKey)
		}
		return "", fmt.Errorf("update customer: %w", err)
	}
	if err := outbox.Emit(ctx, tx, p.CompanyID, outbox.CustomerUpdated, outbox.KindCustomer, cur.ID, now); err != nil {
		return "", err
	}
	return Updated, nil
}

func (s *Service) importedCustomer(ctx context.Context, tx *store.Tx, p Principal, key, customerKey, email string) (*Customer, error) {
	scope := Principal{CompanyID: p.CompanyID}
	var found *Customer
	for _, by := range []struct{ field, cond, val string }{{"key", "cu.key = ?", key}, {"customer_key", "cu.customer_key = ?", customerKey}} {
		if by.val == "" {
			continue
		}
		got, err := s.customerBy(ctx, tx, scope, by.cond, by.val)
		if errs.CodeOf(err) == errs.NotFound {
			continue
		}
		if err != nil {
			return nil, err
		}
		if found != nil && found.ID != got.ID {
			return nil, errs.E(errs.Conflict, "'%s' %s belongs to another customer (%s) than the row's key (%s)", by.field, by.val, got.Key, found.Key)
		}
		found = &got
	}
	if found == nil && key == "" && customerKey == "" && email != "" {
		// A row with neither key is the customer with its email, when
		// there is exactly one.
		got, err := s.ResolveCustomer(ctx, tx, scope, CustomerRef{Email: email})
		switch {
		case err == nil:
			found = &got
		case !errors.Is(err, ErrNoCustomer):
			return nil, err
		}
	}
	if found == nil && key != "" {
		if err := KeyFree(ctx, tx, "customers", "customer", key); err != nil {
			return nil, err
		}
	}
	if found != nil && p.Test && !found.Test {
		return nil, errs.E(errs.Invalid, "test keys can only change test customers")
	}
	return found, nil
}

func (s *Service) insertImportedCustomer(ctx context.Context, tx *store.Tx, p Principal, in CustomerImport, email string, hook CustomerHook) (Outcome, error) {
	if in.PartnerKey == "" {
		return "", errs.E(errs.Invalid, "'partner_key' is a required property for a new customer")
	}
	if email == "" && in.Key == "" && in.CustomerKey == "" {
		return "", errs.E(errs.Invalid, "'email' is a required property when the row has no customer_key")
	}
	var partnershipID, groupID int64
	var partnerTest bool
	err := tx.QueryRow(ctx, "SELECT id, group_id, test FROM partnerships WHERE company_id = ? AND partner_key = ?",
		p.CompanyID, in.PartnerKey).Scan(&partnershipID, &groupID, &partnerTest)
	if errors.Is(err, sql.ErrNoRows) {
		return "", errs.E(errs.Invalid, "'partner_key' does not match any partnership in this program (import partners first): %s", in.PartnerKey)
	}
	if err != nil {
		return "", fmt.Errorf("find partnership: %w", err)
	}
	if p.Test && !partnerTest {
		return "", errs.E(errs.Invalid, "'partner_key' must name a test partner (such as %s) when using test keys", TestPartnerKey)
	}
	key := in.Key
	if key == "" {
		key = secret.Key("cus")
	}
	source := in.SourceType
	if source == "" {
		source = SourceImport
	}
	now := s.now()
	created := now
	if in.CreatedAt != nil {
		created = *in.CreatedAt
	}
	var customerKey any
	if in.CustomerKey != "" {
		customerKey = in.CustomerKey
	}
	_, err = tx.Exec(ctx, `INSERT INTO customers (key, company_id, partnership_id, customer_key, email, name, provider_key,
		meta, source_type, test, archived, created_at, updated_at, sub_ids, group_id)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		key, p.CompanyID, partnershipID, customerKey, email, deref(in.Name), emptyToNil(in.ProviderKey), rawOr(in.Meta, "{}"),
		source, store.Bool(p.Test || partnerTest || in.Test), store.Bool(in.Archived != nil && *in.Archived), created, now,
		rawOr(in.SubIDs, "{}"), groupID)
	if err != nil {
		return "", fmt.Errorf("insert customer: %w", err)
	}
	cu, err := s.customerBy(ctx, tx, Principal{CompanyID: p.CompanyID}, "cu.key = ?", key)
	if err != nil {
		return "", err
	}
	if err := outbox.Emit(ctx, tx, p.CompanyID, outbox.CustomerCreated, outbox.KindCustomer, cu.ID, now); err != nil {
		return "", err
	}
	if hook != nil {
		if err := hook(ctx, tx, cu); err != nil {
			return "", fmt.Errorf("new customer hook: %w", err)
		}
	}
	return Created, nil
}
