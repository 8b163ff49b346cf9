-- Lists of rewards by status count their live rewards (archived = 0) up
-- to 10,001. With archived outside the index each of those rows was read
-- from the table: the declined ones of a year are spread thinly over it,
-- and counting them took 36 ms at the median and 170 ms at the 95th
-- percentile at 1.2 million rewards. With it the count reads the index
-- alone. The payout run asks for archived = 0 too.
DROP INDEX rewards_status;
CREATE INDEX rewards_status ON rewards(company_id, status, archived, created_at, id);
