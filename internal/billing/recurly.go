package billing

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/partnerd/partnerd/internal/program"
)

// recurlyNotification is the part of a Recurly XML notification partnerd
// reads; the root element's name is the notification's type.
type recurlyNotification struct {
	XMLName xml.Name
	Account struct {
		AccountCode string `xml:"account_code"`
		Email       string `xml:"email"`
		FirstName   string `xml:"first_name"`
		LastName    string `xml:"last_name"`
	} `xml:"account"`
	Transaction struct {
		ID            string `xml:"id"`
		InvoiceID     string `xml:"invoice_id"`
		Action        string `xml:"action"`
		Date          string `xml:"date"`
		AmountInCents string `xml:"amount_in_cents"`
		Currency      string `xml:"currency"`
		Status        string `xml:"status"`
		Test          string `xml:"test"`
	} `xml:"transaction"`
	Subscription struct {
		UUID  string `xml:"uuid"`
		State string `xml:"state"`
		Plan  struct {
			PlanCode string `xml:"plan_code"`
		} `xml:"plan"`
	} `xml:"subscription"`
}

var recurlyAccountNotifications = map[string]bool{
	"new_account_notification": true, "updated_account_notification": true, "billing_info_updated_notification": true,
	"reactivated_account_notification": true, "canceled_account_notification": true,
}

var recurlySubscriptionNotifications = map[string]bool{
	"new_subscription_notification": true, "updated_subscription_notification": true, "renewed_subscription_notification": true,
	"canceled_subscription_notification": true, "expired_subscription_notification": true, "reactivated_subscription_notification": true,
	"paused_subscription_notification": true, "resumed_subscription_notification": true,
}

// handleRecurly maps a Recurly notification the way PartnerStack does: the
// customer is the one whose customer_key is the account_code.
func (s *Service) handleRecurly(ctx context.Context, p program.Principal, e Event) (outcome, error) {
	if e.ContentType == "application/json" {
		return s.handleRecurlyJSON(ctx, p, e)
	}
	var n recurlyNotification
	if err := xml.Unmarshal(e.Body, &n); err != nil {
		return ignored("not a Recurly XML notification: %v", err), nil
	}
	typ := n.XMLName.Local
	code := strings.TrimSpace(n.Account.AccountCode)
	t := n.Transaction
	switch {
	case recurlyAccountNotifications[typ]:
		return s.recurlyAccount(ctx, p, code)
	case recurlySubscriptionNotifications[typ]:
		if code == "" {
			return ignored("the notification has no account_code"), nil
		}
		// XML notifications carry no event time: arrival order stands in.
		return s.recordState(ctx, p, subscriptionState{provider: Recurly, id: n.Subscription.UUID, customerKey: code,
			status: n.Subscription.State, plan: n.Subscription.Plan.PlanCode, eventType: typ, at: e.ReceivedAt})
	case typ == "successful_payment_notification", typ == "successful_refund_notification", typ == "void_payment_notification":
	case typ == "failed_payment_notification":
		return done("payment %s failed; nothing was recorded for it", t.ID), nil
	default:
		return ignored("partnerd does not use %s notifications", typ), nil
	}
	// The money notifications.
	if t.ID == "" {
		return ignored("the notification has no transaction id"), nil
	}
	if t.Test == "true" && !p.Test {
		return ignored("transaction %s is a test transaction on the production endpoint", t.ID), nil
	}
	amount, err := strconv.ParseInt(strings.TrimSpace(t.AmountInCents), 10, 64)
	if err != nil {
		return ignored("amount_in_cents is not a whole number: %q", t.AmountInCents), nil
	}
	switch typ {
	case "successful_payment_notification":
		if code == "" {
			return ignored("payment %s: the notification has no account_code", t.ID), nil
		}
		cur, err := s.siteCurrency(ctx, p, Recurly, t.Currency)
		if err != nil {
			return outcome{}, err
		}
		in := paymentIn{key: "recurly:" + t.ID, customer: program.CustomerRef{ExternalKey: code}, who: "customer_key " + code,
			waitFor: waitCustomer(code), amount: amount, currency: cur}
		if at, err := time.Parse(time.RFC3339, strings.TrimSpace(t.Date)); err == nil {
			in.at = at.UnixMilli()
		}
		if t.InvoiceID != "" {
			in.links = []string{"recurly:invoice:" + t.InvoiceID} // refunds name the invoice, not the payment
		}
		return s.payment(ctx, p, in)
	case "successful_refund_notification":
		if t.InvoiceID == "" {
			return ignored("refund %s names no invoice_id to find its payment by", t.ID), nil
		}
		ref := "recurly:invoice:" + t.InvoiceID
		paid, err := s.linked(ctx, p, ref)
		if err != nil {
			return outcome{}, err
		}
		if paid == "" {
			return waiting(waitLink(ref), "the payment of invoice %s (refund %s) has not arrived yet", t.InvoiceID, t.ID), nil
		}
		return s.refund(ctx, p, refundIn{paymentKey: paid, refundKey: "recurly:" + t.ID, total: -1, amount: amount, what: "refund"})
	default: // void_payment_notification: the voided transaction is the payment itself
		return s.refund(ctx, p, refundIn{paymentKey: "recurly:" + t.ID, refundKey: "recurly:" + t.ID + ":void", total: -1, full: true, what: "void"})
	}
}

// recurlyAccount: the account_code already is the customer_key, so there
// is nothing to link; the event only says whether the customer is known.
func (s *Service) recurlyAccount(ctx context.Context, p program.Principal, code string) (outcome, error) {
	if code == "" {
		return ignored("the notification has no account_code"), nil
	}
	_, err := s.program.ResolveCustomer(ctx, s.db, p, program.CustomerRef{ExternalKey: code})
	if errors.Is(err, program.ErrNoCustomer) {
		return ignored("no customer %q: not referred, or not created yet (its payments wait for it)", code), nil
	}
	if err != nil {
		return outcome{}, err
	}
	return done("account %s is customer %s", code, code), nil
}

// recurlyJSON is a Recurly JSON notification: a thin notice that names
// the object changed, not its contents.
type recurlyJSON struct {
	ID          string `json:"id"`
	ObjectType  string `json:"object_type"`
	EventType   string `json:"event_type"`
	EventTime   string `json:"event_time"`
	UUID        string `json:"uuid"`
	AccountCode string `json:"account_code"`
}

func (s *Service) handleRecurlyJSON(ctx context.Context, p program.Principal, e Event) (outcome, error) {
	var n recurlyJSON
	if err := json.Unmarshal(e.Body, &n); err != nil {
		return ignored("not a Recurly JSON notification: %v", err), nil
	}
	switch n.ObjectType {
	case "account":
		return s.recurlyAccount(ctx, p, strings.TrimSpace(n.AccountCode))
	case "subscription":
		if n.AccountCode == "" {
			return ignored("subscription %s: the notification has no account_code", n.UUID), nil
		}
		at := e.ReceivedAt
		if t, err := time.Parse(time.RFC3339, n.EventTime); err == nil {
			at = t.UnixMilli()
		}
		return s.recordState(ctx, p, subscriptionState{provider: Recurly, id: n.UUID, customerKey: strings.TrimSpace(n.AccountCode),
			status: n.EventType, eventType: n.ObjectType + "." + n.EventType, at: at})
	case "payment", "charge_invoice", "credit_payment", "invoice":
		// Recurly's JSON notifications name the object but not the amount;
		// reading it needs a Recurly API key and a call out, which partnerd
		// does not make (decided: docs/billing.md).
		return ignored("Recurly JSON notifications carry no amount: count payments through an XML endpoint, or the transactions API"), nil
	}
	return ignored("partnerd does not use %s.%s notifications", n.ObjectType, n.EventType), nil
}
