-- Billing providers' webhooks: each company's provider settings (the
-- webhook secret sealed with the install's encryption key), and the inbox
-- every verified event is stored in, raw, before it is processed.

CREATE TABLE billing_configs (
  id AUTOID,
  company_id BIGINT NOT NULL REFERENCES companies(id),
  provider TEXT NOT NULL,
  test INTEGER NOT NULL DEFAULT 0,
  secret TEXT NOT NULL,
  payments_from TEXT NOT NULL DEFAULT '',
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX billing_configs_one ON billing_configs(company_id, provider, test);

-- status: pending (to process), done, waiting (for its customer or its
-- payment; retried when they may exist), failed (retried with backoff),
-- ignored (an event type partnerd does not use).
CREATE TABLE billing_events (
  id AUTOID,
  company_id BIGINT NOT NULL REFERENCES companies(id),
  provider TEXT NOT NULL,
  test INTEGER NOT NULL DEFAULT 0,
  event_id TEXT NOT NULL,
  event_type TEXT NOT NULL,
  content_type TEXT NOT NULL,
  body RAWBYTES NOT NULL,
  status TEXT NOT NULL,
  reason TEXT,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_at BIGINT NOT NULL,
  lease_until BIGINT NOT NULL DEFAULT 0,
  received_at BIGINT NOT NULL,
  processed_at BIGINT
);
CREATE UNIQUE INDEX billing_events_once ON billing_events(company_id, provider, test, event_id);
CREATE INDEX billing_events_due ON billing_events(status, next_at);
CREATE INDEX billing_events_company ON billing_events(company_id, received_at, id);

CREATE INDEX customers_provider ON customers(company_id, provider_key);

-- How much of a provider's payment has been refunded so far, and the
-- negative transactions that recorded it: providers report the running
-- total, so each partial refund records only the increase, and a full
-- refund deletes the payment and those partial refunds together.
CREATE TABLE billing_refunds (
  company_id BIGINT NOT NULL REFERENCES companies(id),
  payment_key TEXT NOT NULL,
  refunded BIGINT NOT NULL,
  refund_keys TEXT NOT NULL DEFAULT '[]',
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (company_id, payment_key)
);
