/**
 * Reads exact byte counts from a stream of chunks (an S3 body, a file), so a binary input such as
 * an .npy matrix is parsed row block by row block in bounded memory instead of loaded whole.
 */
export class ByteReader {
  private readonly iterator: AsyncIterator<Uint8Array>;
  private buffered: Uint8Array[] = [];
  private bufferedBytes = 0;
  private ended = false;
  /** Bytes handed out so far. */
  position = 0;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.iterator = source[Symbol.asyncIterator]();
  }

  /** Exactly `n` bytes, or fewer only at the end of the stream (check the length). */
  async read(n: number): Promise<Uint8Array> {
    while (this.bufferedBytes < n && !this.ended) {
      const next = await this.iterator.next();
      if (next.done) this.ended = true;
      else if (next.value.length > 0) {
        this.buffered.push(next.value);
        this.bufferedBytes += next.value.length;
      }
    }
    const take = Math.min(n, this.bufferedBytes);
    const out = new Uint8Array(take);
    let filled = 0;
    while (filled < take) {
      const chunk = this.buffered[0];
      const used = Math.min(chunk.length, take - filled);
      out.set(chunk.subarray(0, used), filled);
      filled += used;
      if (used === chunk.length) this.buffered.shift();
      else this.buffered[0] = chunk.subarray(used);
    }
    this.bufferedBytes -= take;
    this.position += take;
    return out;
  }

  /** True once every byte has been read. */
  async atEnd(): Promise<boolean> {
    if (this.bufferedBytes > 0) return false;
    return (await this.read(1).then((b) => (b.length === 0 ? true : this.unread(b)))) === true;
  }

  /** Stops reading and releases the underlying stream. */
  async close(): Promise<void> {
    this.buffered = [];
    this.bufferedBytes = 0;
    if (!this.ended) {
      this.ended = true;
      await this.iterator.return?.();
    }
  }

  private unread(bytes: Uint8Array): false {
    this.buffered.unshift(bytes);
    this.bufferedBytes += bytes.length;
    this.position -= bytes.length;
    return false;
  }
}
