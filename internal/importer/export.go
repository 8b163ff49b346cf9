package importer

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/partnerd/partnerd/internal/errs"
	"github.com/partnerd/partnerd/internal/pipeline"
	"github.com/partnerd/partnerd/internal/program"
	"github.com/partnerd/partnerd/internal/store"
)

// An export writes each object type with the columns its import reads,
// under the same names, so that the CSV files import back into an empty
// program as they were. Values derived from other data (USD amounts, which
// follow the exchange rates) are left out; the stored updated_at is too,
// because an import is itself an update.

type colType int

const (
	text colType = iota
	integer
	boolean
	timestamp
	rawJSON
)

type exportCol struct {
	name string
	expr string
	typ  colType
}

type exportKind struct {
	name  string
	from  string
	alias string
	cols  []exportCol
	// extra are JSON columns assembled in Go (a history, a group's stages)
	// because the two engines aggregate JSON differently: each is loaded
	// whole, by object id, before the rows are read.
	extra []extraCol
}

type extraCol struct {
	name string
	load func(ctx context.Context, q store.Querier, companyID int64) (map[int64]string, error)
}

func history(kind string) []extraCol {
	return []extraCol{{"history", func(ctx context.Context, q store.Querier, companyID int64) (map[int64]string, error) {
		return pipeline.HistoryJSON(ctx, q, companyID, kind)
	}}}
}

func c(name, expr string, typ colType) exportCol { return exportCol{name, expr, typ} }

var exportKinds = []exportKind{
	{name: "groups", from: "groups g", alias: "g", cols: []exportCol{
		c("key", "g.key", text), c("name", "g.name", text), c("features", "g.features", rawJSON), c("default", "g.is_default", boolean),
		c("archived", "g.archived", boolean), c("created_at", "g.created_at", timestamp)},
		extra: []extraCol{{"deal_stages", pipeline.StagesJSON}}},
	{name: "partners", from: "partnerships p JOIN groups g ON g.id = p.group_id", alias: "p", cols: []exportCol{
		c("key", "p.key", text), c("partner_key", "p.partner_key", text), c("email", "p.email", text),
		c("first_name", "p.first_name", text), c("last_name", "p.last_name", text), c("group_key", "g.key", text), c("group", "g.name", text),
		c("manager_email", "p.manager_email", text), c("manager_name", "p.manager_name", text), c("tags", "p.tags", rawJSON),
		c("fields", "p.fields", rawJSON), c("meta", "p.meta", rawJSON), c("test", "p.test", boolean),
		c("archived", "p.archived", boolean), c("joined_at", "p.joined_at", timestamp), c("created_at", "p.created_at", timestamp)}},
	{name: "customers", from: "customers cu JOIN partnerships p ON p.id = cu.partnership_id", alias: "cu", cols: []exportCol{
		c("key", "cu.key", text), c("customer_key", "cu.customer_key", text), c("email", "cu.email", text), c("name", "cu.name", text),
		c("partner_key", "p.partner_key", text), c("provider_key", "cu.provider_key", text), c("source_type", "cu.source_type", text),
		c("meta", "cu.meta", rawJSON), c("sub_ids", "cu.sub_ids", rawJSON), c("test", "cu.test", boolean),
		c("archived", "cu.archived", boolean), c("created_at", "cu.created_at", timestamp)}},
	{name: "transactions", from: "transactions t JOIN customers cu ON cu.id = t.customer_id JOIN partnerships p ON p.id = t.partnership_id",
		alias: "t", cols: []exportCol{
			c("key", "t.key", text), c("customer", "cu.key", text), c("customer_key", "cu.customer_key", text),
			c("customer_email", "cu.email", text), c("partner_key", "p.partner_key", text), c("amount", "t.amount", integer),
			c("currency", "t.currency", text), c("category_key", "t.category_key", text), c("product_key", "t.product_key", text),
			c("metadata", "t.metadata", rawJSON), c("test", "t.test", boolean), c("archived", "t.archived", boolean),
			c("created_at", "t.created_at", timestamp)}},
	{name: "leads", from: "leads l JOIN partnerships p ON p.id = l.partnership_id JOIN groups g ON g.id = l.group_id LEFT JOIN customers cu ON cu.id = l.customer_id",
		alias: "l", cols: []exportCol{
			c("key", "l.key", text), c("external_key", "l.external_key", text), c("partner_key", "p.partner_key", text),
			c("group_key", "g.key", text), c("amount", "l.amount", integer), c("currency", "l.currency", text),
			c("approved", "l.approved", boolean), c("status", "l.status", text), c("fields", "l.fields", rawJSON), c("meta", "l.meta", rawJSON),
			c("customer", "cu.key", text), c("test", "l.test", boolean), c("archived", "l.archived", boolean),
			c("created_at", "l.created_at", timestamp)},
		extra: history("lead")},
	{name: "deals", from: `deals d LEFT JOIN partnerships p ON p.id = d.partnership_id JOIN groups g ON g.id = d.group_id
		LEFT JOIN customers cu ON cu.id = d.customer_id`, alias: "d", cols: []exportCol{
		c("key", "d.key", text), c("external_key", "d.external_key", text), c("source", "d.source", text),
		c("partner_key", "p.partner_key", text), c("group_key", "g.key", text), c("account_name", "d.account_name", text),
		c("amount", "d.amount", integer), c("currency", "d.currency", text), c("close_date", "d.close_date", text),
		c("contact_first_name", "d.contact_first_name", text), c("contact_last_name", "d.contact_last_name", text),
		c("stage", "d.stage", text), c("lost_reason", "d.lost_reason", text), c("fields", "d.fields", rawJSON),
		c("meta", "d.meta", rawJSON), c("customer", "cu.key", text), c("test", "d.test", boolean), c("archived", "d.archived", boolean),
		c("won_at", "d.won_at", timestamp), c("created_at", "d.created_at", timestamp)},
		extra: history("deal")},
	{name: "rewards", from: `rewards r JOIN partnerships p ON p.id = r.partnership_id LEFT JOIN customers cu ON cu.id = r.customer_id
		LEFT JOIN transactions t ON t.id = r.transaction_id LEFT JOIN rewards rv ON rv.id = r.reverses_id
		LEFT JOIN offers o ON o.id = r.offer_id LEFT JOIN payouts po ON po.id = r.payout_id
		LEFT JOIN leads l ON l.id = r.lead_id LEFT JOIN deals d ON d.id = r.deal_id`, alias: "r", cols: []exportCol{
		c("key", "r.key", text), c("partner_key", "p.partner_key", text), c("customer", "cu.key", text),
		c("customer_key", "cu.customer_key", text), c("transaction_key", "t.key", text), c("reverses_key", "rv.key", text),
		c("lead_key", "l.key", text), c("deal_key", "d.key", text),
		c("amount", "r.amount", integer), c("currency", "r.currency", text), c("description", "r.description", text),
		c("status", "r.status", text), c("decline_reason", "r.decline_reason", text), c("hold_reason", "r.hold_reason", text),
		c("explanation", "r.explanation", rawJSON), c("ready_at", "r.ready_at", timestamp),
		c("source", "COALESCE(r.origin_source, r.source)", text), c("offer_key", "COALESCE(o.key, r.origin_offer_key)", text),
		c("payout_key", "COALESCE(po.key, r.origin_payout_key)", text), c("test", "r.test", boolean),
		c("archived", "r.archived", boolean), c("created_at", "r.created_at", timestamp)}},
	// Exported for the record; partnerd does not import these.
	{name: "offers", from: "offers o LEFT JOIN groups g ON g.id = o.group_id", alias: "o", cols: []exportCol{
		c("key", "o.key", text), c("name", "o.name", text), c("trigger", "o.trigger_on", text), c("type", "o.type", text),
		c("rate", "o.rate", text), c("amount", "o.amount", integer), c("currency", "o.currency", text),
		c("duration_months", "o.duration_months", integer), c("max_transactions", "o.max_transactions", integer),
		c("product_key", "o.product_key", text), c("category_key", "o.category_key", text), c("action_type", "o.action_type", text),
		c("hold_days", "o.hold_days", integer), c("group_key", "g.key", text), c("archived", "o.archived", boolean),
		c("created_at", "o.created_at", timestamp), c("updated_at", "o.updated_at", timestamp)}},
	{name: "payouts", from: "payouts po JOIN partnerships p ON p.id = po.partnership_id", alias: "po", cols: []exportCol{
		c("key", "po.key", text), c("partner_key", "p.partner_key", text), c("period", "po.period", text),
		c("amount", "po.amount", integer), c("currency", "po.currency", text), c("status", "po.status", text),
		c("external_reference", "po.external_reference", text), c("reward_count", "po.reward_count", integer),
		c("paid_at", "po.paid_at", timestamp), c("created_at", "po.created_at", timestamp), c("updated_at", "po.updated_at", timestamp)}},
	{name: "actions", from: "actions a JOIN partnerships p ON p.id = a.partnership_id LEFT JOIN customers cu ON cu.id = a.customer_id",
		alias: "a", cols: []exportCol{
			c("key", "a.key", text), c("partner_key", "p.partner_key", text), c("customer", "cu.key", text), c("type", "a.type", text),
			c("value", "a.value", integer), c("external_key", "a.external_key", text), c("test", "a.test", boolean),
			c("archived", "a.archived", boolean), c("created_at", "a.created_at", timestamp)}},
	{name: "links", from: "links l JOIN partnerships p ON p.id = l.partnership_id", alias: "l", cols: []exportCol{
		c("key", "l.key", text), c("partner_key", "p.partner_key", text), c("slug", "l.slug", text),
		c("destination", "l.destination", text), c("default", "l.is_default", boolean), c("created_at", "l.created_at", timestamp)}},
	{name: "clicks", from: "clicks k JOIN partnerships p ON p.id = k.partnership_id JOIN links l ON l.id = k.link_id", alias: "k",
		cols: []exportCol{
			c("xid", "k.xid", text), c("partner_key", "p.partner_key", text), c("link_key", "l.key", text),
			c("sub_ids", "k.sub_ids", rawJSON), c("referrer", "k.referrer", text), c("user_agent", "k.user_agent", text),
			c("test", "k.test", boolean), c("created_at", "k.created_at", timestamp)}},
}

// ExportTypes lists every exported type, importable ones first.
func ExportTypes() []string {
	out := make([]string, len(exportKinds))
	for i, k := range exportKinds {
		out[i] = k.name
	}
	return out
}

func exportKindFor(name string) (*exportKind, error) {
	for i := range exportKinds {
		if exportKinds[i].name == name {
			return &exportKinds[i], nil
		}
	}
	return nil, errs.E(errs.NotFound, "there is no export of %q: the types are %s", name, strings.Join(ExportTypes(), ", "))
}

// Formats of an export.
const (
	CSV   = "csv"
	JSONL = "jsonl"
)

// timeLayout writes times as ISO 8601 in UTC to the millisecond, which
// the import reads back to the same epoch milliseconds.
const timeLayout = "2006-01-02T15:04:05.000Z"

// Export writes one type of the principal's company to w, as CSV (with a
// header row) or as JSON lines, oldest first. It reads inside q, so a
// caller exporting several types passes one snapshot.
func (s *Service) Export(ctx context.Context, q store.Querier, p program.Principal, typ, format string, w io.Writer) (int64, error) {
	switch format {
	case CSV:
		return s.export(ctx, q, p, typ, w, nil)
	case JSONL:
		return s.export(ctx, q, p, typ, nil, w)
	}
	return 0, errs.E(errs.Invalid, "'format' must be csv or jsonl: %q", format)
}

// export reads one type once and writes each row to whichever of csvOut
// and jsonOut is set.
func (s *Service) export(ctx context.Context, q store.Querier, p program.Principal, typ string, csvOut, jsonOut io.Writer) (int64, error) {
	if p.IsPartner() {
		return 0, errs.E(errs.Forbidden, "Forbidden: exports need the company's API keys")
	}
	k, err := exportKindFor(typ)
	if err != nil {
		return 0, err
	}
	exprs := make([]string, len(k.cols))
	for i, col := range k.cols {
		exprs[i] = col.expr
	}
	cols := k.cols
	extras := make([]map[int64]string, len(k.extra))
	if len(k.extra) > 0 {
		for i, x := range k.extra {
			if extras[i], err = x.load(ctx, q, p.CompanyID); err != nil {
				return 0, fmt.Errorf("export %s: %w", typ, err)
			}
			cols = append(cols[:len(cols):len(cols)], c(x.name, "", rawJSON))
		}
		exprs = append(exprs, k.alias+".id")
	}
	rows, err := q.Query(ctx, "SELECT "+strings.Join(exprs, ", ")+" FROM "+k.from+" WHERE "+k.alias+".company_id = ? ORDER BY "+k.alias+".id", p.CompanyID)
	if err != nil {
		return 0, fmt.Errorf("export %s: %w", typ, err)
	}
	defer rows.Close()
	var cw *csv.Writer
	var cbuf, jw *bufio.Writer
	if csvOut != nil {
		cbuf = bufio.NewWriterSize(csvOut, 64<<10)
		cw = csv.NewWriter(cbuf)
		header := make([]string, len(cols))
		for i, col := range cols {
			header[i] = col.name
		}
		if err := cw.Write(header); err != nil {
			return 0, fmt.Errorf("export %s: %w", typ, err)
		}
	}
	if jsonOut != nil {
		jw = bufio.NewWriterSize(jsonOut, 64<<10)
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(exprs))
	for i := range k.cols {
		ptrs[i] = &vals[i]
	}
	var id int64
	if len(k.extra) > 0 {
		ptrs[len(exprs)-1] = &id
	}
	cells := make([]string, len(cols))
	var line []byte
	var n int64
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return n, fmt.Errorf("export %s: %w", typ, err)
		}
		for i, m := range extras {
			v, ok := m[id]
			vals[len(k.cols)+i] = sql.NullString{String: v, Valid: ok}
		}
		if cw != nil {
			for i, col := range cols {
				cells[i] = csvCell(col.typ, vals[i])
			}
			if err := cw.Write(cells); err != nil {
				return n, fmt.Errorf("export %s: %w", typ, err)
			}
		}
		if jw != nil {
			line = append(line[:0], '{')
			for i, col := range cols {
				if i > 0 {
					line = append(line, ',')
				}
				line = strconv.AppendQuote(line, col.name)
				line = append(line, ':')
				line = appendJSON(line, col.typ, vals[i])
			}
			line = append(line, '}', '\n')
			if _, err := jw.Write(line); err != nil {
				return n, fmt.Errorf("export %s: %w", typ, err)
			}
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("export %s: %w", typ, err)
	}
	if cw != nil {
		cw.Flush()
		if err := cw.Error(); err != nil {
			return n, fmt.Errorf("export %s: %w", typ, err)
		}
		if err := cbuf.Flush(); err != nil {
			return n, fmt.Errorf("export %s: %w", typ, err)
		}
	}
	if jw != nil {
		if err := jw.Flush(); err != nil {
			return n, fmt.Errorf("export %s: %w", typ, err)
		}
	}
	return n, nil
}

func csvCell(t colType, v sql.NullString) string {
	if !v.Valid {
		return ""
	}
	switch t {
	case boolean:
		if v.String == "0" || v.String == "false" {
			return "false"
		}
		return "true"
	case timestamp:
		ms, err := strconv.ParseInt(v.String, 10, 64)
		if err != nil {
			return v.String
		}
		return time.UnixMilli(ms).UTC().Format(timeLayout)
	}
	return v.String
}

func appendJSON(b []byte, t colType, v sql.NullString) []byte {
	if !v.Valid {
		return append(b, "null"...)
	}
	switch t {
	case integer, timestamp:
		if _, err := strconv.ParseInt(v.String, 10, 64); err == nil {
			return append(b, v.String...)
		}
	case boolean:
		if v.String == "0" || v.String == "false" {
			return append(b, "false"...)
		}
		return append(b, "true"...)
	case rawJSON:
		if json.Valid([]byte(v.String)) {
			return append(b, v.String...)
		}
	}
	enc, _ := json.Marshal(v.String)
	return append(b, enc...)
}

// ExportAll writes every type of the company into dir as TYPE.csv and
// TYPE.jsonl, from one snapshot of the database, and returns the row
// count per type.
func (s *Service) ExportAll(ctx context.Context, p program.Principal, dir string) (map[string]int64, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	counts := map[string]int64{}
	err := s.db.Snapshot(ctx, func(q store.Querier) error {
		for _, typ := range ExportTypes() {
			n, err := s.exportFiles(ctx, q, p, filepath.Join(dir, typ))
			if err != nil {
				return err
			}
			counts[typ] = n
		}
		return nil
	})
	return counts, err
}

// exportFiles writes base.csv and base.jsonl from one read of the type.
func (s *Service) exportFiles(ctx context.Context, q store.Querier, p program.Principal, base string) (int64, error) {
	var files [2]*os.File
	for i, ext := range []string{CSV, JSONL} {
		f, err := os.Create(base + "." + ext)
		if err != nil {
			return 0, fmt.Errorf("create %s.%s: %w", base, ext, err)
		}
		defer f.Close()
		files[i] = f
	}
	n, err := s.export(ctx, q, p, filepath.Base(base), files[0], files[1])
	for _, f := range files {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("write %s: %w", f.Name(), cerr)
		}
	}
	return n, err
}

// ExportOne writes one type from a snapshot of its own.
func (s *Service) ExportOne(ctx context.Context, p program.Principal, typ, format string, w io.Writer) (n int64, err error) {
	err = s.db.Snapshot(ctx, func(q store.Querier) error {
		n, err = s.Export(ctx, q, p, typ, format, w)
		return err
	})
	return n, err
}
