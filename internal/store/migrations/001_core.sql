-- The program engine core: companies, their API keys, groups, partnerships,
-- partner tokens, customers and transactions. Booleans are INTEGER 0/1 and
-- times are epoch milliseconds (BIGINT) on both engines.

CREATE TABLE companies (
  id AUTOID,
  key TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  website TEXT NOT NULL DEFAULT '',
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);

CREATE TABLE api_keys (
  id AUTOID,
  company_id BIGINT NOT NULL REFERENCES companies(id),
  public_key TEXT NOT NULL UNIQUE,
  secret_hash TEXT NOT NULL,
  test INTEGER NOT NULL,
  created_at BIGINT NOT NULL
);

CREATE TABLE groups (
  id AUTOID,
  key TEXT NOT NULL UNIQUE,
  company_id BIGINT NOT NULL REFERENCES companies(id),
  name TEXT NOT NULL,
  slug TEXT NOT NULL,
  is_default INTEGER NOT NULL DEFAULT 0,
  archived INTEGER NOT NULL DEFAULT 0,
  features TEXT NOT NULL DEFAULT '{}',
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX groups_company_slug ON groups(company_id, slug);
CREATE INDEX groups_company_created ON groups(company_id, created_at, id);

CREATE TABLE partnerships (
  id AUTOID,
  key TEXT NOT NULL UNIQUE,
  company_id BIGINT NOT NULL REFERENCES companies(id),
  group_id BIGINT NOT NULL REFERENCES groups(id),
  partner_key TEXT NOT NULL,
  email TEXT NOT NULL,
  first_name TEXT NOT NULL DEFAULT '',
  last_name TEXT NOT NULL DEFAULT '',
  manager_email TEXT,
  manager_name TEXT,
  tags TEXT NOT NULL DEFAULT '[]',
  fields TEXT NOT NULL DEFAULT '[]',
  meta TEXT NOT NULL DEFAULT '{}',
  test INTEGER NOT NULL DEFAULT 0,
  archived INTEGER NOT NULL DEFAULT 0,
  joined_at BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX partnerships_company_partner_key ON partnerships(company_id, partner_key);
CREATE UNIQUE INDEX partnerships_company_email ON partnerships(company_id, email);
CREATE INDEX partnerships_company_created ON partnerships(company_id, created_at, id);
CREATE INDEX partnerships_company_updated ON partnerships(company_id, updated_at, id);

CREATE TABLE partner_tokens (
  id AUTOID,
  company_id BIGINT NOT NULL REFERENCES companies(id),
  partnership_id BIGINT NOT NULL REFERENCES partnerships(id),
  token_hash TEXT NOT NULL UNIQUE,
  created_at BIGINT NOT NULL
);

CREATE TABLE customers (
  id AUTOID,
  key TEXT NOT NULL UNIQUE,
  company_id BIGINT NOT NULL REFERENCES companies(id),
  partnership_id BIGINT NOT NULL REFERENCES partnerships(id),
  customer_key TEXT,
  email TEXT NOT NULL,
  name TEXT NOT NULL DEFAULT '',
  provider_key TEXT,
  meta TEXT NOT NULL DEFAULT '{}',
  source_type TEXT NOT NULL,
  test INTEGER NOT NULL DEFAULT 0,
  archived INTEGER NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX customers_company_customer_key ON customers(company_id, customer_key);
CREATE INDEX customers_company_email ON customers(company_id, email);
CREATE INDEX customers_company_created ON customers(company_id, created_at, id);
CREATE INDEX customers_company_updated ON customers(company_id, updated_at, id);
CREATE INDEX customers_partnership ON customers(partnership_id, created_at, id);

CREATE TABLE transactions (
  id AUTOID,
  key TEXT NOT NULL,
  company_id BIGINT NOT NULL REFERENCES companies(id),
  customer_id BIGINT NOT NULL REFERENCES customers(id),
  partnership_id BIGINT NOT NULL REFERENCES partnerships(id),
  amount BIGINT NOT NULL,
  currency TEXT NOT NULL,
  amount_usd BIGINT,
  category_key TEXT,
  product_key TEXT,
  metadata TEXT NOT NULL DEFAULT '{}',
  test INTEGER NOT NULL DEFAULT 0,
  archived INTEGER NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX transactions_company_key ON transactions(company_id, key);
CREATE INDEX transactions_company_created ON transactions(company_id, created_at, id);
CREATE INDEX transactions_company_updated ON transactions(company_id, updated_at, id);
CREATE INDEX transactions_partnership ON transactions(partnership_id, created_at, id);
CREATE INDEX transactions_customer ON transactions(customer_id, created_at, id)
