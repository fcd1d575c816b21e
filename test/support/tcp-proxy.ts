/**
 * A TCP proxy in front of a real server (radosgw in the fault tests), which a test can take down,
 * slow down or make cut connections, and then restore. The server itself stays up, so test files
 * that share it (every file shares one radosgw) are not disturbed.
 *
 * It forwards bytes unchanged, so signatures that cover the Host header (SigV4, presigned URLs) still
 * verify: clients are given the proxy's address, sign for it, and the server checks what they sent.
 *
 *   const proxy = await TcpProxy.start("http://127.0.0.1:7480");
 *   proxy.down();                     // connections refused
 *   proxy.set({ cutAfterBytes: 4096 }) // each connection's answer is cut after 4 KiB
 *   proxy.restore();                  // plain forwarding again
 */
import { createConnection, createServer, type Server, type Socket } from "node:net";

export interface ProxyFaults {
  /** Each chunk from the server is held this long before it is passed on. */
  delayMs?: number;
  /** A connection is destroyed (both sides) once this many bytes of the server's answer have passed. */
  cutAfterBytes?: number;
}

export class TcpProxy {
  private server: Server | undefined;
  private faults: ProxyFaults = {};
  private readonly sockets = new Set<Socket>();
  /** Connections accepted since start (for tests that check the fault was exercised). */
  connections = 0;
  /** Connections cut by `cutAfterBytes`. */
  cuts = 0;

  private constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
    readonly port: number,
  ) {}

  /** Listens on a free loopback port, forwarding to `target` (a URL; only host and port are used). */
  static async start(target: string): Promise<TcpProxy> {
    const url = new URL(target);
    const port = Number(url.port || (url.protocol === "https:" ? 443 : 80));
    const proxy = new TcpProxy(url.hostname, port, 0);
    const listening = await proxy.listen(0);
    (proxy as { port: number }).port = listening;
    return proxy;
  }

  /** The proxy's address with the target URL's scheme. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get isUp(): boolean {
    return this.server !== undefined;
  }

  /** Changes the faults for new and open connections. */
  set(faults: ProxyFaults): void {
    this.faults = { ...faults };
  }

  /** Closes the listener (new connections are refused) and cuts every open connection. */
  async down(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Plain forwarding again, listening on the same port. */
  async restore(): Promise<void> {
    this.faults = {};
    if (!this.server) await this.listen(this.port);
  }

  async close(): Promise<void> {
    await this.down();
  }

  private listen(port: number): Promise<number> {
    const server = createServer((client) => this.accept(client));
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => {
        server.off("error", reject);
        this.server = server;
        resolve((server.address() as { port: number }).port);
      });
    });
  }

  private accept(client: Socket): void {
    this.connections++;
    const upstream = createConnection({ host: this.targetHost, port: this.targetPort });
    this.sockets.add(client);
    this.sockets.add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    client.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
    client.on("data", (chunk) => {
      if (!upstream.write(chunk)) client.pause();
    });
    upstream.on("drain", () => client.resume());
    client.on("drain", () => upstream.resume());

    let passed = 0;
    let pending = Promise.resolve();
    upstream.on("data", (chunk: Buffer) => {
      const { delayMs = 0, cutAfterBytes } = this.faults;
      // Chunks stay in order behind any delay.
      pending = pending.then(async () => {
        if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
        if (client.destroyed) return;
        if (cutAfterBytes !== undefined && passed + chunk.length > cutAfterBytes) {
          client.write(chunk.subarray(0, Math.max(0, cutAfterBytes - passed)));
          this.cuts++;
          end();
          return;
        }
        passed += chunk.length;
        if (!client.write(chunk)) upstream.pause();
      });
    });
  }
}
