/** Workers entry point (see wrangler.toml). */
import { createApp } from "./app.ts";

export default createApp();
