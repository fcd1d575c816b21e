/**
 * Emits protocol-2 pickle opcodes the way CPython's pickler does for torch.save: every string,
 * tuple and global is memoised with BINPUT, and a repeated global is fetched with BINGET.
 * Only what the torch zip writer needs; callers compose the opcode sequence themselves.
 */
import { concatBytes } from "../../../../shared/bytes.ts";

export class PickleWriter {
  private readonly parts: Uint8Array[] = [];
  private readonly globals = new Map<string, number>();
  private nextMemo = 0;

  constructor() {
    this.op(0x80, 2); // PROTO 2
  }

  private op(...bytes: number[]): this {
    this.parts.push(Uint8Array.from(bytes));
    return this;
  }

  private raw(bytes: Uint8Array): this {
    this.parts.push(bytes);
    return this;
  }

  /** Stores the top of the stack in the memo (BINPUT / LONG_BINPUT) and returns its index. */
  put(): number {
    const i = this.nextMemo++;
    if (i < 256) this.op(0x71, i);
    else {
      const b = new Uint8Array(5);
      b[0] = 0x72;
      new DataView(b.buffer).setUint32(1, i, true);
      this.raw(b);
    }
    return i;
  }

  get(i: number): this {
    if (i < 256) return this.op(0x68, i);
    const b = new Uint8Array(5);
    b[0] = 0x6a;
    new DataView(b.buffer).setUint32(1, i, true);
    return this.raw(b);
  }

  global(module: string, name: string): this {
    const key = `${module}\n${name}\n`;
    const memo = this.globals.get(key);
    if (memo !== undefined) return this.get(memo);
    this.op(0x63).raw(new TextEncoder().encode(key));
    this.globals.set(key, this.put());
    return this;
  }

  mark(): this {
    return this.op(0x28);
  }

  str(s: string): this {
    const b = new TextEncoder().encode(s);
    const head = new Uint8Array(5);
    head[0] = 0x58; // BINUNICODE
    new DataView(head.buffer).setUint32(1, b.byteLength, true);
    this.raw(head).raw(b);
    this.put();
    return this;
  }

  int(n: number): this {
    if (!Number.isSafeInteger(n)) throw new Error(`pickle int ${n} is not a safe integer`);
    if (n >= 0 && n < 256) return this.op(0x4b, n);
    if (n >= 0 && n < 65536) return this.op(0x4d, n & 0xff, n >> 8);
    if (n >= -(2 ** 31) && n < 2 ** 31) {
      const b = new Uint8Array(5);
      b[0] = 0x4a;
      new DataView(b.buffer).setInt32(1, n, true);
      return this.raw(b);
    }
    // LONG1: minimal little-endian two's complement
    const out: number[] = [];
    let v = BigInt(n);
    while (true) {
      const byte = Number(v & 0xffn);
      out.push(byte);
      v >>= 8n;
      if ((v === 0n && !(byte & 0x80)) || (v === -1n && byte & 0x80)) break;
    }
    return this.op(0x8a, out.length, ...out);
  }

  bool(b: boolean): this {
    return this.op(b ? 0x88 : 0x89);
  }

  none(): this {
    return this.op(0x4e);
  }

  emptyTuple(): this {
    return this.op(0x29);
  }

  emptyDict(): this {
    this.op(0x7d);
    this.put();
    return this;
  }

  /** A tuple of the values pushed since the last mark (or TUPLE1-3 when `count` is given). */
  tuple(count?: 1 | 2 | 3): this {
    this.op(count === undefined ? 0x74 : 0x84 + count);
    this.put();
    return this;
  }

  /** An int tuple such as a size or stride, written like CPython does (TUPLE1-3 for short ones). */
  intTuple(values: readonly number[]): this {
    if (values.length === 0) return this.emptyTuple();
    if (values.length <= 3) {
      for (const v of values) this.int(v);
      return this.tuple(values.length as 1 | 2 | 3);
    }
    this.mark();
    for (const v of values) this.int(v);
    return this.tuple();
  }

  binpersid(): this {
    return this.op(0x51);
  }

  reduce(): this {
    this.op(0x52);
    this.put();
    return this;
  }

  setitems(): this {
    return this.op(0x75);
  }

  build(): this {
    return this.op(0x62);
  }

  /** Ends the pickle and returns its bytes. */
  finish(): Uint8Array {
    this.op(0x2e);
    return concatBytes(this.parts);
  }
}
