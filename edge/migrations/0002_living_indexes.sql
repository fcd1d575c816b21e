-- Living indexes (issue 10). H4's stand-in for H3's migration: exactly the columns of DESIGN-10.md.
-- indexes.head_seq: the highest committed (acknowledged) write seq; purged_at: when every stored
-- object of a deleted index was gone. index_versions.covered_seq: the last WAL seq folded into the
-- version; kind: who made it; superseded_at: when it stopped being active; swept_at: when the
-- sweeper deleted its objects.
ALTER TABLE indexes ADD COLUMN head_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE indexes ADD COLUMN purged_at TEXT;
ALTER TABLE index_versions ADD COLUMN covered_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE index_versions ADD COLUMN kind TEXT NOT NULL DEFAULT 'build' CHECK (kind IN ('build', 'compaction'));
ALTER TABLE index_versions ADD COLUMN superseded_at TEXT;
ALTER TABLE index_versions ADD COLUMN swept_at TEXT;
