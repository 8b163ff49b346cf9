package tracking

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/partnerd/partnerd/internal/clock"
	"github.com/partnerd/partnerd/internal/errs"
	"github.com/partnerd/partnerd/internal/program"
	"github.com/partnerd/partnerd/internal/store"
)

// clickRef is a stored click as attribution needs it.
type clickRef struct {
	PartnerKey string
	LinkID     int64
	SubIDs     string
	CreatedAt  int64
}

// findClick looks a click up by xid within the company. A click made a
// moment ago may still be in this node's buffer, so a miss flushes the
// buffer and looks again; another node's buffer is written within
// flushEvery, so one short wait covers it.
func (s *Service) findClick(ctx context.Context, companyID int64, xid string) (clickRef, bool, error) {
	for attempt := 0; ; attempt++ {
		var c clickRef
		err := s.db.QueryRow(ctx, `SELECT p.partner_key, c.link_id, c.sub_ids, c.created_at FROM clicks c
			JOIN partnerships p ON p.id = c.partnership_id WHERE c.company_id = ? AND c.xid = ?`, companyID, xid).
			Scan(&c.PartnerKey, &c.LinkID, &c.SubIDs, &c.CreatedAt)
		if err == nil {
			return c, true, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return c, false, fmt.Errorf("find click: %w", err)
		}
		switch attempt {
		case 0:
			if err := s.Flush(ctx); err != nil {
				return c, false, err
			}
		case 1:
			select {
			case <-time.After(2 * flushEvery):
			case <-ctx.Done():
				return c, false, ctx.Err()
			}
		default:
			return c, false, nil
		}
	}
}

// within tells whether a click is inside the company's attribution window.
func (s *Service) within(ctx context.Context, companyID int64, c clickRef) (bool, error) {
	co, err := s.program.CompanyByID(ctx, companyID)
	if err != nil {
		return false, err
	}
	return clock.Millis(s.clock)-c.CreatedAt <= int64(co.AttributionDays)*86_400_000, nil
}

func (s *Service) recordSignup(ctx context.Context, p program.Principal, customerID int64, partnerKey, source, xid string) error {
	var cust, part any
	if customerID != 0 {
		cust = customerID
	}
	if partnerKey != "" {
		var id int64
		if err := s.db.QueryRow(ctx, "SELECT id FROM partnerships WHERE company_id = ? AND partner_key = ?", p.CompanyID, partnerKey).Scan(&id); err == nil {
			part = id
		}
	}
	_, err := s.db.Exec(ctx, `INSERT INTO signups (company_id, customer_id, partnership_id, source, xid, test, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		p.CompanyID, cust, part, source, xid, store.Bool(p.Test), clock.Millis(s.clock))
	if err != nil {
		return fmt.Errorf("record signup: %w", err)
	}
	return nil
}

// Signup is a sign-up posted by the JS snippet's createSignup.
type Signup struct {
	Name        string
	Email       string
	CustomerKey string
	PartnerKey  string
	XID         string
}

// SignupResult says what became of a sign-up.
type SignupResult struct {
	Attributed  bool
	CustomerKey string
	PartnerKey  string
}

// RecordSignup attributes a JS sign-up. The click id wins over the partner
// key when both are present (the cookie holds the last click); a partner key
// alone still attributes (a landing with ?gspk= and no click); with neither,
// or a click older than the attribution window, the sign-up is only counted
// for the funnel. A customer_key already attributed stays where it is.
func (s *Service) RecordSignup(ctx context.Context, p program.Principal, in Signup) (SignupResult, error) {
	email := strings.TrimSpace(in.Email)
	if email == "" {
		return SignupResult{}, errs.E(errs.Invalid, "'email' is a required property")
	}
	if _, err := program.NormalizeEmail("email", email); err != nil {
		return SignupResult{}, err
	}
	key := strings.TrimSpace(in.CustomerKey)
	if key == "" {
		key = strings.ToLower(email) // PartnerStack's advice when there is no customer key
	}
	if len(key) > 255 || len(in.Name) > 100 {
		return SignupResult{}, errs.E(errs.Invalid, "'customer_key' (255) or 'name' (100) is too long")
	}
	var partnerKey string
	var linkID int64
	subIDs := "{}"
	if in.XID != "" {
		c, ok, err := s.findClick(ctx, p.CompanyID, in.XID)
		if err != nil {
			return SignupResult{}, err
		}
		if ok {
			fresh, err := s.within(ctx, p.CompanyID, c)
			if err != nil {
				return SignupResult{}, err
			}
			if fresh {
				partnerKey, linkID, subIDs = c.PartnerKey, c.LinkID, c.SubIDs
			}
		}
	}
	if partnerKey == "" && in.PartnerKey != "" && program.ValidPartnerKey(in.PartnerKey) {
		partnerKey = in.PartnerKey
	}
	xid := in.XID
	if linkID == 0 {
		xid = "" // not a click of ours, or too old
	}
	if partnerKey == "" {
		return SignupResult{CustomerKey: key}, s.recordSignup(ctx, p, 0, "", program.SourceJS, "")
	}
	cu, created, err := s.program.CreateCustomer(ctx, p, program.CustomerInput{CustomerKey: &key, Email: &email, Name: &in.Name,
		PartnerKey: &partnerKey, Source: program.SourceJS, ClickXID: xid, LinkID: linkID, SubIDs: json.RawMessage(subIDs)})
	switch {
	case errs.CodeOf(err) == errs.Conflict:
		// Attributed before, to another partner: the first attribution stays.
		existing, gerr := s.program.GetCustomer(ctx, program.Principal{CompanyID: p.CompanyID}, key)
		if gerr != nil {
			return SignupResult{}, gerr
		}
		return SignupResult{Attributed: true, CustomerKey: key, PartnerKey: existing.PartnerKey}, nil
	case errs.CodeOf(err) == errs.Invalid && strings.Contains(errs.MessageOf(err), "partner_key"):
		// An unknown or archived partner in a cookie is not the visitor's
		// fault: count the sign-up, attribute nothing.
		return SignupResult{CustomerKey: key}, s.recordSignup(ctx, p, 0, "", program.SourceJS, "")
	case err != nil:
		return SignupResult{}, err
	}
	res := SignupResult{Attributed: true, CustomerKey: key, PartnerKey: cu.PartnerKey}
	if !created {
		return res, nil // the same customer signing up again is not a new sign-up
	}
	return res, s.recordSignup(ctx, p, cu.ID, cu.PartnerKey, program.SourceJS, xid)
}

// Conversion is PartnerStack's S2S conversion body.
type Conversion struct {
	XID         string
	CustomerKey string
	Email       string
	Name        string
	ProviderKey string
	SubIDs      []string
	Meta        json.RawMessage
}

// Convert records a server-to-server conversion: the customer is attributed
// to the partner of the click xid. It is idempotent per customer_key: the
// first conversion wins and later ones change nothing.
func (s *Service) Convert(ctx context.Context, p program.Principal, in Conversion) error {
	c, ok, err := s.findClick(ctx, p.CompanyID, in.XID)
	if err != nil {
		return err
	}
	if !ok {
		return errs.E(errs.Invalid, "'xid' does not match any click of this program: %s", in.XID)
	}
	inWindow, err := s.within(ctx, p.CompanyID, c)
	if err != nil {
		return err
	}
	if !inWindow {
		return errs.E(errs.Invalid, "'xid' is older than the program's attribution window: %s", in.XID)
	}
	subs := map[string]any{}
	_ = json.Unmarshal([]byte(c.SubIDs), &subs)
	if len(in.SubIDs) > 0 {
		subs["sub_ids"] = in.SubIDs
	}
	subJSON, _ := json.Marshal(subs)
	var provider *string
	if in.ProviderKey != "" {
		provider = &in.ProviderKey
	}
	cu, created, err := s.program.CreateCustomer(ctx, p, program.CustomerInput{CustomerKey: &in.CustomerKey, Email: &in.Email,
		Name: &in.Name, PartnerKey: &c.PartnerKey, ProviderKey: provider, Meta: in.Meta, Source: program.SourceS2S,
		ClickXID: in.XID, LinkID: c.LinkID, SubIDs: subJSON, EmailOptional: true})
	if errs.CodeOf(err) == errs.Conflict {
		return nil // converted before, for another partner: the first conversion stays
	}
	if err != nil || !created {
		return err
	}
	return s.recordSignup(ctx, p, cu.ID, cu.PartnerKey, program.SourceS2S, in.XID)
}
