-- The web app's people and their sessions.
--
-- A user is one of three kinds, and belongs to exactly one thing:
--   vendor:  a company it runs the program of (company_id);
--   agency:  a hub workspace (workspace_id);
--   partner: a partnership, in the partner portal (partnership_id).
-- role is owner, admin or viewer; partners are always viewer of their own
-- partnership (they still manage their own API tokens).
-- portal is where the user logs in: app (vendors and agencies, at /login)
-- or partner (the partner portal, at /portal/login). email is stored
-- lower-cased and is unique per portal: one person may run a program and,
-- separately, be a partner in another.
CREATE TABLE web_users (
  id AUTOID,
  key TEXT NOT NULL UNIQUE,
  portal TEXT NOT NULL,
  kind TEXT NOT NULL,
  email TEXT NOT NULL,
  name TEXT NOT NULL DEFAULT '',
  password_hash TEXT NOT NULL,
  role TEXT NOT NULL,
  company_id BIGINT REFERENCES companies(id),
  workspace_id BIGINT REFERENCES hub_workspaces(id),
  partnership_id BIGINT REFERENCES partnerships(id),
  created_at BIGINT NOT NULL,
  last_login_at BIGINT
);
CREATE UNIQUE INDEX web_users_portal_email ON web_users(portal, email);

-- A session is found by the hash of its cookie's token, never by the token
-- itself. csrf is the token every form of the session carries.
CREATE TABLE web_sessions (
  token_hash TEXT PRIMARY KEY,
  user_id BIGINT NOT NULL REFERENCES web_users(id),
  csrf TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL
);
CREATE INDEX web_sessions_user ON web_sessions(user_id);

-- Failed log-ins, by email and by client address, for the rate limit: kept
-- in the database so that every node counts the same attempts.
CREATE TABLE web_login_failures (
  id AUTOID,
  email TEXT NOT NULL,
  client TEXT NOT NULL,
  at BIGINT NOT NULL
);
CREATE INDEX web_login_failures_email ON web_login_failures(email, at);
CREATE INDEX web_login_failures_client ON web_login_failures(client, at);
