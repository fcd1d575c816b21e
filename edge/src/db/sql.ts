/** Small helpers shared by the D1 data-access modules. */

/** The clock for every stored timestamp: ISO 8601 UTC, which sorts correctly as text. */
export function nowIso(): string {
  return new Date().toISOString();
}

/**
 * D1 reports constraint violations only as error messages ("UNIQUE constraint failed: …").
 * Inserting and catching this is race-free, unlike checking first and inserting after.
 */
export function isUniqueViolation(error: unknown): boolean {
  return error instanceof Error && /UNIQUE constraint failed|SQLITE_CONSTRAINT_PRIMARYKEY/.test(error.message);
}

/** Parses a JSON column that the schema's CHECK (json_valid) guarantees to be JSON. */
export function jsonColumn<T>(value: string | null): T | null {
  return value === null ? null : (JSON.parse(value) as T);
}
