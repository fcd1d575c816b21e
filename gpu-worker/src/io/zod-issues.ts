/** Zod validation failures as one line a user can act on. */
import type { ZodError } from "zod";

/** Formats zod issues as `path: message; …` (the first few), without echoing the input values. */
export function describeZodError(error: ZodError): string {
  const shown = error.issues.slice(0, 5).map((i) => (i.path.length > 0 ? `${i.path.join(".")}: ${i.message}` : i.message));
  const more = error.issues.length > 5 ? `; and ${error.issues.length - 5} more` : "";
  return shown.join("; ") + more;
}
