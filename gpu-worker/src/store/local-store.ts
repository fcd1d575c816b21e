/**
 * A BlobStore over a local folder: key "a/b/c" is the file <root>/a/b/c. Writes go to a
 * temporary file under <root>/.hypencoder-tmp and are renamed into place, so a reader
 * (or a crash) never sees a partial object, just as with S3.
 */
import { randomBytes } from "node:crypto";
import { createReadStream, createWriteStream, type Stats } from "node:fs";
import { link, mkdir, readdir, readFile, rename, rm, rmdir, stat, writeFile } from "node:fs/promises";
import { dirname, join, resolve, sep } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { AlreadyExistsError, NotFoundError, validateKey, validatePrefix, type BlobHead, type BlobStore, type PutOptions } from "./blob-store.ts";

/** Temp files live here, inside the root (so rename stays on one filesystem); never a key. */
const TMP_DIR = ".hypencoder-tmp";

export class LocalStore implements BlobStore {
  readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
  }

  describe(): string {
    return this.root;
  }

  /** The file for a key; validateKey guarantees it lies under the root. */
  private path(key: string): string {
    validateKey(key);
    if (key === TMP_DIR || key.startsWith(`${TMP_DIR}/`)) throw new Error(`invalid key ${JSON.stringify(key)}: ${TMP_DIR} is reserved`);
    return join(this.root, ...key.split("/"));
  }

  private async statFile(key: string): Promise<Stats | undefined> {
    try {
      const s = await stat(this.path(key));
      return s.isFile() ? s : undefined;
    } catch (e) {
      if (isMissing(e)) return undefined;
      throw e;
    }
  }

  async get(key: string): Promise<Uint8Array> {
    try {
      return await readFile(this.path(key));
    } catch (e) {
      if (isMissing(e) || (e as NodeJS.ErrnoException).code === "EISDIR") throw new NotFoundError(key, this.describe());
      throw e;
    }
  }

  async getStream(key: string): Promise<Readable> {
    if (!(await this.statFile(key))) throw new NotFoundError(key, this.describe());
    return createReadStream(this.path(key));
  }

  async put(key: string, body: Uint8Array | Readable, options: PutOptions = {}): Promise<void> {
    const target = this.path(key);
    const tmpDir = join(this.root, TMP_DIR);
    await mkdir(tmpDir, { recursive: true });
    const tmp = join(tmpDir, `${randomBytes(8).toString("hex")}.tmp`);
    try {
      if (body instanceof Uint8Array) {
        if (options.bytes !== undefined && options.bytes !== body.length) {
          throw new Error(`put ${key}: body is ${body.length} bytes, expected ${options.bytes}`);
        }
        await writeFile(tmp, body);
      } else {
        await pipeline(body, createWriteStream(tmp));
        const written = (await stat(tmp)).size;
        if (options.bytes !== undefined && written !== options.bytes) {
          throw new Error(`put ${key}: stream gave ${written} bytes, expected ${options.bytes}`);
        }
      }
      await mkdir(dirname(target), { recursive: true });
      if (options.ifAbsent) {
        // link() refuses an existing target atomically, where rename() would replace it.
        await link(tmp, target).catch((e: NodeJS.ErrnoException) => {
          throw e.code === "EEXIST" ? new AlreadyExistsError(key, this.describe()) : e;
        });
        await rm(tmp, { force: true });
      } else {
        await rename(tmp, target);
      }
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
  }

  async head(key: string): Promise<BlobHead | undefined> {
    const s = await this.statFile(key);
    // Size and mtime change whenever the object is replaced, which is all an etag promises.
    return s ? { bytes: s.size, etag: `${s.size.toString(16)}-${Math.floor(s.mtimeMs).toString(16)}` } : undefined;
  }

  async list(prefix: string): Promise<string[]> {
    validatePrefix(prefix);
    // Walk only the deepest folder the prefix fully names, then filter by the full prefix.
    const dirKey = prefix.includes("/") ? prefix.slice(0, prefix.lastIndexOf("/")) : "";
    const keys: string[] = [];
    const walk = async (dir: string, keyPrefix: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (e) {
        if (isMissing(e) || (e as NodeJS.ErrnoException).code === "ENOTDIR") return;
        throw e;
      }
      for (const entry of entries) {
        const key = keyPrefix + entry.name;
        if (key === TMP_DIR) continue;
        if (entry.isDirectory()) {
          if (`${key}/`.startsWith(prefix) || prefix.startsWith(`${key}/`)) await walk(join(dir, entry.name), `${key}/`);
        } else if (entry.isFile() && key.startsWith(prefix)) {
          keys.push(key);
        }
      }
    };
    await walk(dirKey ? join(this.root, ...dirKey.split("/")) : this.root, dirKey ? `${dirKey}/` : "");
    return keys.sort();
  }

  async delete(key: string): Promise<void> {
    const path = this.path(key);
    await rm(path, { force: true });
    await this.pruneEmptyParents(dirname(path));
  }

  async deletePrefix(prefix: string): Promise<number> {
    const keys = await this.list(prefix);
    for (const key of keys) await this.delete(key);
    return keys.length;
  }

  /** Removes folders left empty by a delete, up to (not including) the root, like S3 has no folders. */
  private async pruneEmptyParents(dir: string): Promise<void> {
    while (dir.startsWith(this.root + sep) && dir !== this.root) {
      try {
        await rmdir(dir);
      } catch {
        return; // not empty (or already gone): stop
      }
      dir = dirname(dir);
    }
  }
}

function isMissing(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === "ENOENT" || code === "ENOTDIR";
}
