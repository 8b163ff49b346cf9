-- The connections page showed each stream's records by counting them on
-- every view (3 s at 400,000 records). A run now counts them once, as it
-- ends, and the page reads the counts kept here.
ALTER TABLE hub_streams ADD COLUMN records BIGINT NOT NULL DEFAULT 0;
ALTER TABLE hub_streams ADD COLUMN deleted BIGINT NOT NULL DEFAULT 0;
UPDATE hub_streams SET
  records = (SELECT COUNT(*) FROM hub_records r WHERE r.connection_id = hub_streams.connection_id AND r.stream = hub_streams.stream AND r.deleted_at IS NULL),
  deleted = (SELECT COUNT(*) FROM hub_records r WHERE r.connection_id = hub_streams.connection_id AND r.stream = hub_streams.stream AND r.deleted_at IS NOT NULL);
