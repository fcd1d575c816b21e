/**
 * What one build may consume, besides its documents' own limits (documents.ts): input bytes after
 * decompression, the decompression ratio of gzip inputs, wall time, and document text held at once.
 * The service takes them from its configuration (BUILD_* in service/config.ts); the CLI uses the defaults.
 */
export interface BuildLimits {
  /** Decompressed bytes over all inputs of one reading pass, blank lines included. */
  maxInputBytes: number;
  /** Decompressed bytes per compressed byte of a gzip input (after the first RATIO_GRACE_BYTES). */
  maxGzipRatio: number;
  /** Wall time of the whole build. */
  timeoutMs: number;
  /** Bytes (UTF-8) of document text read but not yet encoded. */
  textBytesInFlight: number;
}

export const DEFAULT_BUILD_LIMITS: BuildLimits = {
  maxInputBytes: 64 * 2 ** 30,
  // Text compresses 3-10:1; runs of one byte (a gzip of newlines) reach 1000:1.
  maxGzipRatio: 200,
  timeoutMs: 12 * 3600_000,
  textBytesInFlight: 256 * 2 ** 20,
};

/** Decompressed bytes allowed before the ratio is checked, so a tiny legitimate gzip is never refused. */
export const RATIO_GRACE_BYTES = 1 << 20;
