-- Rewards and payouts: offers, the rewards the engine computes from
-- customers, transactions and actions, payouts, exchange rates, and the
-- outbox that feeds outbound webhooks.

-- The group a partnership was in when a cause was recorded: groups are
-- tiers, and moving a partnership changes its future rewards only, so the
-- engine (and a recompute) must know the group at the time of the cause.
ALTER TABLE customers ADD COLUMN group_id BIGINT;
ALTER TABLE transactions ADD COLUMN group_id BIGINT;

ALTER TABLE companies ADD COLUMN payout_minimum TEXT NOT NULL DEFAULT '5.00';

CREATE TABLE offers (
  id AUTOID,
  key TEXT NOT NULL UNIQUE,
  company_id BIGINT NOT NULL REFERENCES companies(id),
  name TEXT NOT NULL,
  trigger_on TEXT NOT NULL,
  type TEXT NOT NULL,
  rate TEXT,
  amount BIGINT,
  currency TEXT,
  duration_months INTEGER,
  max_transactions INTEGER,
  product_key TEXT,
  category_key TEXT,
  action_type TEXT,
  hold_days INTEGER NOT NULL DEFAULT 0,
  group_id BIGINT REFERENCES groups(id),
  archived INTEGER NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE INDEX offers_company ON offers(company_id, created_at, id);

CREATE TABLE actions (
  id AUTOID,
  key TEXT NOT NULL UNIQUE,
  company_id BIGINT NOT NULL REFERENCES companies(id),
  partnership_id BIGINT NOT NULL REFERENCES partnerships(id),
  customer_id BIGINT REFERENCES customers(id),
  group_id BIGINT,
  type TEXT NOT NULL,
  value BIGINT NOT NULL,
  external_key TEXT,
  test INTEGER NOT NULL DEFAULT 0,
  archived INTEGER NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE INDEX actions_company_created ON actions(company_id, created_at, id);
CREATE INDEX actions_company_updated ON actions(company_id, updated_at, id);
CREATE UNIQUE INDEX actions_external ON actions(company_id, external_key);
CREATE INDEX actions_customer ON actions(customer_id);

CREATE TABLE payouts (
  id AUTOID,
  key TEXT NOT NULL UNIQUE,
  company_id BIGINT NOT NULL REFERENCES companies(id),
  partnership_id BIGINT NOT NULL REFERENCES partnerships(id),
  period TEXT NOT NULL,
  amount BIGINT NOT NULL,
  currency TEXT NOT NULL,
  status TEXT NOT NULL,
  external_reference TEXT,
  reward_count INTEGER NOT NULL,
  paid_at BIGINT,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX payouts_period ON payouts(company_id, partnership_id, currency, period);
CREATE INDEX payouts_company_created ON payouts(company_id, created_at, id);
CREATE INDEX payouts_company_updated ON payouts(company_id, updated_at, id);

-- dedupe names the cause a computed reward comes from (offer and cause, or
-- the reward a clawback reverses); its unique index is what makes a reward
-- impossible to count twice. Manual rewards have none.
CREATE TABLE rewards (
  id AUTOID,
  key TEXT NOT NULL UNIQUE,
  company_id BIGINT NOT NULL REFERENCES companies(id),
  partnership_id BIGINT NOT NULL REFERENCES partnerships(id),
  offer_id BIGINT REFERENCES offers(id),
  customer_id BIGINT REFERENCES customers(id),
  transaction_id BIGINT REFERENCES transactions(id),
  action_id BIGINT REFERENCES actions(id),
  reverses_id BIGINT REFERENCES rewards(id),
  source TEXT NOT NULL,
  dedupe TEXT,
  amount BIGINT NOT NULL,
  currency TEXT NOT NULL,
  amount_usd BIGINT,
  description TEXT NOT NULL DEFAULT '',
  status TEXT NOT NULL,
  decline_reason TEXT,
  hold_reason TEXT,
  explanation TEXT NOT NULL DEFAULT '{}',
  ready_at BIGINT NOT NULL,
  payout_id BIGINT REFERENCES payouts(id),
  test INTEGER NOT NULL DEFAULT 0,
  archived INTEGER NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX rewards_dedupe ON rewards(company_id, dedupe);
CREATE INDEX rewards_company_created ON rewards(company_id, created_at, id);
CREATE INDEX rewards_company_updated ON rewards(company_id, updated_at, id);
CREATE INDEX rewards_transaction ON rewards(transaction_id);
CREATE INDEX rewards_action ON rewards(action_id);
CREATE INDEX rewards_customer ON rewards(customer_id);
CREATE INDEX rewards_payable ON rewards(company_id, status, payout_id);
CREATE INDEX rewards_payout ON rewards(payout_id);

-- Dated exchange rates a vendor loads: one unit of currency is worth
-- usd_rate US dollars from the given day (YYYY-MM-DD, UTC) on.
CREATE TABLE exchange_rates (
  company_id BIGINT NOT NULL REFERENCES companies(id),
  currency TEXT NOT NULL,
  day TEXT NOT NULL,
  usd_rate TEXT NOT NULL,
  PRIMARY KEY (company_id, currency, day)
);

-- Runs of the monthly payout schedule, so that several nodes run each
-- company's month once.
CREATE TABLE payout_runs (
  company_id BIGINT NOT NULL REFERENCES companies(id),
  period TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (company_id, period)
);

CREATE TABLE webhooks (
  id AUTOID,
  key TEXT NOT NULL UNIQUE,
  company_id BIGINT NOT NULL REFERENCES companies(id),
  target_url TEXT NOT NULL,
  events TEXT NOT NULL,
  secret TEXT NOT NULL,
  archived INTEGER NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE INDEX webhooks_company ON webhooks(company_id, created_at, id);

-- The outbox: every event is written in the same transaction as the change
-- it describes, and fanned out to subscribed webhooks afterwards.
CREATE TABLE events (
  id AUTOID,
  company_id BIGINT NOT NULL REFERENCES companies(id),
  name TEXT NOT NULL,
  kind TEXT NOT NULL,
  object_id BIGINT NOT NULL,
  created_at BIGINT NOT NULL
);

CREATE TABLE deliveries (
  id AUTOID,
  webhook_id BIGINT NOT NULL REFERENCES webhooks(id),
  event_id BIGINT NOT NULL,
  event TEXT NOT NULL,
  body TEXT NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_at BIGINT NOT NULL,
  lease_until BIGINT NOT NULL DEFAULT 0,
  last_status INTEGER,
  last_error TEXT,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX deliveries_once ON deliveries(webhook_id, event_id);
CREATE INDEX deliveries_due ON deliveries(status, next_at);
CREATE INDEX deliveries_webhook ON deliveries(webhook_id, created_at, id)
