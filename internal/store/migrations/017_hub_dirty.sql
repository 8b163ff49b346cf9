-- dirty says that a connection's records changed since its generation
-- last moved. A sync that created, changed or removed no record leaves
-- the generation as it was, and with it the hub's cached views: a
-- rebuild takes seconds at a few hundred thousand records, and most
-- scheduled syncs change nothing. It is set by the page that changed
-- something, in that page's transaction, so that a run that crashed
-- after writing and a resumed run that wrote nothing more still move
-- the generation when they complete.
ALTER TABLE hub_connections ADD COLUMN dirty INTEGER NOT NULL DEFAULT 1;
