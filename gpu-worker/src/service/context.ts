/** What the middleware puts on a request's Hono context for the routes. */
export interface ServiceVariables {
  requestId: string;
  /** The tenant the request was signed for (set by auth). */
  tenant: string;
  /** The verified signature (unset in insecure dev mode), for the replay check of routes that write. */
  signature?: { value: string; timestamp: number };
  /** The raw body, read once by auth (the signature covers these exact bytes). */
  body: Uint8Array;
}

export type ServiceEnv = { Variables: ServiceVariables };
