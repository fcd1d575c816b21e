// worker_threads entry: registers the TypeScript loader inside the thread (a worker does not inherit
// a test runner's or tsx's in-process transform), then loads the real thread module.
import { register } from "tsx/esm/api";

register();
await import("./inference-thread.ts");
