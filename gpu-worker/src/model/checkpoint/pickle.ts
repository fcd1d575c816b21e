/**
 * A minimal, safe pickle virtual machine: only the opcodes torch.save emits (protocol 2, plus the
 * few protocol 4 framing/memo opcodes), and no code execution. Every GLOBAL is passed to
 * `hooks.findClass`, which must return an allow-listed value or throw; REDUCE may only call JS
 * functions that findClass returned. Anything else is an error, never a fallback.
 *
 * Values: str → string, int → number, float → number, bool/None → boolean/null,
 * tuple → frozen array, list → array, dict → Map.
 */

export class PickleError extends Error {
  override name = "PickleError";
}

export interface PickleHooks {
  /** Resolves `module.name`; must throw for anything not allow-listed. */
  findClass(module: string, name: string): unknown;
  /** Resolves a persistent id (BINPERSID). */
  persistentLoad(pid: unknown): unknown;
  /** Applies BUILD state to an object; without it BUILD is an error. */
  build?(obj: unknown, state: unknown): unknown;
}

/** Marks a value pushed by MARK; never escapes the VM. */
const MARK = Symbol("mark");

export function unpickle(bytes: Uint8Array, hooks: PickleHooks): unknown {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: unknown[] = [];
  const memo = new Map<number, unknown>();
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let pos = 0;
  let opPos = 0;

  const fail = (msg: string): never => {
    throw new PickleError(`pickle byte ${opPos}: ${msg}`);
  };
  const need = (n: number): number => {
    if (pos + n > bytes.byteLength) fail("unexpected end of data (truncated pickle)");
    const at = pos;
    pos += n;
    return at;
  };
  const u8 = () => bytes[need(1)];
  const u16 = () => view.getUint16(need(2), true);
  const u32 = () => view.getUint32(need(4), true);
  const u64 = () => Number(view.getBigUint64(need(8), true));
  const text = (n: number) => decoder.decode(bytes.subarray(need(n), pos));
  const line = (): string => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) fail("unterminated text line");
    const s = decoder.decode(bytes.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const pop = (): unknown => {
    if (stack.length === 0) fail("stack underflow");
    const v = stack.pop();
    if (v === MARK) fail("unexpected MARK on the stack");
    return v;
  };
  const top = (): unknown => {
    if (stack.length === 0 || stack[stack.length - 1] === MARK) fail("stack underflow");
    return stack[stack.length - 1];
  };
  /** Pops everything above the topmost MARK, and the MARK. */
  const popMark = (): unknown[] => {
    const m = stack.lastIndexOf(MARK);
    if (m < 0) fail("no MARK on the stack");
    const items = stack.splice(m);
    items.shift();
    return items;
  };
  const memoGet = (i: number): unknown => {
    if (!memo.has(i)) fail(`memo key ${i} was never stored`);
    return memo.get(i);
  };
  const asMap = (v: unknown): Map<unknown, unknown> => {
    if (!(v instanceof Map)) fail("SETITEM(S) target is not a dict");
    return v as Map<unknown, unknown>;
  };
  const asList = (v: unknown): unknown[] => {
    if (!Array.isArray(v) || Object.isFrozen(v)) fail("APPEND(S) target is not a list");
    return v as unknown[];
  };
  const tuple = (items: unknown[]): readonly unknown[] => Object.freeze(items);
  const global = (module: string, name: string) => hooks.findClass(module, name);

  for (;;) {
    opPos = pos;
    const op = u8();
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) fail("unsupported pickle protocol");
        break;
      case 0x95: // FRAME: a length hint only
        u64();
        break;
      case 0x2e: // STOP
        if (stack.length !== 1) fail(`STOP with ${stack.length} values on the stack`);
        return pop();
      case 0x28: // MARK
        stack.push(MARK);
        break;
      case 0x30: // POP
        pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push(tuple([]));
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4a: // BININT
        stack.push(view.getInt32(need(4), true));
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x8a: // LONG1
        stack.push(readLong(bytes.subarray(need(u8()), pos), fail));
        break;
      case 0x47: // BINFLOAT (big-endian)
        stack.push(view.getFloat64(need(8), false));
        break;
      case 0x58: // BINUNICODE
        stack.push(text(u32()));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(text(u8()));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(text(u64()));
        break;
      case 0x54: // BINSTRING (Python 2 str; torch under Python 2 wrote ASCII keys this way)
        stack.push(text(view.getInt32(need(4), true)));
        break;
      case 0x55: // SHORT_BINSTRING
        stack.push(text(u8()));
        break;
      case 0x42: // BINBYTES
        stack.push(bytes.slice(need(u32()), pos));
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(bytes.slice(need(u8()), pos));
        break;
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
        stack.push(memoGet(u8()));
        break;
      case 0x6a: // LONG_BINGET
        stack.push(memoGet(u32()));
        break;
      case 0x63: {
        // GLOBAL "module\nname\n"
        const module = line();
        stack.push(global(module, line()));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== "string" || typeof name !== "string") fail("STACK_GLOBAL needs two strings");
        stack.push(global(module as string, name as string));
        break;
      }
      case 0x51: // BINPERSID
        stack.push(hooks.persistentLoad(pop()));
        break;
      case 0x74: // TUPLE
        stack.push(tuple(popMark()));
        break;
      case 0x85: // TUPLE1
        stack.push(tuple([pop()]));
        break;
      case 0x86: {
        // TUPLE2
        const b = pop();
        stack.push(tuple([pop(), b]));
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop();
        const b = pop();
        stack.push(tuple([pop(), b, c]));
        break;
      }
      case 0x6c: // LIST
        stack.push(popMark());
        break;
      case 0x64: {
        // DICT
        const items = popMark();
        const d = new Map();
        for (let i = 0; i + 1 < items.length; i += 2) d.set(items[i], items[i + 1]);
        stack.push(d);
        break;
      }
      case 0x73: {
        // SETITEM
        const value = pop();
        const key = pop();
        asMap(top()).set(key, value);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        if (items.length % 2) fail("SETITEMS with an odd number of items");
        const d = asMap(top());
        for (let i = 0; i < items.length; i += 2) d.set(items[i], items[i + 1]);
        break;
      }
      case 0x61: {
        // APPEND
        const value = pop();
        asList(top()).push(value);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        asList(top()).push(...items);
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop();
        const callable = pop();
        if (typeof callable !== "function") fail("REDUCE of a value that is not an allow-listed callable");
        if (!Array.isArray(args)) fail("REDUCE arguments are not a tuple");
        stack.push((callable as (...a: unknown[]) => unknown)(...(args as unknown[])));
        break;
      }
      case 0x62: {
        // BUILD
        const state = pop();
        const obj = pop();
        if (!hooks.build) fail("BUILD is not supported here");
        stack.push(hooks.build!(obj, state));
        break;
      }
      default:
        fail(`unsupported pickle opcode 0x${op.toString(16).padStart(2, "0")}`);
    }
  }
}

/** LONG1 payload: little-endian two's complement. */
function readLong(b: Uint8Array, fail: (msg: string) => never): number {
  if (b.length === 0) return 0;
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
  if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
    fail(`integer ${v} is too large`);
  }
  return Number(v);
}
