-- Billing providers, continued: the currency of providers whose payment
-- notifications do not name one (Recurly's XML, some Chargify payloads),
-- the links from a provider's secondary ids (an invoice, a charge) to the
-- payment transaction they belong to, and the subscription state that
-- Chargebee, Chargify and Recurly report for a customer.

ALTER TABLE billing_configs ADD COLUMN currency TEXT NOT NULL DEFAULT '';

-- ref is "<provider>:<kind>:<id>", e.g. "stripe:charge:ch_1" for an invoice
-- payment, "recurly:invoice:<id>" for a Recurly payment; payment_key is the
-- transaction's key.
CREATE TABLE billing_links (
  company_id BIGINT NOT NULL REFERENCES companies(id),
  test INTEGER NOT NULL DEFAULT 0,
  ref TEXT NOT NULL,
  payment_key TEXT NOT NULL,
  PRIMARY KEY (company_id, test, ref)
);

-- One row per provider subscription: its latest reported state. event_at
-- (epoch ms, the provider's own event time) keeps an older event that
-- arrives late from overwriting a newer state.
CREATE TABLE billing_subscriptions (
  id AUTOID,
  company_id BIGINT NOT NULL REFERENCES companies(id),
  test INTEGER NOT NULL DEFAULT 0,
  provider TEXT NOT NULL,
  subscription_id TEXT NOT NULL,
  customer_key TEXT NOT NULL,
  status TEXT NOT NULL,
  plan TEXT NOT NULL DEFAULT '',
  event_type TEXT NOT NULL,
  event_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX billing_subscriptions_one ON billing_subscriptions(company_id, test, provider, subscription_id);
CREATE INDEX billing_subscriptions_customer ON billing_subscriptions(company_id, test, customer_key);

-- What a waiting event waits for ("customer:<customer_key>",
-- "provider:<provider customer id>", "payment:<transaction key>"): the
-- event is woken when that appears, instead of every waiting event of the
-- company being retried whenever anything happens.
ALTER TABLE billing_events ADD COLUMN wait_for TEXT;
CREATE INDEX billing_events_wait ON billing_events(company_id, wait_for) WHERE status = 'waiting';
