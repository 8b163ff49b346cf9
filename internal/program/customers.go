package program

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/partnerd/partnerd/internal/errs"
	"github.com/partnerd/partnerd/internal/outbox"
	"github.com/partnerd/partnerd/internal/secret"
	"github.com/partnerd/partnerd/internal/store"
)

// Customer is someone a partner referred, attributed once to a partnership.
type Customer struct {
	ID             int64
	Key            string
	CustomerKey    *string
	Email          string
	Name           string
	ProviderKey    *string
	Meta           json.RawMessage
	SourceType     string
	Test           bool
	Archived       bool
	CreatedAt      int64
	UpdatedAt      int64
	PartnershipID  int64
	PartnershipKey string
	PartnerKey     string
	Company        CompanyRef
	// For the reward engine: the partner's email (self-referral checks),
	// whether the partnership is archived, its group now, and the group it
	// was in when the customer signed up.
	CompanyID           int64
	PartnerEmail        string
	PartnershipArchived bool
	GroupID             int64
	SignupGroupID       *int64
	// The customer's first positive transaction (id, created_at), if any.
	FirstPaidID *int64
	FirstPaidAt *int64
	// The company's offers_version when the customer was read.
	OffersVersion int64
}

const customerCols = `cu.id, cu.key, cu.customer_key, cu.email, cu.name, cu.provider_key, cu.meta, cu.source_type, cu.test,
	cu.archived, cu.created_at, cu.updated_at, p.id, p.key, p.partner_key, c.key, c.name, p.email, p.archived, p.group_id,
	cu.group_id, cu.company_id, cu.first_paid_id, cu.first_paid_at, c.offers_version`

const customerFrom = "customers cu JOIN partnerships p ON p.id = cu.partnership_id JOIN companies c ON c.id = cu.company_id"

func scanCustomer(sc store.Scanner) (Customer, error) {
	var cu Customer
	var meta string
	err := sc.Scan(&cu.ID, &cu.Key, &cu.CustomerKey, &cu.Email, &cu.Name, &cu.ProviderKey, &meta, &cu.SourceType, &cu.Test,
		&cu.Archived, &cu.CreatedAt, &cu.UpdatedAt, &cu.PartnershipID, &cu.PartnershipKey, &cu.PartnerKey, &cu.Company.Key, &cu.Company.Name,
		&cu.PartnerEmail, &cu.PartnershipArchived, &cu.GroupID, &cu.SignupGroupID, &cu.CompanyID,
		&cu.FirstPaidID, &cu.FirstPaidAt, &cu.OffersVersion)
	if err != nil {
		return cu, fmt.Errorf("scan customer: %w", err)
	}
	cu.Meta = json.RawMessage(meta)
	return cu, nil
}

// Sources of a customer, reported as source_type.
const (
	SourceAPI   = "api"
	SourceAPIv1 = "api_v1"
	SourceJS    = "js"
	SourceS2S   = "s2s"
	SourceLead  = "lead" // converted from a lead
	SourceDeal  = "deal" // converted from a deal
)

// CustomerInput is what a caller sends to create or update a customer. On
// update a nil field is left as it is.
type CustomerInput struct {
	CustomerKey *string
	Email       *string
	Name        *string
	PartnerKey  *string
	ProviderKey *string
	Meta        json.RawMessage
	Source      string
	// Set by tracking: the click the sign-up came from.
	ClickXID string
	LinkID   int64
	SubIDs   json.RawMessage
	// EmailOptional allows a customer without an email, as PartnerStack's
	// S2S conversions do.
	EmailOptional bool
}

// CreateCustomer attributes a new customer to the partnership with the given
// partner key. A customer_key is unique within the company: sending the same
// customer_key for the same partnership again returns the stored customer
// and writes nothing (created is false); for another partnership it is a
// conflict, because a customer stays with the partner it was attributed to.
//
// A customer is test data when created with test keys or under a test
// partner; test keys may only attribute to test partners.
func (s *Service) CreateCustomer(ctx context.Context, p Principal, in CustomerInput) (cu Customer, created bool, err error) {
	email, err := checkNewCustomer(in)
	if err != nil {
		return cu, false, err
	}
	err = store.RetryUnique(func() error {
		return s.db.Tx(ctx, func(tx *store.Tx) error {
			cu, created, err = s.createCustomerIn(ctx, tx, p, in, email)
			return err
		})
	})
	return cu, created, err
}

// CreateCustomerIn is CreateCustomer inside the caller's transaction, for
// a write that creates a customer with something else (a lead or deal
// conversion). A unique violation (a racing customer_key) is returned as
// it is: the caller retries its whole transaction.
func (s *Service) CreateCustomerIn(ctx context.Context, tx *store.Tx, p Principal, in CustomerInput) (Customer, bool, error) {
	email, err := checkNewCustomer(in)
	if err != nil {
		return Customer{}, false, err
	}
	return s.createCustomerIn(ctx, tx, p, in, email)
}

// checkNewCustomer checks what a new customer needs and returns its
// normalized email.
func checkNewCustomer(in CustomerInput) (email string, err error) {
	if in.PartnerKey == nil || *in.PartnerKey == "" {
		return "", errs.E(errs.Invalid, "'partner_key' is a required property")
	}
	switch {
	case in.Email != nil && (*in.Email != "" || !in.EmailOptional):
		if email, err = NormalizeEmail("email", *in.Email); err != nil {
			return "", err
		}
	case !in.EmailOptional:
		return "", errs.E(errs.Invalid, "'email' is a required property")
	}
	if in.CustomerKey != nil && *in.CustomerKey == "" {
		return "", errs.E(errs.Invalid, "'customer_key' must not be empty (send null to leave it unset)")
	}
	return email, nil
}

func (s *Service) createCustomerIn(ctx context.Context, tx *store.Tx, p Principal, in CustomerInput, email string) (cu Customer, created bool, err error) {
	err = func() error {
		var partnershipID, groupID int64
		var partnerTest, partnerArchived bool
		err := tx.QueryRow(ctx, "SELECT id, group_id, test, archived FROM partnerships WHERE company_id = ? AND partner_key = ?",
			p.CompanyID, *in.PartnerKey).Scan(&partnershipID, &groupID, &partnerTest, &partnerArchived)
		if errors.Is(err, sql.ErrNoRows) {
			return errs.E(errs.Invalid, "'partner_key' does not match any partnership in this program: %s", *in.PartnerKey)
		}
		if err != nil {
			return fmt.Errorf("find partnership: %w", err)
		}
		if partnerArchived {
			return errs.E(errs.Invalid, "'partner_key' names an archived partnership: %s", *in.PartnerKey)
		}
		if p.Test && !partnerTest {
			return errs.E(errs.Invalid, "'partner_key' must name a test partner (such as %s) when using test keys", TestPartnerKey)
		}
		if in.CustomerKey != nil {
			existing, err := s.customerBy(ctx, tx, Principal{CompanyID: p.CompanyID}, "cu.customer_key = ?", *in.CustomerKey)
			if err == nil {
				if existing.PartnershipID != partnershipID {
					return errs.E(errs.Conflict, "'customer_key' %s is already attributed to another partnership", *in.CustomerKey)
				}
				cu = existing
				return nil
			}
			if errs.CodeOf(err) != errs.NotFound {
				return err
			}
		}
		now := s.now()
		key := secret.Key("cus")
		source := in.Source
		if source == "" {
			source = SourceAPI
		}
		var linkID, xid any
		if in.LinkID != 0 {
			linkID = in.LinkID
		}
		if in.ClickXID != "" {
			xid = in.ClickXID
		}
		_, err = tx.Exec(ctx, `INSERT INTO customers (key, company_id, partnership_id, customer_key, email, name, provider_key,
			meta, source_type, test, created_at, updated_at, click_xid, link_id, sub_ids, group_id)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			key, p.CompanyID, partnershipID, in.CustomerKey, email, deref(in.Name), emptyToNil(in.ProviderKey),
			rawOr(in.Meta, "{}"), source, store.Bool(p.Test || partnerTest), now, now, xid, linkID, rawOr(in.SubIDs, "{}"), groupID)
		if err != nil {
			return fmt.Errorf("insert customer: %w", err) // a unique violation is retried by CreateCustomer
		}
		cu, err = s.customerBy(ctx, tx, Principal{CompanyID: p.CompanyID}, "cu.key = ?", key)
		if err != nil {
			return err
		}
		if err := outbox.Emit(ctx, tx, p.CompanyID, outbox.CustomerCreated, outbox.KindCustomer, cu.ID, now); err != nil {
			return err
		}
		if s.onCustomer != nil {
			// Sign-up rewards commit with the customer or not at all.
			if err := s.onCustomer(ctx, tx, cu); err != nil {
				return fmt.Errorf("reward sign-up: %w", err)
			}
		}
		created = true
		return nil
	}()
	return cu, created, err
}

func (s *Service) customerBy(ctx context.Context, q store.Querier, p Principal, cond string, args ...any) (Customer, error) {
	query, all := p.Scoped("SELECT "+customerCols+" FROM "+customerFrom, "cu.company_id", "cu.partnership_id", cond, args...)
	return store.One(ctx, q, "customer", scanCustomer, query, all...)
}

// CustomerByID reads a company's customer by its id inside q.
func (s *Service) CustomerByID(ctx context.Context, q store.Querier, companyID, id int64) (Customer, error) {
	return s.customerBy(ctx, q, Principal{CompanyID: companyID}, "cu.id = ?", id)
}

// GetCustomer finds a customer by its key or by the vendor's customer_key.
func (s *Service) GetCustomer(ctx context.Context, p Principal, ident string) (Customer, error) {
	return s.customerBy(ctx, s.db, p, "(cu.key = ? OR cu.customer_key = ?)", ident, ident)
}

// CustomerRef names a customer the way a transaction does: exactly one of
// its fields is set. Any accepts the internal key, the customer_key or the
// email, as v1's path parameter does.
type CustomerRef struct {
	Key         string
	ExternalKey string
	Email       string
	Any         string
	ProviderKey string // the billing provider's customer id (billing webhooks)
}

// ErrNoCustomer is matched (errors.Is) by ResolveCustomer's error when no
// customer matches the reference, so that callers which can wait for the
// customer (billing webhooks) tell that apart. The API still answers 400.
var ErrNoCustomer = errors.New("program: no customer matches")

type noCustomer struct{ err error }

func (n noCustomer) Error() string        { return n.err.Error() }
func (n noCustomer) Unwrap() error        { return n.err }
func (n noCustomer) Is(target error) bool { return target == ErrNoCustomer }

// ResolveCustomer finds the customer a reference names, inside q so that
// callers can hold it in their transaction.
func (s *Service) ResolveCustomer(ctx context.Context, q store.Querier, p Principal, ref CustomerRef) (Customer, error) {
	var field, cond, val string
	var args []any
	switch {
	case ref.Key != "":
		// PartnerStack's docs call this the internal key, while v1 and real
		// integrations send their own key here, so both are accepted.
		field, cond, val = "customer_key", "(cu.key = ? OR cu.customer_key = ?)", ref.Key
		args = []any{val, val}
	case ref.ExternalKey != "":
		field, cond, val = "customer_external_key", "cu.customer_key = ?", ref.ExternalKey
		args = []any{val}
	case ref.ProviderKey != "":
		field, cond, val = "provider_key", "cu.provider_key = ?", ref.ProviderKey
		args = []any{val}
	case ref.Email != "":
		field, cond, val = "customer_email", "cu.email = ?", strings.ToLower(strings.TrimSpace(ref.Email))
		args = []any{val}
	default:
		field, cond, val = "customer_key", "(cu.key = ? OR cu.customer_key = ? OR cu.email = ?)", ref.Any
		args = []any{val, val, strings.ToLower(val)}
	}
	query := "SELECT " + customerCols + " FROM " + customerFrom + " WHERE cu.company_id = ? AND " + cond + " ORDER BY cu.id LIMIT 2"
	rows, err := q.Query(ctx, query, append([]any{p.CompanyID}, args...)...)
	if err != nil {
		return Customer{}, fmt.Errorf("find customer: %w", err)
	}
	defer rows.Close()
	var found []Customer
	for rows.Next() {
		cu, err := scanCustomer(rows)
		if err != nil {
			return Customer{}, err
		}
		found = append(found, cu)
	}
	if err := rows.Err(); err != nil {
		return Customer{}, fmt.Errorf("find customer: %w", err)
	}
	switch {
	case len(found) == 0:
		return Customer{}, noCustomer{errs.E(errs.Invalid, "'%s' does not match any customer in this program: %s", field, val)}
	case len(found) > 1:
		// One key may match one customer's key and another's customer_key
		// only by a vendor's odd choice; an email may match several.
		return Customer{}, errs.E(errs.Invalid, "'%s' matches more than one customer; use the customer's key instead: %s", field, val)
	}
	return found[0], nil
}

// UpdateCustomer changes the fields set in in. The partnership a customer is
// attributed to does not change.
func (s *Service) UpdateCustomer(ctx context.Context, p Principal, ident string, in CustomerInput) (Customer, error) {
	var out Customer
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		cur, err := s.customerBy(ctx, tx, p, "(cu.key = ? OR cu.customer_key = ?)", ident, ident)
		if err != nil {
			return err
		}
		sets := []string{}
		args := []any{}
		set := func(col string, v any) { sets = append(sets, col+" = ?"); args = append(args, v) }
		if in.PartnerKey != nil && *in.PartnerKey != cur.PartnerKey {
			return errs.E(errs.Invalid, "'partner_key' cannot change: a customer stays with the partnership it was attributed to")
		}
		if in.Email != nil {
			email, err := NormalizeEmail("email", *in.Email)
			if err != nil {
				return err
			}
			set("email", email)
		}
		if in.Name != nil {
			set("name", *in.Name)
		}
		if in.CustomerKey != nil {
			if *in.CustomerKey == "" {
				return errs.E(errs.Invalid, "'customer_key' must not be empty")
			}
			set("customer_key", *in.CustomerKey)
		}
		if in.ProviderKey != nil {
			set("provider_key", emptyToNil(in.ProviderKey))
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
		if _, err := tx.Exec(ctx, "UPDATE customers SET "+strings.Join(sets, ", ")+" WHERE id = ?", args...); err != nil {
			if store.IsUniqueViolation(err) {
				return errs.E(errs.Conflict, "'customer_key' is already used by another customer in this program: %s", deref(in.CustomerKey))
			}
			return fmt.Errorf("update customer: %w", err)
		}
		if err := outbox.Emit(ctx, tx, p.CompanyID, outbox.CustomerUpdated, outbox.KindCustomer, cur.ID, s.now()); err != nil {
			return err
		}
		out, err = s.customerBy(ctx, tx, p, "cu.id = ?", cur.ID)
		return err
	})
	return out, err
}

// ArchiveCustomer archives a customer; it keeps its key and its history, and
// new transactions for it are refused.
func (s *Service) ArchiveCustomer(ctx context.Context, p Principal, ident string) (Customer, error) {
	var out Customer
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		cur, err := s.customerBy(ctx, tx, p, "(cu.key = ? OR cu.customer_key = ?)", ident, ident)
		if err != nil {
			return err
		}
		if !cur.Archived {
			if _, err := tx.Exec(ctx, "UPDATE customers SET archived = 1, updated_at = ? WHERE id = ?", s.now(), cur.ID); err != nil {
				return fmt.Errorf("archive customer: %w", err)
			}
			if err := outbox.Emit(ctx, tx, p.CompanyID, outbox.CustomerDeleted, outbox.KindCustomer, cur.ID, s.now()); err != nil {
				return err
			}
		}
		out, err = s.customerBy(ctx, tx, p, "cu.id = ?", cur.ID)
		return err
	})
	return out, err
}

// CustomerFilter narrows a customer list.
type CustomerFilter struct {
	PartnerKey      string
	PartnershipKey  string
	GroupKey        string
	Group           string
	Email           string
	ProviderKey     string
	IncludeArchived bool
}

// ListCustomers lists customers the principal may see.
func (s *Service) ListCustomers(ctx context.Context, p Principal, f CustomerFilter, page store.Page) ([]Customer, store.Result, error) {
	spec := p.List(customerCols, customerFrom, "cu", "cu.partnership_id")
	spec.WhereRef("cu.partnership_id", "partnerships", "partner_key", p.CompanyID, f.PartnerKey)
	spec.WhereRef("cu.partnership_id", "partnerships", "key", p.CompanyID, f.PartnershipKey)
	if f.GroupKey != "" {
		spec.Where("p.group_id IN (SELECT id FROM groups WHERE company_id = ? AND key = ?)", p.CompanyID, f.GroupKey)
	}
	if f.Group != "" {
		spec.Where("p.group_id IN (SELECT id FROM groups WHERE company_id = ? AND slug = ?)", p.CompanyID, Slugify(f.Group))
	}
	if f.Email != "" {
		spec.Where("cu.email = ?", strings.ToLower(strings.TrimSpace(f.Email)))
	}
	spec.WhereSet("cu.provider_key = ?", f.ProviderKey)
	if !f.IncludeArchived {
		spec.Where("cu.archived = 0")
	}
	page.Apply(&spec, "cu")
	return store.List(ctx, s.db, spec, scanCustomer)
}
