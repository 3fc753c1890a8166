import http from 'node:http';

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface RequestOptions {
  /** Serialized as JSON and sent as application/fhir+json. */
  body?: unknown;
  headers?: Record<string, string>;
}

const FHIR_JSON = 'application/fhir+json';

/**
 * A minimal FHIR JSON client over one keep-alive agent. maxSockets equals the benchmark's
 * concurrency, so every worker reuses its own connection and connection setup stays out of the
 * measured latencies (after the first request of each socket).
 */
export class HttpClient {
  private readonly agent: http.Agent;

  constructor(
    readonly baseUrl: URL,
    maxSockets: number,
    private readonly timeoutMs = 30_000,
    /** Sent with every request (e.g. Authorization). */
    private readonly defaultHeaders: Record<string, string> = {},
  ) {
    this.agent = new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
  }

  /** `path` is relative to the base URL, e.g. `Patient/123` or `metadata`. */
  request(method: string, path: string, options: RequestOptions = {}): Promise<HttpResponse> {
    const url = new URL(path, this.baseUrl.href.endsWith('/') ? this.baseUrl : `${this.baseUrl.href}/`);
    const payload = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
    const headers: Record<string, string> = { accept: FHIR_JSON, ...this.defaultHeaders, ...options.headers };
    if (payload !== undefined) {
      headers['content-type'] = FHIR_JSON;
      headers['content-length'] = String(payload.length);
    }
    return new Promise<HttpResponse>((resolve, reject) => {
      const req = http.request(url, { method, headers, agent: this.agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
      });
      req.setTimeout(this.timeoutMs, () =>
        req.destroy(new Error(`${method} ${url.pathname} timed out after ${this.timeoutMs} ms`)),
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

export class UnexpectedResponseError extends Error {
  constructor(
    readonly what: string,
    readonly response: HttpResponse,
  ) {
    const body = response.body.length > 500 ? `${response.body.slice(0, 500)}...` : response.body;
    super(`${what}: HTTP ${response.status} ${body}`);
    this.name = 'UnexpectedResponseError';
  }
}

/** Fails the benchmark on any other status: a fast error is not a fast interaction. */
export function expectStatus(response: HttpResponse, expected: number, what: string): HttpResponse {
  if (response.status !== expected) throw new UnexpectedResponseError(what, response);
  return response;
}

/** The single value of a response header (the first one when repeated). */
export function header(response: HttpResponse, name: string): string | undefined {
  const value = response.headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}
