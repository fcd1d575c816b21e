/**
 * JSON logs (pino). What may be logged is decided here and at each call site: ids, counts, lengths
 * and timings; never query or document text, signatures or secrets. Redaction below is the safety
 * net for headers and config objects that reach a log call by accident.
 */
import { pino, type DestinationStream, type Logger } from "pino";

export type { Logger } from "pino";

export const REDACTED_PATHS = [
  "authorization",
  "headers.authorization",
  'headers["x-hyp-signature"]',
  "req.headers.authorization",
  'req.headers["x-hyp-signature"]',
  "secret",
  "secrets",
  "signingSecrets",
  "*.secret",
  "*.secrets",
  "*.signingSecrets",
  "query",
  "*.query",
  "text",
  "*.text",
  "documents",
  "*.documents",
];

export interface LoggerOptions {
  level?: string;
  /** Where lines go; stdout by default (tests pass a collecting stream). */
  destination?: DestinationStream;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      level: options.level ?? "info",
      base: { service: "gpu-worker" },
      redact: { paths: REDACTED_PATHS, censor: "[redacted]" },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.destination,
  );
}
