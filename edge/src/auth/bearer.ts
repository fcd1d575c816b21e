/** Reads `Authorization: Bearer <token>`; undefined when absent or not a bearer credential. */
export function bearerToken(header: string | undefined): string | undefined {
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header ?? "");
  return match?.[1];
}
