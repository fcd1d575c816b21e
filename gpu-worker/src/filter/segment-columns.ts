/**
 * A segment's filter columns as a search or compaction reads them, always for the index's whole
 * declared schema: the shard's `filterColumns` section decoded (once per shard: cached by the
 * decoded shard object), and every declared field the segment has no column for (a segment written
 * before the field was declared, or with no section at all) an all-absent column. A column whose
 * type differs from the schema's is treated as absent too: its values could not satisfy a
 * condition validated against the declared type.
 */
import type { FieldSchema } from "../../../shared/filter/schema.ts";
import { fieldValue, valueHasType } from "../../../shared/filter/schema.ts";
import type { DecodedShard } from "../../../shared/index/format.ts";
import { buildFilterColumns, decodeFilterColumns, type FilterColumn, type FilterColumns } from "../../../shared/index/filter-columns.ts";
import { nodeChecksums } from "../store/checksums.ts";

const decoded = new WeakMap<DecodedShard, FilterColumns | null>();

/** The shard's own columns (null when it stores none). Verified once per decoded shard. */
export function storedFilterColumns(shard: DecodedShard, label?: string): FilterColumns | null {
  let columns = decoded.get(shard);
  if (columns === undefined) {
    columns =
      shard.filterColumns.length === 0
        ? null
        : decodeFilterColumns(shard.filterColumns, { expectedRows: shard.docCount, checksums: nodeChecksums, ...(label ? { label } : {}) });
    decoded.set(shard, columns);
  }
  return columns;
}

/** Columns for exactly `schema`'s fields over the shard's rows (missing or mistyped ones: all absent). */
export function segmentFilterColumns(shard: DecodedShard, schema: FieldSchema, label?: string): FilterColumns {
  const stored = storedFilterColumns(shard, label);
  const missing: Record<string, FieldSchema[string]> = {};
  const columns = new Map<string, FilterColumn>();
  for (const [name, type] of Object.entries(schema)) {
    const column = stored?.columns.get(name);
    if (column && column.type === type) columns.set(name, column);
    else missing[name] = type;
  }
  if (Object.keys(missing).length > 0) {
    const empty = buildFilterColumns(missing, new Array<Record<string, unknown>>(shard.docCount).fill({}));
    for (const [name, column] of empty.columns) columns.set(name, column);
  }
  return { rows: shard.docCount, columns };
}

/**
 * A document's declared field values as filters see them: each declared field the document holds
 * with the declared type (anything else is absent, as in the columns). For WAL documents (the
 * tail) and for compaction's new columns.
 */
export function declaredFieldValues(schema: FieldSchema, fields: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, type] of Object.entries(schema)) {
    const value = fieldValue(fields, name);
    if (value !== undefined && valueHasType(value, type)) out[name] = value;
  }
  return out;
}
