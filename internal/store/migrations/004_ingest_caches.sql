-- A counter bumped in the same transaction as every change to a company's
-- offers. Each node keeps the active offers in memory and checks the
-- counter (one primary-key read) on every write that earns, so an offer
-- change made on any node applies to the very next transaction everywhere.
ALTER TABLE companies ADD COLUMN offers_version BIGINT NOT NULL DEFAULT 0;

-- Each customer's first positive transaction (by arrival, so a backdated or
-- deleted one never changes it), for recurring windows: the write path reads
-- it with the customer instead of searching the customer's history on every
-- transaction.
ALTER TABLE customers ADD COLUMN first_paid_id BIGINT;
ALTER TABLE customers ADD COLUMN first_paid_at BIGINT;
UPDATE customers SET first_paid_id = (SELECT MIN(t.id) FROM transactions t WHERE t.customer_id = customers.id AND t.amount > 0);
UPDATE customers SET first_paid_at = (SELECT t.created_at FROM transactions t WHERE t.id = customers.first_paid_id)
  WHERE first_paid_id IS NOT NULL;
