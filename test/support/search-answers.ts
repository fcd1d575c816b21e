/**
 * Reads a public search answer (edge/src/search/) in each of its wire formats, the way a client
 * would: a JSON body, msgpack frames (`Accept: application/msgpack`, decoded by shared/api/frames.ts),
 * or a stream (`stream=true`) of NDJSON lines or server-sent events. Every reader returns the frames
 * it saw and the final one, so tests can compare formats on the same terms.
 */
import { decodeFrames } from "../../shared/api/frames.ts";
import type { Hit } from "../../shared/api/worker-api.ts";

export interface SearchResult {
  hits: Hit[];
  partial: boolean;
  missingShards: string[];
  /** The index version searched, as the body reports it (x-index-version is `headerVersion`). */
  version: number;
  stats?: Record<string, unknown>;
}

export type AnswerFrame = { type: string; [key: string]: unknown };

export interface ReadAnswer {
  status: number;
  contentType: string;
  xCache: string | null;
  /** x-index-version */
  headerVersion: number | null;
  frames: AnswerFrame[];
  /** The result frame (or the whole JSON body), if the answer had one. */
  result?: SearchResult;
  /** An `error` frame, or a JSON error body ({error:{code,message}}). */
  error?: { code: string; message: string };
}

export type Format = "json" | "msgpack" | "ndjson" | "sse";

/** Request headers and body extras for a format. */
export function formatRequest(format: Format): { headers: Record<string, string>; stream: boolean } {
  switch (format) {
    case "json":
      return { headers: {}, stream: false };
    case "msgpack":
      return { headers: { accept: "application/msgpack" }, stream: false };
    case "ndjson":
      return { headers: { accept: "application/x-ndjson" }, stream: true };
    case "sse":
      return { headers: { accept: "text/event-stream" }, stream: true };
  }
}

/** Reads the whole answer according to its content type. */
export async function readAnswer(response: Response): Promise<ReadAnswer> {
  const contentType = response.headers.get("content-type") ?? "";
  const headerVersion = response.headers.get("x-index-version");
  const base = { status: response.status, contentType, xCache: response.headers.get("x-cache"), headerVersion: headerVersion === null ? null : Number(headerVersion) };
  let frames: AnswerFrame[];
  if (contentType.startsWith("application/msgpack")) {
    frames = [];
    for await (const frame of decodeFrames(response.body!)) frames.push(frame as AnswerFrame);
  } else if (contentType.startsWith("application/x-ndjson")) {
    frames = (await response.text())
      .split("\n")
      .filter((l) => l.trim() !== "")
      .map((l) => JSON.parse(l) as AnswerFrame);
  } else if (contentType.startsWith("text/event-stream")) {
    frames = parseSse(await response.text());
  } else {
    const text = await response.text();
    const body = JSON.parse(text) as Record<string, unknown>;
    if (!response.ok || "error" in body) {
      return { ...base, frames: [], error: body.error as { code: string; message: string } };
    }
    frames = [{ type: "result", ...body }];
  }
  const last = frames.at(-1);
  const answer: ReadAnswer = { ...base, frames };
  if (last?.type === "result") {
    answer.result = {
      hits: last.hits as Hit[],
      partial: last.partial as boolean,
      missingShards: last.missingShards as string[],
      version: last.version as number,
      stats: last.stats as Record<string, unknown>,
    };
  } else if (last?.type === "error") {
    answer.error = { code: last.code as string, message: last.message as string };
  }
  return answer;
}

/** text/event-stream: `event: <type>` + `data: <json>` blocks separated by blank lines. */
export function parseSse(text: string): AnswerFrame[] {
  const frames: AnswerFrame[] = [];
  for (const block of text.split(/\n\n+/)) {
    if (block.trim() === "") continue;
    let event = "message";
    const data: string[] = [];
    for (const line of block.split("\n")) {
      if (line.startsWith("event:")) event = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
    }
    const frame = JSON.parse(data.join("\n")) as AnswerFrame;
    if (frame.type !== event) throw new Error(`SSE event ${event} carries a ${String(frame.type)} frame`);
    frames.push(frame);
  }
  return frames;
}
