-- A search by email lists its customers newest first. With the email
-- alone in the index, SQLite chose to walk every customer of the company
-- in created_at order to find the email (0.7 s at 240,000 customers for
-- an email that matches none); with the order's columns after it, the
-- index answers both the filter and the order.
DROP INDEX customers_company_email;
CREATE INDEX customers_company_email ON customers(company_id, email, created_at, id);
