/** Workers entry point (see wrangler.toml): the app, and the Durable Object classes it binds. */
import { createApp } from "./app.ts";

export { IndexWriter } from "./living/index-writer.ts";
export { ConcurrencyLimiter } from "./rate-limit/concurrency-limiter.ts";
export { RateLimiter } from "./rate-limit/rate-limiter.ts";

export default createApp();
