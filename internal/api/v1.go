package api

import (
	"net/http"

	"github.com/partnerd/partnerd/internal/errs"
	"github.com/partnerd/partnerd/internal/program"
)

// PartnerStack's legacy v1 endpoints. v1 clients send extra properties (such
// as ip_address), so v1 schemas ignore what they do not name.
var (
	v1CreateCustomerSchema = schema{fields: []field{
		{name: "email", kind: kString, required: true, min: 4, max: 255},
		{name: "key", kind: kString, required: true, min: 1, max: 255},
		{name: "partner_key", kind: kString, required: true, max: 255},
		{name: "name", kind: kString, nullable: true, max: 100},
		{name: "provider_key", kind: kString, nullable: true, max: 255},
		{name: "meta", kind: kObject, nullable: true},
	}}
	v1UpdateCustomerSchema = schema{fields: []field{
		{name: "email", kind: kString, min: 4, max: 255},
		{name: "key", kind: kString, min: 1, max: 255},
		{name: "name", kind: kString, nullable: true, max: 100},
		{name: "provider_key", kind: kString, nullable: true, max: 255},
		{name: "meta", kind: kObject, nullable: true},
	}}
	v1TransactionSchema = schema{fields: []field{
		{name: "amount", kind: kInteger, required: true, min: -50_000_000_000, max: 50_000_000_000},
		{name: "currency", kind: kString, nullable: true, min: 3, max: 3},
		{name: "key", kind: kString, nullable: true, min: 4, max: 255},
		{name: "category_key", kind: kString, nullable: true, max: 255},
		{name: "product_key", kind: kString, nullable: true, max: 255},
		{name: "metadata", kind: kObject, nullable: true},
		{name: "created_at", kind: kInteger, nullable: true},
	}}
)

func (s *Server) v1CreateCustomer(w http.ResponseWriter, r *http.Request) error {
	b, err := decodeBody(w, r, v1CreateCustomerSchema)
	if err != nil {
		return err
	}
	in := program.CustomerInput{CustomerKey: b.str("key"), Email: b.str("email"), Name: b.str("name"), PartnerKey: b.str("partner_key"),
		ProviderKey: b.str("provider_key"), Meta: b.raw("meta"), Source: program.SourceAPIv1}
	c, created, err := s.program.CreateCustomer(r.Context(), principalOf(r), in)
	if err != nil {
		return err
	}
	msg := "Customer created"
	if !created {
		w.Header().Set("Idempotent-Replayed", "true")
		msg = "Customer already exists with this key; returning the stored customer"
	}
	writeData(w, renderCustomer(c), msg)
	return nil
}

func (s *Server) v1GetCustomer(w http.ResponseWriter, r *http.Request) error {
	c, err := s.program.GetCustomer(r.Context(), principalOf(r), r.PathValue("key"))
	return reply(w, c, err, renderCustomer, "Customer retrieved")
}

func (s *Server) v1UpdateCustomer(w http.ResponseWriter, r *http.Request) error {
	b, err := decodeBody(w, r, v1UpdateCustomerSchema)
	if err != nil {
		return err
	}
	in := program.CustomerInput{CustomerKey: b.str("key"), Email: b.str("email"), Name: b.str("name"),
		ProviderKey: b.strOrClear("provider_key"), Meta: b.raw("meta")}
	c, err := s.program.UpdateCustomer(r.Context(), principalOf(r), r.PathValue("key"), in)
	return reply(w, c, err, renderCustomer, "Customer updated")
}

// v1CreateTransaction records a transaction for the customer named in the
// path by its customer_key, internal key or email.
func (s *Server) v1CreateTransaction(w http.ResponseWriter, r *http.Request) error {
	b, err := decodeBody(w, r, v1TransactionSchema)
	if err != nil {
		return err
	}
	key := r.PathValue("key")
	if key == "" {
		return errs.E(errs.Invalid, "the customer key in the path is empty")
	}
	return s.recordTransaction(w, r, b, program.CustomerRef{Any: key})
}
