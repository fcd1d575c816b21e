-- Living indexes (README "Living indexes"): writes to an index go through its IndexWriter Durable
-- Object (edge/src/living/index-writer.ts), which assigns write seqs and commits them here.

-- head_seq: the highest acknowledged write seq (0: never written). Only ever raised. A strong
-- search sees the WAL batches (covered_seq of the searched version, head_seq].
ALTER TABLE indexes ADD COLUMN head_seq INTEGER NOT NULL DEFAULT 0 CHECK (head_seq >= 0);
-- purged_at: when every stored object of a deleted index was swept (the row stays as a tombstone).
ALTER TABLE indexes ADD COLUMN purged_at TEXT;

-- covered_seq: the WAL seq a version contains (a build: head_seq when it was dispatched; a
-- compaction: the toSeq it folded). kind: how the version was made.
ALTER TABLE index_versions ADD COLUMN covered_seq INTEGER NOT NULL DEFAULT 0 CHECK (covered_seq >= 0);
ALTER TABLE index_versions ADD COLUMN kind TEXT NOT NULL DEFAULT 'build' CHECK (kind IN ('build', 'compaction'));
-- superseded_at: when another version became active (garbage collection waits GC_GRACE_SECONDS
-- after it); swept_at: when its objects were deleted.
ALTER TABLE index_versions ADD COLUMN superseded_at TEXT;
ALTER TABLE index_versions ADD COLUMN swept_at TEXT;
