/**
 * Streams response frames (msgpack, back to back). The HTTP status is only committed when the first
 * frame is ready: a request that fails before producing anything (unknown index, timeout while
 * queued, bad token limit) still gets a proper status and JSON error; once frames have gone out, a
 * failure becomes a final `error` frame.
 */
import { encodeFrame } from "../../../shared/api/frames.ts";
import { type Frame, MSGPACK_FRAMES_CONTENT_TYPE } from "../../../shared/api/worker-api.ts";

/**
 * Sends a frame. `droppable` frames (progress) are skipped while the client is not keeping up:
 * they are advisory, and dropping them bounds what the worker buffers for a slow reader.
 */
export type EmitFrame = (frame: Frame, options?: { droppable?: boolean }) => void;

export interface FrameStreamHooks {
  /** Turns a failure after streaming started into the final frame (and logs it). */
  errorFrame(error: unknown): Frame;
  /** The client stopped reading (disconnect or cancel). */
  onCancel(): void;
}

/** Frames buffered for a slow reader before progress frames are dropped. */
const HIGH_WATER_FRAMES = 16;

export async function streamFrames(run: (emit: EmitFrame) => Promise<Frame>, hooks: FrameStreamHooks): Promise<Response> {
  const pending: Uint8Array[] = [];
  let sink: ReadableStreamDefaultController<Uint8Array> | undefined;
  let closed = false;
  let markStarted!: () => void;
  const started = new Promise<"started">((resolve) => (markStarted = () => resolve("started")));

  const push = (bytes: Uint8Array) => {
    if (closed) return;
    if (sink) sink.enqueue(bytes);
    else pending.push(bytes);
  };
  const emit: EmitFrame = (frame, options) => {
    if (options?.droppable && (sink ? (sink.desiredSize ?? 1) <= 0 : pending.length >= HIGH_WATER_FRAMES)) return;
    push(encodeFrame(frame));
    markStarted();
  };

  const outcome = run(emit).then(
    (final) => ({ ok: true as const, final }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  const first = await Promise.race([started, outcome]);
  if (first !== "started" && !first.ok) throw first.error;

  const body = new ReadableStream<Uint8Array>(
    {
      start(controller) {
        sink = controller;
        for (const bytes of pending.splice(0)) controller.enqueue(bytes);
        void outcome.then((o) => {
          if (closed) return;
          push(encodeFrame(o.ok ? o.final : hooks.errorFrame(o.error)));
          closed = true;
          controller.close();
        });
      },
      cancel() {
        closed = true;
        hooks.onCancel();
      },
    },
    { highWaterMark: HIGH_WATER_FRAMES },
  );
  return new Response(body, { status: 200, headers: { "content-type": MSGPACK_FRAMES_CONTENT_TYPE, "cache-control": "no-store" } });
}
