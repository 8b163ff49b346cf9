package api

import (
	"net/http"

	"github.com/partnerd/partnerd/internal/errs"
	"github.com/partnerd/partnerd/internal/ledger"
	"github.com/partnerd/partnerd/internal/program"
)

// Request body schemas. Lengths and ranges are PartnerStack's.
var (
	partnershipFields = []field{
		{name: "email", kind: kString, max: 255},
		{name: "first_name", kind: kString, nullable: true, max: 50},
		{name: "last_name", kind: kString, nullable: true, max: 50},
		{name: "group_key", kind: kString, nullable: true, max: 255},
		{name: "partner_key", kind: kString, nullable: true, max: 255},
		{name: "manager_email", kind: kString, nullable: true, max: 255},
		{name: "manager_name", kind: kString, nullable: true, max: 255},
		{name: "tags", kind: kStringArray, nullable: true, max: 255},
		{name: "fields", kind: kArray, nullable: true},
		{name: "field_data", kind: kObject, nullable: true},
		{name: "meta", kind: kObject, nullable: true},
	}
	createPartnershipSchema = schema{strict: true, fields: withRequired(partnershipFields, "email")}
	updatePartnershipSchema = schema{strict: true, fields: partnershipFields}

	createGroupSchema = schema{strict: true, fields: []field{
		{name: "name", kind: kString, required: true, min: 1, max: 255},
		{name: "features", kind: kObject, nullable: true},
	}}

	customerFields = []field{
		{name: "customer_key", kind: kString, nullable: true, max: 255},
		{name: "email", kind: kString, min: 4, max: 255},
		{name: "partner_key", kind: kString, max: 255},
		{name: "name", kind: kString, nullable: true, max: 100},
		{name: "provider_key", kind: kString, nullable: true, max: 255},
		{name: "member_key", kind: kString, nullable: true, max: 255},
		{name: "meta", kind: kObject, nullable: true},
		{name: "field_data", kind: kObject, nullable: true},
	}
	createCustomerSchema = schema{strict: true, fields: withRequired(customerFields, "customer_key", "email", "partner_key")}
	updateCustomerSchema = schema{strict: true, fields: customerFields}

	createTransactionSchema = schema{strict: true, fields: []field{
		{name: "customer_key", kind: kString, nullable: true, max: 255},
		{name: "customer_external_key", kind: kString, nullable: true, max: 255},
		{name: "customer_email", kind: kString, nullable: true, max: 255},
		{name: "amount", kind: kInteger, required: true, min: -50_000_000_000, max: 50_000_000_000},
		{name: "currency", kind: kString, required: true, min: 3, max: 3},
		{name: "key", kind: kString, nullable: true, min: 4, max: 255},
		{name: "category_key", kind: kString, nullable: true, max: 255},
		{name: "product_key", kind: kString, nullable: true, max: 255},
		{name: "metadata", kind: kObject, nullable: true},
		{name: "test", kind: kBoolean, nullable: true},
		{name: "created_at", kind: kInteger, nullable: true},
	}}
)

// withRequired copies fields, marking the named ones required.
func withRequired(fields []field, names ...string) []field {
	out := append([]field(nil), fields...)
	for i := range out {
		for _, n := range names {
			if out[i].name == n {
				out[i].required = true
			}
		}
	}
	return out
}

// meta returns the custom fields of a body: meta, or the deprecated
// field_data when meta is absent.
func meta(b body) []byte {
	if m := b.raw("meta"); m != nil {
		return m
	}
	return b.raw("field_data")
}

func partnershipInput(b body) (program.PartnershipInput, error) {
	if err := checkObjectArray("fields", b.raw("fields")); err != nil {
		return program.PartnershipInput{}, err
	}
	return program.PartnershipInput{
		Email: b.str("email"), FirstName: b.strOrClear("first_name"), LastName: b.strOrClear("last_name"),
		GroupKey: b.str("group_key"), PartnerKey: b.str("partner_key"),
		ManagerEmail: b.strOrClear("manager_email"), ManagerName: b.strOrClear("manager_name"),
		Tags: b.strs("tags"), Fields: b.raw("fields"), Meta: meta(b),
	}, nil
}

func (s *Server) createPartnership(w http.ResponseWriter, r *http.Request) error {
	b, err := decodeBody(w, r, createPartnershipSchema)
	if err != nil {
		return err
	}
	in, err := partnershipInput(b)
	if err != nil {
		return err
	}
	p, err := s.program.CreatePartnership(r.Context(), principalOf(r), in)
	return reply(w, p, err, renderPartnership, "Partnership created")
}

func (s *Server) getPartnership(w http.ResponseWriter, r *http.Request) error {
	p, err := s.program.GetPartnership(r.Context(), principalOf(r), r.PathValue("id"))
	return reply(w, p, err, renderPartnership, "Partnership retrieved")
}

func (s *Server) updatePartnership(w http.ResponseWriter, r *http.Request) error {
	b, err := decodeBody(w, r, updatePartnershipSchema)
	if err != nil {
		return err
	}
	in, err := partnershipInput(b)
	if err != nil {
		return err
	}
	p, err := s.program.UpdatePartnership(r.Context(), principalOf(r), r.PathValue("id"), in)
	return reply(w, p, err, renderPartnership, "Partnership updated")
}

func (s *Server) archivePartnership(w http.ResponseWriter, r *http.Request) error {
	p, err := s.program.ArchivePartnership(r.Context(), principalOf(r), r.PathValue("id"))
	return reply(w, p, err, renderPartnership, "Partnership archived")
}

func (s *Server) listPartnerships(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	page, archived, err := listParams(q)
	if err != nil {
		return err
	}
	f := program.PartnershipFilter{GroupKey: q.Get("group_key"), Group: q.Get("group"), PartnerKey: q.Get("partner_key"),
		PartnershipKey: q.Get("partnership_key"), Email: q.Get("email"), IncludeArchived: archived}
	items, res, err := s.program.ListPartnerships(r.Context(), principalOf(r), f, page)
	return replyList(w, items, res, err, renderPartnership, "Partnerships retrieved")
}

func (s *Server) createGroup(w http.ResponseWriter, r *http.Request) error {
	b, err := decodeBody(w, r, createGroupSchema)
	if err != nil {
		return err
	}
	g, err := s.program.CreateGroup(r.Context(), principalOf(r), program.GroupInput{Name: *b.str("name"), Features: b.raw("features")})
	return reply(w, g, err, renderGroup, "Group created")
}

func (s *Server) listGroups(w http.ResponseWriter, r *http.Request) error {
	page, err := parsePage(r.URL.Query())
	if err != nil {
		return err
	}
	items, res, err := s.program.ListGroups(r.Context(), principalOf(r), page)
	return replyList(w, items, res, err, renderGroup, "Groups retrieved")
}

func customerInput(b body, source string) (program.CustomerInput, error) {
	if b.str("member_key") != nil {
		return program.CustomerInput{}, errs.E(errs.Invalid, "'member_key' does not name a member of the partner's team (partner teams are not supported yet)")
	}
	return program.CustomerInput{CustomerKey: b.str("customer_key"), Email: b.str("email"), Name: b.str("name"),
		PartnerKey: b.str("partner_key"), ProviderKey: b.strOrClear("provider_key"), Meta: meta(b), Source: source}, nil
}

func (s *Server) createCustomer(w http.ResponseWriter, r *http.Request) error {
	b, err := decodeBody(w, r, createCustomerSchema)
	if err != nil {
		return err
	}
	in, err := customerInput(b, program.SourceAPI)
	if err != nil {
		return err
	}
	c, created, err := s.program.CreateCustomer(r.Context(), principalOf(r), in)
	if err != nil {
		return err
	}
	msg := "Customer created"
	if !created {
		w.Header().Set("Idempotent-Replayed", "true")
		msg = "Customer already exists with this customer_key; returning the stored customer"
	}
	writeData(w, renderCustomer(c), msg)
	return nil
}

func (s *Server) getCustomer(w http.ResponseWriter, r *http.Request) error {
	c, err := s.program.GetCustomer(r.Context(), principalOf(r), r.PathValue("id"))
	return reply(w, c, err, renderCustomer, "Customer retrieved")
}

func (s *Server) updateCustomer(w http.ResponseWriter, r *http.Request) error {
	b, err := decodeBody(w, r, updateCustomerSchema)
	if err != nil {
		return err
	}
	if b.has("customer_key") && b.str("customer_key") == nil {
		return errs.E(errs.Invalid, "'customer_key' cannot be cleared once set")
	}
	if b.has("email") && b.str("email") == nil {
		return errs.E(errs.Invalid, "'email' is not of type 'string' (null is not allowed)")
	}
	in, err := customerInput(b, "")
	if err != nil {
		return err
	}
	c, err := s.program.UpdateCustomer(r.Context(), principalOf(r), r.PathValue("id"), in)
	return reply(w, c, err, renderCustomer, "Customer updated")
}

func (s *Server) archiveCustomer(w http.ResponseWriter, r *http.Request) error {
	c, err := s.program.ArchiveCustomer(r.Context(), principalOf(r), r.PathValue("id"))
	return reply(w, c, err, renderCustomer, "Customer archived")
}

func (s *Server) listCustomers(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	page, archived, err := listParams(q)
	if err != nil {
		return err
	}
	f := program.CustomerFilter{PartnerKey: q.Get("partner_key"), PartnershipKey: q.Get("partnership_key"), GroupKey: q.Get("group_key"),
		Group: q.Get("group"), Email: q.Get("email"), ProviderKey: q.Get("provider_key"), IncludeArchived: archived}
	items, res, err := s.program.ListCustomers(r.Context(), principalOf(r), f, page)
	return replyList(w, items, res, err, renderCustomer, "Customers retrieved")
}

func (s *Server) createTransaction(w http.ResponseWriter, r *http.Request) error {
	b, err := decodeBody(w, r, createTransactionSchema)
	if err != nil {
		return err
	}
	refs := 0
	var ref program.CustomerRef
	if v := b.str("customer_key"); v != nil {
		refs++
		ref.Key = *v
	}
	if v := b.str("customer_external_key"); v != nil {
		refs++
		ref.ExternalKey = *v
	}
	if v := b.str("customer_email"); v != nil {
		refs++
		ref.Email = *v
	}
	if refs != 1 {
		return errs.E(errs.Invalid, "exactly one of 'customer_key', 'customer_external_key' or 'customer_email' is required (got %d)", refs)
	}
	return s.recordTransaction(w, r, b, ref)
}

// recordTransaction stores a validated transaction body for ref; v2 and v1
// share it.
func (s *Server) recordTransaction(w http.ResponseWriter, r *http.Request, b body, ref program.CustomerRef) error {
	if err := checkMetadata(b.raw("metadata")); err != nil {
		return err
	}
	in := ledger.TransactionInput{Customer: ref, Amount: *b.int("amount"), CategoryKey: b.str("category_key"),
		ProductKey: b.str("product_key"), Metadata: b.raw("metadata"), CreatedAt: b.int("created_at")}
	if c := b.str("currency"); c != nil {
		in.Currency = *c
	} else {
		in.Currency = "USD" // v1 documents currency as optional; PartnerStack's default is USD
	}
	if k := b.str("key"); k != nil {
		in.Key = *k
	}
	t, replayed, err := s.ledger.CreateTransaction(r.Context(), principalOf(r), in)
	if err != nil {
		return err
	}
	msg := "Transaction created"
	if replayed {
		w.Header().Set("Idempotent-Replayed", "true")
		msg = "Transaction already exists with this key; returning the stored transaction"
	}
	writeData(w, renderTransaction(t), msg)
	return nil
}

func (s *Server) getTransaction(w http.ResponseWriter, r *http.Request) error {
	t, err := s.ledger.GetTransaction(r.Context(), principalOf(r), r.PathValue("key"))
	return reply(w, t, err, renderTransaction, "Transaction retrieved")
}

func (s *Server) deleteTransaction(w http.ResponseWriter, r *http.Request) error {
	t, err := s.ledger.DeleteTransaction(r.Context(), principalOf(r), r.PathValue("key"))
	return reply(w, t, err, renderTransaction, "Transaction deleted")
}

func (s *Server) listTransactions(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	page, archived, err := listParams(q)
	if err != nil {
		return err
	}
	f := ledger.TransactionFilter{CustomerKey: q.Get("customer_key"), PartnerKey: q.Get("partner_key"),
		PartnershipKey: q.Get("partnership_key"), Currency: q.Get("currency"), CategoryKey: q.Get("category_key"),
		ProductKey: q.Get("product_key"), IncludeArchived: archived}
	items, res, err := s.ledger.ListTransactions(r.Context(), principalOf(r), f, page)
	return replyList(w, items, res, err, renderTransaction, "Transactions retrieved")
}
