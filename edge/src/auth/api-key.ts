/**
 * Tenant API keys: `hyp_` + 43 base64url characters (256 random bits). Only the SHA-256 of a key
 * is stored. A lookup by that hash replaces a secret comparison: an attacker cannot steer the
 * hash of a guess, so index lookup timing reveals nothing about a stored key.
 */
import { sha256Hex } from "../../../shared/api/signing.ts";
import type { Scope } from "../db/api-keys.ts";

export const API_KEY_PREFIX = "hyp_";
export const API_KEY_PATTERN = /^hyp_[A-Za-z0-9_-]{43}$/;
/** Shown in listings so people can tell keys apart: "hyp_" plus 8 characters (48 of 256 bits). */
export const DISPLAY_PREFIX_LENGTH = 12;
export const KEY_ID_PATTERN = /^key_[0-9a-f]{24}$/;

/** Who is calling: set on the context by requireApiKey. */
export interface AuthContext {
  tenantId: string;
  keyId: string;
  scopes: readonly Scope[];
}

function base64url(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomHex(bytes: number): string {
  return [...crypto.getRandomValues(new Uint8Array(bytes))].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export interface GeneratedApiKey {
  id: string;
  /** The secret: returned to the operator once, never stored or logged. */
  key: string;
  keyHash: string;
  prefix: string;
}

export async function generateApiKey(): Promise<GeneratedApiKey> {
  const key = API_KEY_PREFIX + base64url(crypto.getRandomValues(new Uint8Array(32)));
  return { id: `key_${randomHex(12)}`, key, keyHash: await hashApiKey(key), prefix: key.slice(0, DISPLAY_PREFIX_LENGTH) };
}

/** Lowercase hex SHA-256 of the key's UTF-8 bytes: what api_keys.key_hash holds. */
export function hashApiKey(key: string): Promise<string> {
  return sha256Hex(new TextEncoder().encode(key));
}
