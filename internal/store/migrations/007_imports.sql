-- CSV imports: one row per import (from the CLI or the API) with its
-- options, progress and counts; the uploaded file of an API import, kept in
-- chunks until it has been processed so that any node can run or resume
-- it; and the row report (one row per rejected row). Imported rewards keep
-- the source, offer and payout keys they had where they came from, so an export of
-- them reads the same as the file they were imported from (their stored
-- source is "import", so recompute never mistakes them for its own).

CREATE TABLE imports (
  id AUTOID,
  key TEXT NOT NULL UNIQUE,
  company_id BIGINT NOT NULL REFERENCES companies(id),
  type TEXT NOT NULL,
  file_name TEXT NOT NULL DEFAULT '',
  size BIGINT NOT NULL DEFAULT 0,
  dry_run INTEGER NOT NULL DEFAULT 0,
  atomic INTEGER NOT NULL DEFAULT 0,
  no_rewards INTEGER NOT NULL DEFAULT 0,
  test INTEGER NOT NULL DEFAULT 0,
  source TEXT NOT NULL,
  status TEXT NOT NULL,
  error TEXT,
  warnings TEXT NOT NULL DEFAULT '[]',
  records BIGINT NOT NULL DEFAULT 0,
  bytes_read BIGINT NOT NULL DEFAULT 0,
  created BIGINT NOT NULL DEFAULT 0,
  updated BIGINT NOT NULL DEFAULT 0,
  unchanged BIGINT NOT NULL DEFAULT 0,
  rejected BIGINT NOT NULL DEFAULT 0,
  lease_until BIGINT NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  finished_at BIGINT
);
CREATE INDEX imports_company_created ON imports(company_id, created_at, id);
CREATE INDEX imports_pending ON imports(status, lease_until);

CREATE TABLE import_chunks (
  import_id BIGINT NOT NULL REFERENCES imports(id),
  seq INTEGER NOT NULL,
  data RAWBYTES NOT NULL,
  PRIMARY KEY (import_id, seq)
);

CREATE TABLE import_errors (
  import_id BIGINT NOT NULL REFERENCES imports(id),
  line BIGINT NOT NULL,
  col TEXT NOT NULL,
  reason TEXT NOT NULL,
  value TEXT NOT NULL DEFAULT ''
);
CREATE INDEX import_errors_import ON import_errors(import_id, line);

ALTER TABLE rewards ADD COLUMN origin_source TEXT;
ALTER TABLE rewards ADD COLUMN origin_offer_key TEXT;
ALTER TABLE rewards ADD COLUMN origin_payout_key TEXT;
