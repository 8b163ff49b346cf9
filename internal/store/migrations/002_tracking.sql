-- Tracking: per-company link and cookie settings, referral links, clicks,
-- S2S tracking tokens, sign-ups (the funnel, attributed or not) and
-- install-wide settings such as the salt of IP hashes.

ALTER TABLE companies ADD COLUMN link_domain TEXT NOT NULL DEFAULT '';
ALTER TABLE companies ADD COLUMN cookie_domain TEXT NOT NULL DEFAULT '';
ALTER TABLE companies ADD COLUMN attribution_days INTEGER NOT NULL DEFAULT 90;
ALTER TABLE companies ADD COLUMN allowed_origins TEXT NOT NULL DEFAULT '[]';

CREATE TABLE links (
  id AUTOID,
  key TEXT NOT NULL UNIQUE,
  company_id BIGINT NOT NULL REFERENCES companies(id),
  partnership_id BIGINT NOT NULL REFERENCES partnerships(id),
  slug TEXT NOT NULL UNIQUE,
  destination TEXT NOT NULL DEFAULT '',
  is_default INTEGER NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE INDEX links_partnership ON links(partnership_id, created_at, id);

CREATE TABLE clicks (
  id AUTOID,
  xid TEXT NOT NULL UNIQUE,
  company_id BIGINT NOT NULL REFERENCES companies(id),
  partnership_id BIGINT NOT NULL REFERENCES partnerships(id),
  link_id BIGINT NOT NULL REFERENCES links(id),
  sub_ids TEXT NOT NULL DEFAULT '{}',
  referrer TEXT NOT NULL DEFAULT '',
  user_agent TEXT NOT NULL DEFAULT '',
  ip_hash TEXT NOT NULL DEFAULT '',
  test INTEGER NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL
);
-- Every index here costs each click a B-tree insert on the flush path, so
-- clicks carry only what attribution (xid) and link counts (link_id) read.
CREATE INDEX clicks_link ON clicks(link_id, created_at);

ALTER TABLE customers ADD COLUMN click_xid TEXT;
ALTER TABLE customers ADD COLUMN link_id BIGINT REFERENCES links(id);
ALTER TABLE customers ADD COLUMN sub_ids TEXT NOT NULL DEFAULT '{}';
CREATE INDEX customers_link ON customers(link_id);

CREATE TABLE tracking_tokens (
  id AUTOID,
  company_id BIGINT NOT NULL REFERENCES companies(id),
  token_hash TEXT NOT NULL UNIQUE,
  created_at BIGINT NOT NULL
);

CREATE TABLE signups (
  id AUTOID,
  company_id BIGINT NOT NULL REFERENCES companies(id),
  customer_id BIGINT REFERENCES customers(id),
  partnership_id BIGINT REFERENCES partnerships(id),
  source TEXT NOT NULL,
  xid TEXT NOT NULL DEFAULT '',
  test INTEGER NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL
);
CREATE INDEX signups_company ON signups(company_id, created_at);

CREATE TABLE settings (
  name TEXT PRIMARY KEY,
  value TEXT NOT NULL
)
