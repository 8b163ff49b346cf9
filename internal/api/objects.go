package api

import (
	"encoding/json"

	"github.com/partnerd/partnerd/internal/ledger"
	"github.com/partnerd/partnerd/internal/program"
)

// The wire shapes of PartnerStack's objects. Field names are PartnerStack's.

type companyJSON struct {
	Key  string `json:"key"`
	Name string `json:"name"`
}

type groupJSON struct {
	Key       string          `json:"key"`
	CreatedAt int64           `json:"created_at"`
	UpdatedAt int64           `json:"updated_at"`
	Name      string          `json:"name"`
	Slug      string          `json:"slug"`
	Archived  bool            `json:"archived"`
	Default   bool            `json:"default"`
	Features  json.RawMessage `json:"features"`
}

func renderGroup(g program.Group) groupJSON {
	return groupJSON{Key: g.Key, CreatedAt: g.CreatedAt, UpdatedAt: g.UpdatedAt, Name: g.Name, Slug: g.Slug,
		Archived: g.Archived, Default: g.Default, Features: g.Features}
}

type managerJSON struct {
	ManagerEmail *string `json:"manager_email"`
	ManagerName  *string `json:"manager_name"`
}

type partnershipJSON struct {
	Key        string          `json:"key"`
	CreatedAt  int64           `json:"created_at"`
	UpdatedAt  int64           `json:"updated_at"`
	PartnerKey string          `json:"partner_key"`
	Email      string          `json:"email"`
	FirstName  string          `json:"first_name"`
	LastName   string          `json:"last_name"`
	JoinedAt   int64           `json:"joined_at"`
	Group      groupJSON       `json:"group"`
	Tags       []string        `json:"tags"`
	Manager    managerJSON     `json:"manager"`
	Fields     json.RawMessage `json:"fields"`
	FieldData  json.RawMessage `json:"field_data"`
	MData      json.RawMessage `json:"m_data"`
	Meta       struct{}        `json:"meta"`
	Test       bool            `json:"test"`
	Archived   bool            `json:"archived"`
	Status     string          `json:"status"`
	Company    companyJSON     `json:"company"`
}

func renderPartnership(p program.Partnership) partnershipJSON {
	status := "active"
	if p.Archived {
		status = "archived"
	}
	tags := p.Tags
	if tags == nil {
		tags = []string{}
	}
	return partnershipJSON{Key: p.Key, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt, PartnerKey: p.PartnerKey, Email: p.Email,
		FirstName: p.FirstName, LastName: p.LastName, JoinedAt: p.JoinedAt, Group: renderGroup(p.Group), Tags: tags,
		Manager: managerJSON{ManagerEmail: p.ManagerEmail, ManagerName: p.ManagerName}, Fields: p.Fields,
		FieldData: p.Meta, MData: p.Meta, Test: p.Test, Archived: p.Archived, Status: status,
		Company: companyJSON{Key: p.Company.Key, Name: p.Company.Name}}
}

type customerJSON struct {
	Key            string          `json:"key"`
	CreatedAt      int64           `json:"created_at"`
	UpdatedAt      int64           `json:"updated_at"`
	CustomerKey    *string         `json:"customer_key"`
	Email          string          `json:"email"`
	Name           string          `json:"name"`
	PartnerKey     string          `json:"partner_key"`
	PartnershipKey string          `json:"partnership_key"`
	ProviderKey    *string         `json:"provider_key"`
	SourceType     string          `json:"source_type"`
	Test           bool            `json:"test"`
	Archived       bool            `json:"archived"`
	Meta           struct{}        `json:"meta"`
	FieldData      json.RawMessage `json:"field_data"`
	MData          json.RawMessage `json:"mdata"`
	Company        companyJSON     `json:"company"`
}

func renderCustomer(c program.Customer) customerJSON {
	return customerJSON{Key: c.Key, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt, CustomerKey: c.CustomerKey, Email: c.Email,
		Name: c.Name, PartnerKey: c.PartnerKey, PartnershipKey: c.PartnershipKey, ProviderKey: c.ProviderKey,
		SourceType: c.SourceType, Test: c.Test, Archived: c.Archived, FieldData: c.Meta, MData: c.Meta,
		Company: companyJSON{Key: c.Company.Key, Name: c.Company.Name}}
}

type txCustomerJSON struct {
	Key         string  `json:"key"`
	Email       string  `json:"email"`
	ExternalKey *string `json:"external_key"`
}

type transactionJSON struct {
	Key            string          `json:"key"`
	CreatedAt      int64           `json:"created_at"`
	UpdatedAt      int64           `json:"updated_at"`
	Amount         int64           `json:"amount"`
	AmountUSD      *int64          `json:"amount_usd"`
	Currency       string          `json:"currency"`
	Approved       bool            `json:"approved"`
	Archived       bool            `json:"archived"`
	Test           bool            `json:"test"`
	CategoryKey    *string         `json:"category_key"`
	ProductKey     *string         `json:"product_key"`
	Customer       txCustomerJSON  `json:"customer"`
	CustomerKey    string          `json:"customer_key"`
	PartnershipKey string          `json:"partnership_key"`
	PartnerKey     string          `json:"partner_key"`
	Metadata       json.RawMessage `json:"metadata"`
	Extension      struct{}        `json:"extension"`
	Company        companyJSON     `json:"company"`
}

func renderTransaction(t ledger.Transaction) transactionJSON {
	return transactionJSON{Key: t.Key, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt, Amount: t.Amount, AmountUSD: t.AmountUSD,
		Currency: t.Currency, Approved: !t.Archived, Archived: t.Archived, Test: t.Test, CategoryKey: t.CategoryKey,
		ProductKey: t.ProductKey, Customer: txCustomerJSON{Key: t.CustomerKey, Email: t.CustomerEmail, ExternalKey: t.CustomerExtKey},
		CustomerKey: t.CustomerKey, PartnershipKey: t.PartnershipKey, PartnerKey: t.PartnerKey, Metadata: t.Metadata,
		Company: companyJSON{Key: t.Company.Key, Name: t.Company.Name}}
}

// renderAll maps items through fn, never returning nil (an empty list is []).
func renderAll[T, J any](items []T, fn func(T) J) []J {
	out := make([]J, 0, len(items))
	for _, it := range items {
		out = append(out, fn(it))
	}
	return out
}
