-- Leads and deals: the B2B pipeline. Partners register leads and co-sell
-- deals; a lead can be approved, a deal moves through its group's stages;
-- both can be converted into a customer attributed to the partnership.

-- A group's deal stages, in order. A group without rows uses the built-in
-- stages (pipeline.DefaultStages). outcome says what reaching the stage
-- means: open, won (a deal_won offer pays) or lost.
CREATE TABLE deal_stages (
  company_id BIGINT NOT NULL REFERENCES companies(id),
  group_id BIGINT NOT NULL REFERENCES groups(id),
  position INTEGER NOT NULL,
  name TEXT NOT NULL,
  outcome TEXT NOT NULL,
  PRIMARY KEY (group_id, position)
);

-- approvals counts how often the lead became approved: each approval is a
-- cause of its own (a lead un-approved then approved again earns again, the
-- first approval's rewards having been reversed).
CREATE TABLE leads (
  id AUTOID,
  key TEXT NOT NULL UNIQUE,
  company_id BIGINT NOT NULL REFERENCES companies(id),
  partnership_id BIGINT NOT NULL REFERENCES partnerships(id),
  group_id BIGINT NOT NULL REFERENCES groups(id),
  external_key TEXT,
  amount BIGINT,
  currency TEXT NOT NULL,
  approved INTEGER NOT NULL DEFAULT 0,
  approvals INTEGER NOT NULL DEFAULT 0,
  approved_at BIGINT,
  status TEXT NOT NULL,
  fields TEXT NOT NULL DEFAULT '[]',
  meta TEXT NOT NULL DEFAULT '{}',
  customer_id BIGINT REFERENCES customers(id),
  source TEXT NOT NULL,
  test INTEGER NOT NULL DEFAULT 0,
  archived INTEGER NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX leads_external ON leads(company_id, external_key);
CREATE INDEX leads_company_created ON leads(company_id, created_at, id);
CREATE INDEX leads_company_updated ON leads(company_id, updated_at, id);
CREATE INDEX leads_partnership ON leads(partnership_id, created_at);

-- A deal's partnership is null for a vendor-sourced deal no partner works
-- on. outcome is the outcome of its stage when the stage was set, so that
-- renaming a group's stages later does not change what was won. wins counts
-- how often it was won, as leads.approvals does.
CREATE TABLE deals (
  id AUTOID,
  key TEXT NOT NULL UNIQUE,
  company_id BIGINT NOT NULL REFERENCES companies(id),
  partnership_id BIGINT REFERENCES partnerships(id),
  group_id BIGINT NOT NULL REFERENCES groups(id),
  source TEXT NOT NULL,
  account_name TEXT NOT NULL DEFAULT '',
  amount BIGINT,
  currency TEXT NOT NULL,
  close_date TEXT,
  contact_first_name TEXT NOT NULL DEFAULT '',
  contact_last_name TEXT NOT NULL DEFAULT '',
  external_key TEXT,
  stage TEXT NOT NULL,
  outcome TEXT NOT NULL,
  wins INTEGER NOT NULL DEFAULT 0,
  won_at BIGINT,
  lost_reason TEXT,
  fields TEXT NOT NULL DEFAULT '[]',
  meta TEXT NOT NULL DEFAULT '{}',
  customer_id BIGINT REFERENCES customers(id),
  origin TEXT NOT NULL,
  test INTEGER NOT NULL DEFAULT 0,
  archived INTEGER NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX deals_external ON deals(company_id, external_key);
CREATE INDEX deals_company_created ON deals(company_id, created_at, id);
CREATE INDEX deals_company_updated ON deals(company_id, updated_at, id);
CREATE INDEX deals_partnership ON deals(partnership_id, created_at);

-- Every change of a lead's status or approval and of a deal's stage, with
-- its time and who made it: agencies report on pipeline movement.
CREATE TABLE pipeline_history (
  id AUTOID,
  company_id BIGINT NOT NULL REFERENCES companies(id),
  object_kind TEXT NOT NULL,
  object_id BIGINT NOT NULL,
  field TEXT NOT NULL,
  from_value TEXT,
  to_value TEXT,
  actor TEXT NOT NULL,
  at BIGINT NOT NULL
);
CREATE INDEX pipeline_history_object ON pipeline_history(object_kind, object_id, id);

ALTER TABLE rewards ADD COLUMN lead_id BIGINT REFERENCES leads(id);
ALTER TABLE rewards ADD COLUMN deal_id BIGINT REFERENCES deals(id);
CREATE INDEX rewards_lead ON rewards(lead_id);
CREATE INDEX rewards_deal ON rewards(deal_id);

-- SQLite hands out max(id)+1 for an INTEGER PRIMARY KEY, so once the outbox
-- drained, a new event took the id of one already fanned out, and its
-- delivery collided with the old one's (deliveries are unique per webhook
-- and event id) and was dropped. AUTOINCREMENT never reuses an id; its
-- counter starts past every event a delivery names. PostgreSQL's identity
-- never reused one.
-- sqlite only
CREATE TABLE events_seq (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  company_id BIGINT NOT NULL REFERENCES companies(id),
  name TEXT NOT NULL,
  kind TEXT NOT NULL,
  object_id BIGINT NOT NULL,
  created_at BIGINT NOT NULL
);
-- sqlite only
INSERT INTO events_seq (id, company_id, name, kind, object_id, created_at)
  SELECT id, company_id, name, kind, object_id, created_at FROM events;
-- sqlite only
INSERT INTO sqlite_sequence (name, seq) SELECT 'events_seq', 0
  WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'events_seq');
-- sqlite only
UPDATE sqlite_sequence SET seq = MAX(seq, (SELECT COALESCE(MAX(event_id), 0) FROM deliveries)) WHERE name = 'events_seq';
-- sqlite only
DROP TABLE events;
-- sqlite only
ALTER TABLE events_seq RENAME TO events;
