/**
 * The checksums the index format uses, as a swappable pair. shared/ must run in Workers,
 * so the defaults are portable pure JS; the GPU worker passes node:zlib / node:crypto ones
 * (gpu-worker/src/store/checksums.ts), which are 3-20x faster on half-gigabyte shards.
 */
import { crc32 } from "./crc32.ts";
import { sha256Hex } from "./sha256.ts";

export interface ShardChecksums {
  /** CRC-32 (IEEE, as zlib computes it) of the bytes, as an unsigned 32-bit integer. */
  crc32(bytes: Uint8Array): number;
  /** Lowercase hex SHA-256 of the bytes. */
  sha256Hex(bytes: Uint8Array): string;
}

export const portableChecksums: ShardChecksums = { crc32: (b) => crc32(b), sha256Hex };
