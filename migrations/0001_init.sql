-- Control plane: the model registry and re-index jobs. Times are ISO-8601 UTC text.
CREATE TABLE models (
  id             TEXT PRIMARY KEY,
  -- Small integer used in LMDB SID keys (u16), assigned at registration, never reused.
  version        INTEGER NOT NULL UNIQUE CHECK (version BETWEEN 0 AND 65535),
  method         TEXT NOT NULL CHECK (method IN ('rqkmeans', 'rqvae', 'vqvae')),
  input_dim      INTEGER NOT NULL CHECK (input_dim > 0),
  levels         INTEGER NOT NULL CHECK (levels BETWEEN 1 AND 255),
  codebook_sizes TEXT NOT NULL CHECK (json_valid(codebook_sizes) AND json_array_length(codebook_sizes) = levels),
  path           TEXT NOT NULL,
  sha256         TEXT NOT NULL CHECK (length(sha256) = 64),
  metrics        TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metrics)),
  status         TEXT NOT NULL DEFAULT 'registered' CHECK (status IN ('registered', 'active', 'retired')),
  created_at     TEXT NOT NULL
) STRICT;

-- At most one active model.
CREATE UNIQUE INDEX models_one_active ON models (status) WHERE status = 'active';

CREATE TABLE jobs (
  id         TEXT PRIMARY KEY,
  kind       TEXT NOT NULL,
  model_id   TEXT REFERENCES models (id),
  status     TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
  processed  INTEGER NOT NULL DEFAULT 0 CHECK (processed >= 0),
  total      INTEGER CHECK (total IS NULL OR total >= 0),
  error      TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
) STRICT;

CREATE INDEX jobs_by_status ON jobs (status, created_at);
