/**
 * CRC-32 (IEEE 802.3: the zlib / PNG / gzip polynomial 0xEDB88320, reflected, init and final
 * xor 0xFFFFFFFF), dependency-free so shared/ also runs in Workers and browsers.
 *
 * Shards carry CRC-32s of their header and body so a shard read without a manifest (the
 * local CLI, a copied file) is still checked. This slicing-by-16 version does roughly
 * 0.4-0.6 GB/s in V8; Node callers pass zlib's (several GB/s) through `ShardChecksums`.
 */

const TABLES: Int32Array = (() => {
  const t = new Int32Array(16 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  // Table j maps a byte to its CRC contribution j bytes further along.
  for (let n = 0; n < 256; n++) {
    let c = t[n];
    for (let j = 1; j < 16; j++) {
      c = t[c & 0xff] ^ (c >>> 8);
      t[j * 256 + n] = c;
    }
  }
  return t;
})();

// The word loop reads little-endian 32-bit words through an Int32Array view.
const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * CRC-32 of `bytes`, continuing from `previous` (the CRC of the bytes before them; 0 to
 * start), so data can be checksummed chunk by chunk. Returns an unsigned 32-bit value.
 */
export function crc32(bytes: Uint8Array, previous = 0): number {
  const t = TABLES;
  let c = ~previous | 0;
  let i = 0;
  const n = bytes.length;
  // Bytewise until the position is 4-aligned, so the middle can be read as whole words.
  while (i < n && ((bytes.byteOffset + i) & 3) !== 0) c = t[(c ^ bytes[i++]) & 0xff] ^ (c >>> 8);
  const blocks = HOST_IS_LITTLE_ENDIAN ? (n - i) >>> 4 : 0;
  if (blocks > 0) {
    const w = new Int32Array(bytes.buffer, bytes.byteOffset + i, blocks * 4);
    for (let k = 0; k < w.length; k += 4) {
      const a = w[k] ^ c;
      const b = w[k + 1];
      const d = w[k + 2];
      const e = w[k + 3];
      c =
        t[3840 + (a & 0xff)] ^ t[3584 + ((a >>> 8) & 0xff)] ^ t[3328 + ((a >>> 16) & 0xff)] ^ t[3072 + (a >>> 24)] ^
        t[2816 + (b & 0xff)] ^ t[2560 + ((b >>> 8) & 0xff)] ^ t[2304 + ((b >>> 16) & 0xff)] ^ t[2048 + (b >>> 24)] ^
        t[1792 + (d & 0xff)] ^ t[1536 + ((d >>> 8) & 0xff)] ^ t[1280 + ((d >>> 16) & 0xff)] ^ t[1024 + (d >>> 24)] ^
        t[768 + (e & 0xff)] ^ t[512 + ((e >>> 8) & 0xff)] ^ t[256 + ((e >>> 16) & 0xff)] ^ t[e >>> 24];
    }
    i += blocks * 16;
  }
  for (; i < n; i++) c = t[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}
