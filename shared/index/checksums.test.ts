import { createHash, randomBytes } from "node:crypto";
import { crc32 as zlibCrc32 } from "node:zlib";
import { describe, expect, it } from "vitest";
import { crc32 } from "./crc32.ts";
import { sha256Hex } from "./sha256.ts";

describe("portable checksums", () => {
  const data = new Uint8Array(randomBytes(5000));

  it("crc32 matches zlib at every alignment and length, and continues across chunks", () => {
    for (const start of [0, 1, 2, 3, 5]) {
      for (const len of [0, 1, 3, 15, 16, 17, 63, 64, 65, 1000, 4000]) {
        const s = data.subarray(start, start + len);
        expect(crc32(s)).toBe(zlibCrc32(s));
      }
    }
    expect(crc32(data.subarray(777), crc32(data.subarray(0, 777)))).toBe(zlibCrc32(data));
    expect(crc32(new TextEncoder().encode("123456789"))).toBe(0xcbf43926);
  });

  it("sha256 matches node:crypto around the padding boundaries", () => {
    for (const len of [0, 1, 55, 56, 63, 64, 65, 119, 120, 127, 128, 4097]) {
      const s = data.subarray(1, 1 + len);
      expect(sha256Hex(s)).toBe(createHash("sha256").update(s).digest("hex"));
    }
    expect(sha256Hex(new TextEncoder().encode("abc"))).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  });
});
