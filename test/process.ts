import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..');

export interface RunningServer {
  child: ChildProcess;
  port: number;
  baseUrl: string;
  exited: Promise<number | null>;
}

/** Starts `src/main.ts` in a child process (through tsx) and waits until it listens. */
export async function spawnServer(env: Record<string, string>): Promise<RunningServer> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/main.ts')], {
    cwd: ROOT,
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const port = await new Promise<number>((resolve, reject) => {
    let buf = '';
    const onData = (d: Buffer): void => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) !== -1) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          const j = JSON.parse(line) as { msg?: string; port?: number };
          if (j.msg === 'FHIR server listening' && typeof j.port === 'number') {
            child.stdout?.off('data', onData);
            child.stdout?.resume();
            resolve(j.port);
            return;
          }
        } catch {
          // not a log line
        }
      }
    };
    child.stdout?.on('data', onData);
    void exited.then((code) => reject(new Error(`server exited (${code}) before listening: ${stderr}`)));
  });
  return { child, port, baseUrl: `http://127.0.0.1:${port}/fhir`, exited };
}

export interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A request that did not get an answer within its time limit. */
export class RequestTimeout extends Error {}

export interface HttpOptions {
  /** Keep-alive agent to send through; by default one shared by all callers (16 sockets). */
  agent?: http.Agent;
  /** A request (not only an idle socket) that takes longer than this fails with `RequestTimeout`. */
  timeoutMs?: number;
}

const sharedAgent = new http.Agent({ keepAlive: true, maxSockets: 16 });

export function httpRequest(
  method: string,
  url: string,
  body?: unknown,
  headers: Record<string, string> = {},
  { agent = sharedAgent, timeoutMs }: HttpOptions = {},
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = http.request(
      url,
      {
        method,
        agent,
        headers: {
          ...(data ? { 'content-type': 'application/fhir+json', 'content-length': String(data.length) } : {}),
          ...headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        );
        res.on('error', reject);
      },
    );
    if (timeoutMs !== undefined) {
      const timer = setTimeout(() => {
        req.destroy(new RequestTimeout(`${method} ${url} took more than ${timeoutMs} ms`));
      }, timeoutMs);
      req.on('close', () => clearTimeout(timer));
    }
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}
