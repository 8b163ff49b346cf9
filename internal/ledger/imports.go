package ledger

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/partnerd/partnerd/internal/errs"
	"github.com/partnerd/partnerd/internal/money"
	"github.com/partnerd/partnerd/internal/outbox"
	"github.com/partnerd/partnerd/internal/program"
	"github.com/partnerd/partnerd/internal/store"
)

// TransactionImport is one row of a transaction import. Key is the
// transaction's natural key: the importer derives one from the row when
// the file has none, so a re-import finds the same rows.
type TransactionImport struct {
	Key         string
	Customer    program.CustomerRef
	PartnerKey  string // optional: when given it must be the customer's partner
	Amount      int64
	Currency    string
	CategoryKey *string
	ProductKey  *string
	Metadata    json.RawMessage
	CreatedAt   *int64
	Test        bool
	Archived    bool
}

// ImportResult is what became of one imported row: an outcome, or an error
// naming the offending field.
type ImportResult struct {
	Outcome program.Outcome
	Err     error
}

// CustomerCache remembers the customers an import has resolved, so a file
// with many payments per customer reads each customer once. It is bounded:
// when full it starts over, which costs reads but never memory.
type CustomerCache struct {
	m    map[program.CustomerRef]*program.Customer
	byID map[int64]*program.Customer // one entry per customer, whatever refs name it
}

const customerCacheMax = 50_000

// NewCustomerCache returns an empty cache.
func NewCustomerCache() *CustomerCache {
	return &CustomerCache{m: map[program.CustomerRef]*program.Customer{}, byID: map[int64]*program.Customer{}}
}

// Reset forgets every customer (after a rolled-back batch, whose writes the
// cached first payments may describe).
func (c *CustomerCache) Reset() {
	clear(c.m)
	clear(c.byID)
}

func (s *Service) cachedCustomer(ctx context.Context, q store.Querier, p program.Principal, cache *CustomerCache, ref program.CustomerRef) (*program.Customer, error) {
	if cu, ok := cache.m[ref]; ok {
		return cu, nil
	}
	cu, err := s.program.ResolveCustomer(ctx, q, p, ref)
	if err != nil {
		return nil, err
	}
	if len(cache.m) >= customerCacheMax {
		cache.Reset()
	}
	// Every reference to the same customer shares one entry, so a first
	// payment stamped through one is seen through the others.
	shared, ok := cache.byID[cu.ID]
	if !ok {
		shared = &cu
		cache.byID[cu.ID] = shared
	}
	cache.m[ref] = shared
	return shared, nil
}

// importChunk is how many rows one INSERT carries: 14 placeholders a row
// stays far below SQLite's limit of 32,766.
const importChunk = 200

type pendingTx struct {
	row       int   // index into the caller's rows
	id        int64 // once inserted
	in        TransactionImport
	cu        *program.Customer
	cur       string
	usd       *int64
	test      bool
	createdAt int64
}

// ImportTransactions records a batch of imported transactions inside tx and
// says, per row, whether it was created, was already stored (unchanged), or
// is rejected. A stored key with a different amount, currency or customer
// is rejected: money already recorded is never changed by an import. New
// rows earn rewards unless earn is false, and emit transaction.created.
func (s *Service) ImportTransactions(ctx context.Context, tx *store.Tx, p program.Principal, cache *CustomerCache, rows []TransactionImport, earn bool) ([]ImportResult, error) {
	res := make([]ImportResult, len(rows))
	now := s.now()
	rates := rateMemo{}
	var todo []*pendingTx
	for i, in := range rows {
		pt, err := s.checkImportedTx(ctx, tx, p, cache, rates, in, now)
		if err != nil {
			if errs.CodeOf(err) == errs.Internal {
				return nil, err
			}
			res[i].Err = err
			continue
		}
		pt.row = i
		todo = append(todo, &pt)
	}
	inserted := map[string]int64{}
	for rest := todo; len(rest) > 0; {
		n := min(len(rest), importChunk)
		if err := s.insertImportedTxs(ctx, tx, p.CompanyID, rest[:n], now, inserted); err != nil {
			return nil, err
		}
		rest = rest[n:]
	}
	var created []*pendingTx
	var existing []string
	for _, pt := range todo {
		if id, ok := inserted[pt.in.Key]; ok {
			delete(inserted, pt.in.Key) // a second row with the same key in this batch finds it stored
			pt.id = id
			res[pt.row].Outcome = program.Created
			created = append(created, pt)
			continue
		}
		existing = append(existing, pt.in.Key)
	}
	ids := make([]int64, len(created))
	for i, pt := range created {
		ids[i] = pt.id
	}
	if err := outbox.EmitAll(ctx, tx, p.CompanyID, outbox.TransactionCreated, outbox.KindTransaction, ids, now); err != nil {
		return nil, err
	}
	if err := s.compareStoredTxs(ctx, tx, p.CompanyID, todo, existing, res); err != nil {
		return nil, err
	}
	// Rewards in the order the rows were written, so "first payment"
	// offers see the file's first payment of a customer first.
	sort.Slice(created, func(a, b int) bool { return created[a].id < created[b].id })
	var version int64
	if earn && len(created) > 0 {
		// Read once per batch: the cached customers may be older than the
		// last offer change.
		if err := tx.QueryRow(ctx, "SELECT offers_version FROM companies WHERE id = ?", p.CompanyID).Scan(&version); err != nil {
			return nil, fmt.Errorf("read offers version: %w", err)
		}
	}
	for _, pt := range created {
		if pt.in.Archived {
			continue
		}
		cu := pt.cu
		c := transactionCause(*cu, pt.id, pt.in.Amount, pt.cur, pt.in.ProductKey, pt.in.CategoryKey, pt.test, pt.createdAt)
		c.offersVersion = &version
		if err := firstPaid(ctx, tx, *cu, &c); err != nil {
			return nil, err
		}
		// Without a stored first payment, firstPaid falls back on this row
		// even when it is a refund; only a payment can be remembered as first.
		if cu.FirstPaidID == nil && pt.in.Amount > 0 {
			fid, fat := c.firstID, c.firstAt
			cu.FirstPaidID, cu.FirstPaidAt = &fid, &fat
		}
		if earn {
			if err := s.earn(ctx, tx, p.CompanyID, c); err != nil {
				return nil, err
			}
		}
	}
	return res, nil
}

func (s *Service) checkImportedTx(ctx context.Context, q store.Querier, p program.Principal, cache *CustomerCache, rates rateMemo,
	in TransactionImport, now int64) (pendingTx, error) {
	if in.Key == "" {
		return pendingTx{}, errs.E(errs.Invalid, "'key' is a required property")
	}
	if err := program.CheckImportKey("key", in.Key); err != nil {
		return pendingTx{}, err
	}
	cur, err := money.Currency("currency", in.Currency)
	if err != nil {
		return pendingTx{}, err
	}
	if err := money.Amount("amount", in.Amount); err != nil {
		return pendingTx{}, err
	}
	created := now
	if in.CreatedAt != nil {
		if *in.CreatedAt < 0 || *in.CreatedAt > now+maxFuture {
			return pendingTx{}, errs.E(errs.Invalid, "'created_at' must be between 1970 and one day from now")
		}
		created = *in.CreatedAt
	}
	cu, err := s.cachedCustomer(ctx, q, p, cache, in.Customer)
	if err != nil {
		return pendingTx{}, err
	}
	if in.PartnerKey != "" && in.PartnerKey != cu.PartnerKey {
		return pendingTx{}, errs.E(errs.Invalid, "'partner_key' %s is not the partner of customer %s (%s)", in.PartnerKey, cu.Key, cu.PartnerKey)
	}
	if cu.Archived && !in.Archived {
		return pendingTx{}, errs.E(errs.Invalid, "'customer_key': the customer %s is archived and takes no new transactions", cu.Key)
	}
	if p.Test && !cu.Test {
		return pendingTx{}, errs.E(errs.Invalid, "'customer_key': test keys can only record transactions for test customers")
	}
	pt := pendingTx{in: in, cu: cu, cur: cur, test: p.Test || cu.Test || in.Test, createdAt: created}
	if pt.usd, err = rates.usd(ctx, q, p.CompanyID, in.Amount, cur, created); err != nil {
		return pendingTx{}, err
	}
	return pt, nil
}

func (s *Service) insertImportedTxs(ctx context.Context, tx *store.Tx, companyID int64, rows []*pendingTx, now int64, inserted map[string]int64) error {
	const one = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
	args := make([]any, 0, 15*len(rows))
	for _, pt := range rows {
		args = append(args, pt.in.Key, companyID, pt.cu.ID, pt.cu.PartnershipID, pt.in.Amount, pt.cur, pt.usd, pt.in.CategoryKey,
			pt.in.ProductKey, metadataOrEmpty(pt.in.Metadata), store.Bool(pt.test), store.Bool(pt.in.Archived), pt.createdAt, now, pt.cu.GroupID)
	}
	query := `INSERT INTO transactions (key, company_id, customer_id, partnership_id, amount, currency, amount_usd, category_key,
		product_key, metadata, test, archived, created_at, updated_at, group_id) VALUES ` +
		strings.Repeat(one+", ", len(rows)-1) + one + " ON CONFLICT (company_id, key) DO NOTHING RETURNING id, key"
	rs, err := tx.Query(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("import transactions: %w", err)
	}
	defer rs.Close()
	for rs.Next() {
		var id int64
		var key string
		if err := rs.Scan(&id, &key); err != nil {
			return fmt.Errorf("import transactions: %w", err)
		}
		inserted[key] = id
	}
	if err := rs.Err(); err != nil {
		return fmt.Errorf("import transactions: %w", err)
	}
	return nil
}

// compareStoredTxs sets the outcome of rows whose key was already stored:
// unchanged when the stored transaction says the same, rejected otherwise.
func (s *Service) compareStoredTxs(ctx context.Context, q store.Querier, companyID int64, todo []*pendingTx, keys []string, res []ImportResult) error {
	if len(keys) == 0 {
		return nil
	}
	type stored struct {
		amount     int64
		currency   string
		customerID int64
		archived   bool
	}
	have := make(map[string]stored, len(keys))
	for rest := keys; len(rest) > 0; {
		n := min(len(rest), importChunk)
		args := []any{companyID}
		for _, k := range rest[:n] {
			args = append(args, k)
		}
		rows, err := q.Query(ctx, "SELECT key, amount, currency, customer_id, archived FROM transactions WHERE company_id = ? AND key IN (?"+
			strings.Repeat(", ?", n-1)+")", args...)
		if err != nil {
			return fmt.Errorf("read imported transactions: %w", err)
		}
		for rows.Next() {
			var k string
			var st stored
			if err := rows.Scan(&k, &st.amount, &st.currency, &st.customerID, &st.archived); err != nil {
				rows.Close()
				return fmt.Errorf("read imported transactions: %w", err)
			}
			have[k] = st
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read imported transactions: %w", err)
		}
		rest = rest[n:]
	}
	for _, pt := range todo {
		if res[pt.row].Outcome != "" {
			continue
		}
		st, ok := have[pt.in.Key]
		switch {
		case !ok:
			return fmt.Errorf("import transactions: key %s neither inserted nor stored", pt.in.Key)
		case st.amount != pt.in.Amount:
			res[pt.row].Err = errs.E(errs.Conflict, "'amount': transaction %s is already stored with amount %d; stored money is not changed by an import", pt.in.Key, st.amount)
		case st.currency != pt.cur:
			res[pt.row].Err = errs.E(errs.Conflict, "'currency': transaction %s is already stored in %s", pt.in.Key, st.currency)
		case st.customerID != pt.cu.ID:
			res[pt.row].Err = errs.E(errs.Conflict, "'customer_key': transaction %s is already stored for another customer", pt.in.Key)
		default:
			res[pt.row].Outcome = program.Unchanged
		}
	}
	return nil
}

// RewardImport is one row of a reward import: a reward earned elsewhere
// (history from another platform, or a partnerd export). It is stored with
// source "import" and no offer, so a recompute leaves it alone; the source,
// offer and payout it had where it came from are kept for the export.
type RewardImport struct {
	Key            string
	PartnerKey     string
	Customer       program.CustomerRef // optional
	TransactionKey string              // optional
	ReversesKey    string              // optional: the reward a clawback reverses
	LeadKey        string              // optional: the lead it was earned by
	DealKey        string              // optional: the deal it was earned by
	Amount         int64
	Currency       string
	Description    string
	Status         string
	DeclineReason  *string
	HoldReason     *string
	Explanation    json.RawMessage
	ReadyAt        *int64
	Source         string // where it came from: offer, manual, clawback or import
	OfferKey       string
	PayoutKey      string
	Test           bool
	Archived       bool
	CreatedAt      *int64
}

// SourceImport is the source of a reward created by an import.
const SourceImport = "import"

var importStatuses = map[string]bool{StatusPending: true, StatusApproved: true, StatusDeclined: true, StatusHold: true, StatusPaid: true}

// ImportReward records one imported reward inside tx, or finds it stored
// under its key. A stored reward with another amount, currency or partner
// is rejected; an import never changes a reward.
func (s *Service) ImportReward(ctx context.Context, tx *store.Tx, p program.Principal, in RewardImport) (program.Outcome, error) {
	if in.Key == "" {
		return "", errs.E(errs.Invalid, "'key' is a required property")
	}
	if err := program.CheckImportKey("key", in.Key); err != nil {
		return "", err
	}
	if in.PartnerKey == "" {
		return "", errs.E(errs.Invalid, "'partner_key' is a required property")
	}
	cur, err := money.Currency("currency", in.Currency)
	if err != nil {
		return "", err
	}
	if err := money.Amount("amount", in.Amount); err != nil {
		return "", err
	}
	status := in.Status
	if status == "" {
		status = StatusApproved
	}
	if !importStatuses[status] {
		return "", errs.E(errs.Invalid, "'status' must be one of pending, approved, declined, hold, paid: %q", in.Status)
	}
	source := in.Source
	switch source {
	case "", SourceImport:
		source = ""
	case SourceOffer, SourceManual, SourceClawback:
	default:
		return "", errs.E(errs.Invalid, "'source' must be one of offer, manual, clawback, import: %q", in.Source)
	}
	explanation := "{}"
	if len(in.Explanation) > 0 {
		var obj map[string]any
		if json.Unmarshal(in.Explanation, &obj) != nil {
			return "", errs.E(errs.Invalid, "'explanation' must be a JSON object")
		}
		explanation = string(in.Explanation)
	}
	now := s.now()
	created := now
	if in.CreatedAt != nil {
		if *in.CreatedAt < 0 || *in.CreatedAt > now+maxFuture {
			return "", errs.E(errs.Invalid, "'created_at' must be between 1970 and one day from now")
		}
		created = *in.CreatedAt
	}
	var partnershipID int64
	var partnerTest bool
	if err := tx.QueryRow(ctx, "SELECT id, test FROM partnerships WHERE company_id = ? AND partner_key = ?", p.CompanyID, in.PartnerKey).
		Scan(&partnershipID, &partnerTest); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return "", errs.E(errs.Invalid, "'partner_key' does not match any partnership in this program (import partners first): %s", in.PartnerKey)
		}
		return "", fmt.Errorf("find partnership: %w", err)
	}
	if p.Test && !partnerTest {
		return "", errs.E(errs.Invalid, "'partner_key' must name a test partner when using test keys")
	}
	var stored struct {
		companyID, partnershipID, amount int64
		currency                         string
	}
	err = tx.QueryRow(ctx, "SELECT company_id, partnership_id, amount, currency FROM rewards WHERE key = ?", in.Key).
		Scan(&stored.companyID, &stored.partnershipID, &stored.amount, &stored.currency)
	switch {
	case err == nil:
		switch {
		case stored.companyID != p.CompanyID:
			return "", errs.E(errs.Conflict, "'key' is already used by another program's reward: %s", in.Key)
		case stored.partnershipID != partnershipID:
			return "", errs.E(errs.Conflict, "'partner_key': reward %s is already stored for another partner", in.Key)
		case stored.amount != in.Amount:
			return "", errs.E(errs.Conflict, "'amount': reward %s is already stored with amount %d; an import does not change rewards", in.Key, stored.amount)
		case stored.currency != cur:
			return "", errs.E(errs.Conflict, "'currency': reward %s is already stored in %s", in.Key, stored.currency)
		}
		return program.Unchanged, nil
	case !errors.Is(err, sql.ErrNoRows):
		return "", fmt.Errorf("find reward: %w", err)
	}
	var customerID, txID, reversesID, leadID, dealID *int64
	if in.Customer != (program.CustomerRef{}) {
		cu, err := s.program.ResolveCustomer(ctx, tx, program.Principal{CompanyID: p.CompanyID}, in.Customer)
		if err != nil {
			return "", err
		}
		if cu.PartnershipID != partnershipID {
			return "", errs.E(errs.Invalid, "'customer_key': customer %s is attributed to another partner (%s)", cu.Key, cu.PartnerKey)
		}
		customerID = &cu.ID
	}
	if in.TransactionKey != "" {
		var id, pid int64
		if err := tx.QueryRow(ctx, "SELECT id, partnership_id FROM transactions WHERE company_id = ? AND key = ?", p.CompanyID, in.TransactionKey).
			Scan(&id, &pid); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return "", errs.E(errs.Invalid, "'transaction_key' does not match any transaction in this program (import transactions first): %s", in.TransactionKey)
			}
			return "", fmt.Errorf("find transaction: %w", err)
		}
		if pid != partnershipID {
			return "", errs.E(errs.Invalid, "'transaction_key': transaction %s belongs to another partner", in.TransactionKey)
		}
		txID = &id
	}
	if in.ReversesKey != "" {
		var id int64
		if err := tx.QueryRow(ctx, "SELECT id FROM rewards WHERE company_id = ? AND key = ?", p.CompanyID, in.ReversesKey).Scan(&id); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return "", errs.E(errs.Invalid, "'reverses_key' does not match any reward in this program (it must come earlier in the file): %s", in.ReversesKey)
			}
			return "", fmt.Errorf("find reversed reward: %w", err)
		}
		reversesID = &id
	}
	for _, link := range []struct {
		field, table, key string
		id                **int64
	}{{"lead_key", "leads", in.LeadKey, &leadID}, {"deal_key", "deals", in.DealKey, &dealID}} {
		if link.key == "" {
			continue
		}
		var id int64
		var pid *int64
		if err := tx.QueryRow(ctx, "SELECT id, partnership_id FROM "+link.table+" WHERE company_id = ? AND key = ?", p.CompanyID, link.key).
			Scan(&id, &pid); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return "", errs.E(errs.Invalid, "'%s' does not match any of this program's %s (import them first): %s", link.field, link.table, link.key)
			}
			return "", fmt.Errorf("find %s: %w", link.table, err)
		}
		if pid == nil || *pid != partnershipID {
			return "", errs.E(errs.Invalid, "'%s': %s belongs to another partner", link.field, link.key)
		}
		*link.id = &id
	}
	usd, err := usdAmount(ctx, tx, p.CompanyID, in.Amount, cur, created)
	if err != nil {
		return "", err
	}
	ready := created
	if in.ReadyAt != nil {
		ready = *in.ReadyAt
	}
	_, err = outbox.Insert(ctx, tx, `INSERT INTO rewards (key, company_id, partnership_id, customer_id, transaction_id, lead_id, deal_id,
		reverses_id, source, amount, currency, amount_usd, description, status, decline_reason, hold_reason, explanation, ready_at, test,
		archived, created_at, updated_at, origin_source, origin_offer_key, origin_payout_key)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		[]any{in.Key, p.CompanyID, partnershipID, customerID, txID, leadID, dealID, reversesID, SourceImport, in.Amount, cur, usd, in.Description,
			status, in.DeclineReason, in.HoldReason, explanation, ready, store.Bool(p.Test || partnerTest || in.Test),
			store.Bool(in.Archived), created, now, nilIfEmpty(source), nilIfEmpty(in.OfferKey), nilIfEmpty(in.PayoutKey)},
		p.CompanyID, outbox.RewardCreated, outbox.KindReward, now)
	if err != nil {
		return "", fmt.Errorf("insert imported reward: %w", err)
	}
	return program.Created, nil
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}
