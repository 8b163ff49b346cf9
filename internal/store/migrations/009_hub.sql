-- The partner hub: an agency's workspaces, its connections to programs
-- (PartnerStack or partnerd, by token), the state of each stream's sync,
-- and the records synced, kept raw beside the columns the hub reads.

CREATE TABLE hub_workspaces (
  id AUTOID,
  key TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL UNIQUE,
  created_at BIGINT NOT NULL
);

-- secret is the token (or public:secret pair) sealed with AES-256-GCM; it
-- is never returned or logged. status is active or invalid (the source
-- refused the credentials: syncs stop until it is connected again).
CREATE TABLE hub_connections (
  id AUTOID,
  key TEXT NOT NULL UNIQUE,
  workspace_id BIGINT NOT NULL REFERENCES hub_workspaces(id),
  name TEXT NOT NULL,
  base_url TEXT NOT NULL,
  auth_kind TEXT NOT NULL,
  secret TEXT NOT NULL,
  status TEXT NOT NULL,
  status_reason TEXT,
  last_sync_at BIGINT,
  next_sync_at BIGINT NOT NULL DEFAULT 0,
  lease_until BIGINT NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX hub_connections_name ON hub_connections(workspace_id, name);
CREATE INDEX hub_connections_due ON hub_connections(status, next_sync_at);

-- One row per (connection, stream). high_water is the newest created_at
-- synced, updated_water the newest updated_at. A run in flight has run_min
-- (its min_created, or its min_updated when run_by is 'updated') and
-- run_cursor (the starting_after of its next page), written in the same
-- transaction as the page's records, so a crash replays at most one page.
CREATE TABLE hub_streams (
  connection_id BIGINT NOT NULL REFERENCES hub_connections(id),
  stream TEXT NOT NULL,
  high_water BIGINT NOT NULL DEFAULT 0,
  updated_water BIGINT NOT NULL DEFAULT 0,
  run_by TEXT NOT NULL DEFAULT 'created',
  run_min BIGINT,
  run_cursor TEXT,
  run_sweep INTEGER NOT NULL DEFAULT 0,
  run_started_at BIGINT,
  last_sweep_at BIGINT NOT NULL DEFAULT 0,
  last_success_at BIGINT,
  PRIMARY KEY (connection_id, stream)
);

-- A record as the source sent it (raw), with the normalized columns the
-- hub reads (the model every stream shares: money, the program, the
-- partnership, customer and transaction it refers to, the person). seen_at
-- is the start of the last run that returned it: a full sweep
-- soft-deletes (deleted_at) what it did not see.
CREATE TABLE hub_records (
  id AUTOID,
  connection_id BIGINT NOT NULL REFERENCES hub_connections(id),
  stream TEXT NOT NULL,
  key TEXT NOT NULL,
  raw TEXT NOT NULL,
  status TEXT,
  amount BIGINT,
  currency TEXT,
  amount_usd BIGINT,
  company_key TEXT,
  company_name TEXT,
  partnership_ref TEXT,
  customer_ref TEXT,
  transaction_ref TEXT,
  email TEXT,
  domain TEXT,
  reason TEXT,
  archived INTEGER NOT NULL DEFAULT 0,
  test INTEGER NOT NULL DEFAULT 0,
  source_created_at BIGINT NOT NULL,
  source_updated_at BIGINT NOT NULL,
  synced_at BIGINT NOT NULL,
  seen_at BIGINT NOT NULL,
  deleted_at BIGINT
);
-- seen_at has no index of its own: a sweep (weekly) reads the stream's
-- rows through hub_records_key, and an unindexed seen_at lets PostgreSQL
-- update it in place (a HOT update) instead of in every index.
-- No index on the references: the model and reports read a workspace's
-- records whole, and every index is written on each of a sync's inserts.
CREATE UNIQUE INDEX hub_records_key ON hub_records(connection_id, stream, key);

-- Every change of a record's status (a reward approved, paid, declined)
-- and of a program's terms (its offers and the partner's group, as JSON),
-- with the time the hub saw it.
CREATE TABLE hub_record_changes (
  id AUTOID,
  record_id BIGINT NOT NULL REFERENCES hub_records(id),
  field TEXT NOT NULL DEFAULT 'status',
  from_value TEXT,
  to_value TEXT,
  at BIGINT NOT NULL
);
CREATE INDEX hub_record_changes_record ON hub_record_changes(record_id, id);

-- A workspace's API tokens (Bearer hubk_…), stored only as SHA-256 hashes.
CREATE TABLE hub_tokens (
  workspace_id BIGINT NOT NULL REFERENCES hub_workspaces(id),
  token_hash TEXT NOT NULL UNIQUE,
  created_at BIGINT NOT NULL
);
