-- A counter bumped in the same transaction as every change to a company's
-- offers. Each node keeps the active offers in memory and checks the
-- counter (one primary-key read) on every write that earns, so an offer
-- change made on any node applies to the very next transaction everywhere.
ALTER TABLE companies ADD COLUMN offers_version BIGINT NOT NULL DEFAULT 0;
