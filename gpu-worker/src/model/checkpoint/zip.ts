/**
 * Just enough ZIP for PyTorch checkpoints.
 *
 * Reading goes through the central directory (with ZIP64 support, since torch writes ZIP64 records for
 * large files); STORED entries are returned as views into the file buffer, so a 400 MB checkpoint is
 * not copied; DEFLATED entries are inflated with fflate.
 * Writing produces STORED entries whose data is aligned to `align` bytes by padding the local header's
 * extra field, as torch's writer does (so storages can be memory-mapped).
 */
import { inflateSync } from "fflate";
import { concatBytes } from "../../../../shared/bytes.ts";

export class ZipError extends Error {
  override name = "ZipError";
}

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const ZIP64_EXTRA_ID = 0x0001;
/** Extra-field id torch uses for its alignment padding ("FB"). */
const PADDING_EXTRA_ID = 0x4246;

/** Returns every file entry (directories skipped) by name. */
export function readZip(bytes: Uint8Array, source = "zip file"): Map<string, Uint8Array> {
  const fail = (msg: string): never => {
    throw new ZipError(`${source}: ${msg}`);
  };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u16 = (o: number) => view.getUint16(o, true);
  const u32 = (o: number) => view.getUint32(o, true);
  const u64 = (o: number) => Number(view.getBigUint64(o, true));

  // The end-of-central-directory record is in the last 22 + 65535 (comment) bytes.
  let eocd = -1;
  for (let p = bytes.byteLength - 22; p >= Math.max(0, bytes.byteLength - 22 - 0xffff); p--) {
    if (u32(p) === SIG_EOCD) {
      eocd = p;
      break;
    }
  }
  if (eocd < 0) fail("no end-of-central-directory record (not a zip, or truncated)");

  let count = u16(eocd + 10);
  let cdSize = u32(eocd + 12);
  let cdOffset = u32(eocd + 16);
  if (eocd >= 20 && u32(eocd - 20) === SIG_ZIP64_LOCATOR) {
    const z64 = u64(eocd - 20 + 8);
    if (z64 + 56 > bytes.byteLength || u32(z64) !== SIG_ZIP64_EOCD) fail("bad ZIP64 end-of-central-directory record");
    count = u64(z64 + 32);
    cdSize = u64(z64 + 40);
    cdOffset = u64(z64 + 48);
  }
  if (cdOffset + cdSize > bytes.byteLength) fail("central directory lies beyond the end of the file (truncated?)");

  const entries = new Map<string, Uint8Array>();
  const decoder = new TextDecoder();
  let p = cdOffset;
  for (let i = 0; i < count; i++) {
    if (p + 46 > bytes.byteLength || u32(p) !== SIG_CENTRAL) fail(`central directory entry ${i} is corrupt`);
    const method = u16(p + 10);
    let compressedSize = u32(p + 20);
    let size = u32(p + 24);
    const nameLen = u16(p + 28);
    const extraLen = u16(p + 30);
    const commentLen = u16(p + 32);
    let localOffset = u32(p + 42);
    const name = decoder.decode(bytes.subarray(p + 46, p + 46 + nameLen));
    // ZIP64: the 0xFFFFFFFF fields are given, in this order, in extra field 0x0001.
    for (let e = p + 46 + nameLen; e + 4 <= p + 46 + nameLen + extraLen; e += 4 + u16(e + 2)) {
      if (u16(e) !== ZIP64_EXTRA_ID) continue;
      let q = e + 4;
      if (size === 0xffffffff) {
        size = u64(q);
        q += 8;
      }
      if (compressedSize === 0xffffffff) {
        compressedSize = u64(q);
        q += 8;
      }
      if (localOffset === 0xffffffff) localOffset = u64(q);
    }
    p += 46 + nameLen + extraLen + commentLen;
    if (name.endsWith("/")) continue;

    if (localOffset + 30 > bytes.byteLength || u32(localOffset) !== SIG_LOCAL) {
      fail(`local header of "${name}" is missing or corrupt`);
    }
    // The local header's name/extra lengths may differ from the central ones (alignment padding).
    const dataStart = localOffset + 30 + u16(localOffset + 26) + u16(localOffset + 28);
    if (dataStart + compressedSize > bytes.byteLength) fail(`entry "${name}" runs past the end of the file (truncated?)`);
    const raw = bytes.subarray(dataStart, dataStart + compressedSize);
    if (method === 0) {
      if (compressedSize !== size) fail(`stored entry "${name}" has mismatched sizes`);
      entries.set(name, raw);
    } else if (method === 8) {
      const out = inflateSync(raw, { out: new Uint8Array(size) });
      if (out.byteLength !== size) fail(`entry "${name}" inflated to ${out.byteLength} bytes, expected ${size}`);
      entries.set(name, out);
    } else {
      fail(`entry "${name}" uses unsupported compression method ${method}`);
    }
  }
  return entries;
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/**
 * Builds a zip of STORED entries, each entry's data starting at a multiple of `align` bytes.
 * Sizes are limited to 4 GiB (no ZIP64 records are written); fixtures are far smaller.
 */
export function encodeStoredZip(files: { name: string; data: Uint8Array }[], align = 64): Uint8Array {
  const encoder = new TextEncoder();
  const locals: Uint8Array[] = [];
  const centrals: Uint8Array[] = [];
  let offset = 0;
  for (const { name, data } of files) {
    const nameBytes = encoder.encode(name);
    const crc = crc32(data);
    const bare = offset + 30 + nameBytes.length;
    const padLen = bare % align === 0 ? 0 : 4 + ((align - ((bare + 4) % align)) % align);
    const local = new Uint8Array(30 + nameBytes.length + padLen);
    const lv = new DataView(local.buffer);
    lv.setUint32(0, SIG_LOCAL, true);
    lv.setUint16(4, 20, true); // version needed
    lv.setUint32(14, crc, true);
    lv.setUint32(18, data.byteLength, true);
    lv.setUint32(22, data.byteLength, true);
    lv.setUint16(26, nameBytes.length, true);
    lv.setUint16(28, padLen, true);
    local.set(nameBytes, 30);
    if (padLen) {
      lv.setUint16(30 + nameBytes.length, PADDING_EXTRA_ID, true);
      lv.setUint16(32 + nameBytes.length, padLen - 4, true);
      local.fill(0x5a, 34 + nameBytes.length); // 'Z', like torch
    }
    const central = new Uint8Array(46 + nameBytes.length);
    const cv = new DataView(central.buffer);
    cv.setUint32(0, SIG_CENTRAL, true);
    cv.setUint16(4, 20, true); // version made by
    cv.setUint16(6, 20, true); // version needed
    cv.setUint32(16, crc, true);
    cv.setUint32(20, data.byteLength, true);
    cv.setUint32(24, data.byteLength, true);
    cv.setUint16(28, nameBytes.length, true);
    cv.setUint32(42, offset, true);
    central.set(nameBytes, 46);
    locals.push(local, data);
    centrals.push(central);
    offset += local.byteLength + data.byteLength;
  }
  const cdSize = centrals.reduce((n, c) => n + c.byteLength, 0);
  const eocd = new Uint8Array(22);
  const ev = new DataView(eocd.buffer);
  ev.setUint32(0, SIG_EOCD, true);
  ev.setUint16(8, files.length, true);
  ev.setUint16(10, files.length, true);
  ev.setUint32(12, cdSize, true);
  ev.setUint32(16, offset, true);
  return concatBytes([...locals, ...centrals, eocd]);
}
