-- Rollups for the dashboard: what a page would otherwise count over a
-- program's whole history on every view. internal/stats keeps them, a
-- few seconds behind the data. Test data is left out.
--
-- stats_months: per partnership and calendar month (UTC, "YYYY-MM", by
-- the records' created_at). Money is in US cents (amount_usd, or the
-- amount itself in USD); rewards_usd leaves declined ones out, and the
-- status columns split rewards by their current status.
CREATE TABLE stats_months (
  company_id BIGINT NOT NULL,
  partnership_id BIGINT NOT NULL,
  month TEXT NOT NULL,
  clicks BIGINT NOT NULL DEFAULT 0,
  signups BIGINT NOT NULL DEFAULT 0,
  customers BIGINT NOT NULL DEFAULT 0,
  revenue_usd BIGINT NOT NULL DEFAULT 0,
  rewards_usd BIGINT NOT NULL DEFAULT 0,
  hold_n BIGINT NOT NULL DEFAULT 0,
  hold_usd BIGINT NOT NULL DEFAULT 0,
  pending_n BIGINT NOT NULL DEFAULT 0,
  pending_usd BIGINT NOT NULL DEFAULT 0,
  approved_n BIGINT NOT NULL DEFAULT 0,
  approved_usd BIGINT NOT NULL DEFAULT 0,
  declined_n BIGINT NOT NULL DEFAULT 0,
  declined_usd BIGINT NOT NULL DEFAULT 0,
  paid_n BIGINT NOT NULL DEFAULT 0,
  paid_usd BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (company_id, month, partnership_id)
);
CREATE INDEX stats_months_partnership ON stats_months(partnership_id, month);

-- Clicks per link, all time.
CREATE TABLE stats_links (
  link_id BIGINT PRIMARY KEY,
  clicks BIGINT NOT NULL DEFAULT 0
);

-- How far the rollups have read: for append-only tables the last id
-- counted, for the others the newest updated_at seen.
CREATE TABLE stats_state (
  name TEXT PRIMARY KEY,
  value BIGINT NOT NULL
);

-- A partner's rewards, newest first (its page and its portal): without it
-- a partner with few rewards made the list read the company's every one.
CREATE INDEX rewards_partnership ON rewards(partnership_id, created_at, id);
