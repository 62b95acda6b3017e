-- API keys. A key is shown once, at creation: `sidx_<id>_<secret>`. Only the SHA-256 of the whole key is kept;
-- the id (public, 12 hex digits) finds the row, the hash is compared in constant time.
CREATE TABLE api_keys (
  id          TEXT PRIMARY KEY CHECK (length(id) = 12),
  name        TEXT NOT NULL,
  -- read: read routes; write: read + item writes; admin: everything (models, re-index, jobs).
  scope       TEXT NOT NULL CHECK (scope IN ('read', 'write', 'admin')),
  hash        TEXT NOT NULL CHECK (length(hash) = 64),
  created_at  TEXT NOT NULL,
  revoked_at  TEXT
) STRICT;
