-- generation counts a connection's completed syncs: the hub's derived
-- views (report, referrals, accounts, …) are cached per workspace and
-- rebuilt when the sum of its connections' generations changes.
ALTER TABLE hub_connections ADD COLUMN generation BIGINT NOT NULL DEFAULT 0;
