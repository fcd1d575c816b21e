import { describe, expect, it } from "vitest";
import { createLogger } from "./logger.ts";

describe("logger", () => {
  it("writes JSON lines and redacts secrets, signatures and texts that reach it by accident", () => {
    const lines: string[] = [];
    const logger = createLogger({ destination: { write: (line: string) => void lines.push(line) } });
    logger.info(
      {
        headers: { authorization: "Bearer abc", "x-hyp-signature": "deadbeef", "x-hyp-tenant": "acme" },
        config: { signingSecrets: ["k1"], port: 1 },
        request: { query: "private words", documents: [{ text: "doc body" }] },
        queryChars: 13,
      },
      "hello",
    );
    const out = lines.join("");
    for (const secret of ["Bearer abc", "deadbeef", "k1", "private words", "doc body"]) expect(out).not.toContain(secret);
    const entry = JSON.parse(lines[0]!);
    expect(entry).toMatchObject({ msg: "hello", queryChars: 13, headers: { "x-hyp-tenant": "acme" }, config: { port: 1 } });
  });
});
