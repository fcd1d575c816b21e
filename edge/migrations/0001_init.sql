-- The edge's state: tenants, their API keys, indexes and their versions, uploads and builds.
-- Times are ISO 8601 UTC strings (Date.toISOString), which sort as text. Ids follow
-- shared/index/keys.ts ID_PATTERN; the edge validates them before they get here.

CREATE TABLE tenants (
  id         TEXT PRIMARY KEY,
  name       TEXT NOT NULL,
  created_at TEXT NOT NULL,
  disabled   INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1))
);

-- Only the SHA-256 of a key is stored: a leaked table does not leak usable keys.
-- `prefix` (the first characters of the key) lets people tell their keys apart.
CREATE TABLE api_keys (
  id           TEXT PRIMARY KEY,
  tenant_id    TEXT NOT NULL REFERENCES tenants (id),
  name         TEXT,
  key_hash     TEXT NOT NULL UNIQUE CHECK (length(key_hash) = 64),
  prefix       TEXT NOT NULL,
  scopes       TEXT NOT NULL CHECK (json_valid(scopes) AND json_type(scopes) = 'array'),
  created_at   TEXT NOT NULL,
  revoked_at   TEXT,
  last_used_at TEXT
);
CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id, created_at);

-- status: 'empty' until a version is ready, then 'ready'; 'deleted' is a soft delete (the row
-- stays so that the id is not reused while its stored data still exists).
CREATE TABLE indexes (
  tenant_id      TEXT NOT NULL REFERENCES tenants (id),
  id             TEXT NOT NULL,
  created_at     TEXT NOT NULL,
  active_version INTEGER,
  doc_count      INTEGER NOT NULL DEFAULT 0,
  status         TEXT NOT NULL DEFAULT 'empty' CHECK (status IN ('empty', 'ready', 'deleted')),
  deleted_at     TEXT,
  PRIMARY KEY (tenant_id, id),
  CHECK ((status = 'deleted') = (deleted_at IS NOT NULL))
);

CREATE TABLE index_versions (
  tenant_id    TEXT NOT NULL,
  index_id     TEXT NOT NULL,
  version      INTEGER NOT NULL CHECK (version >= 1),
  state        TEXT NOT NULL CHECK (state IN ('building', 'ready', 'failed')),
  doc_count    INTEGER NOT NULL DEFAULT 0,
  manifest_key TEXT,
  shards       TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(shards)),
  created_at   TEXT NOT NULL,
  PRIMARY KEY (tenant_id, index_id, version),
  FOREIGN KEY (tenant_id, index_id) REFERENCES indexes (tenant_id, id)
);

CREATE TABLE uploads (
  tenant_id  TEXT NOT NULL,
  id         TEXT NOT NULL,
  index_id   TEXT NOT NULL,
  files      TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(files)),
  expires_at TEXT NOT NULL,
  created_at TEXT NOT NULL,
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, index_id) REFERENCES indexes (tenant_id, id)
);

-- state follows the worker's BUILD_STATES (shared/api/worker-api.ts) plus 'cancelled'.
CREATE TABLE builds (
  tenant_id     TEXT NOT NULL,
  id            TEXT NOT NULL,
  index_id      TEXT NOT NULL,
  version       INTEGER NOT NULL CHECK (version >= 1),
  upload_id     TEXT,
  worker_job_id TEXT,
  worker_url    TEXT,
  state         TEXT NOT NULL CHECK (state IN ('queued', 'reading', 'encoding', 'graph', 'writing', 'succeeded', 'failed', 'cancelled')),
  progress      TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(progress)),
  error         TEXT CHECK (error IS NULL OR json_valid(error)),
  created_at    TEXT NOT NULL,
  updated_at    TEXT NOT NULL,
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, index_id) REFERENCES indexes (tenant_id, id),
  FOREIGN KEY (tenant_id, upload_id) REFERENCES uploads (tenant_id, id)
);
-- At most one active (non-terminal) build per index: a second insert fails with a UNIQUE
-- constraint error, which the builds route turns into 409, with no check-then-insert race.
CREATE UNIQUE INDEX builds_one_active_per_index ON builds (tenant_id, index_id)
  WHERE state NOT IN ('succeeded', 'failed', 'cancelled');
CREATE INDEX builds_by_index ON builds (tenant_id, index_id, created_at);
