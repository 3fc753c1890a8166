import type { Bundle, BundleLink, OperationOutcome, Resource } from 'fhir/r4';

/** What the server tells the console (GET /console/config.json). */
export interface ConsoleSettings {
  /** The API's public base URL (BASE_URL): the SMART `aud`, and the prefix of paging links. */
  fhirBase: string;
  /** Where the API is on this origin (the path of BASE_URL, e.g. /fhir). */
  fhirPath: string;
}

/** How requests are authorised: nothing (AUTH=none) or a SMART access token. */
export interface Authorizer {
  header(): string | undefined;
  /** The server refused the token (401): sign in again. */
  unauthorized(): void;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly outcome?: OperationOutcome,
  ) {
    super(message);
  }
}

export type Query = Record<string, string | string[] | undefined>;

/** A query string from a record: empty values are left out, arrays repeat the parameter. */
export function queryString(q: Query): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) {
    for (const one of Array.isArray(v) ? v : [v])
      if (one !== undefined && one.trim() !== '') p.append(k, one.trim());
  }
  const s = p.toString();
  return s ? `?${s}` : '';
}

/** The resources of a searchset, without OperationOutcome entries. */
export function resources<T extends Resource = Resource>(b: Bundle): T[] {
  return (b.entry ?? [])
    .filter((e) => e.search?.mode !== 'outcome' && e.resource)
    .map((e) => e.resource as T);
}

export function linkOf(b: Bundle, relation: string): string | undefined {
  return b.link?.find((l: BundleLink) => l.relation === relation)?.url;
}

/** The one way the console talks to the server: its FHIR API, with the user's authorization. */
export class FhirClient {
  private readonly base: string;

  constructor(
    readonly settings: ConsoleSettings,
    private readonly auth: Authorizer,
  ) {
    this.base = settings.fhirPath === '/' ? '' : settings.fhirPath;
  }

  /** A URL on this origin for an API path ("Patient?name=x") or one of the server's absolute links. */
  resolve(pathOrUrl: string): string {
    if (/^https?:\/\//i.test(pathOrUrl)) {
      if (pathOrUrl.startsWith(`${this.settings.fhirBase}/`) || pathOrUrl === this.settings.fhirBase)
        return this.base + pathOrUrl.slice(this.settings.fhirBase.length);
      const u = new URL(pathOrUrl);
      if (u.origin === location.origin) return u.pathname + u.search;
      throw new ApiError(0, `Not a URL of this server: ${pathOrUrl}`);
    }
    return `${this.base}/${pathOrUrl.replace(/^\/+/, '')}`;
  }

  async fetch(
    pathOrUrl: string,
    init: RequestInit = {},
    accept = 'application/fhir+json',
  ): Promise<Response> {
    const headers = new Headers(init.headers);
    if (!headers.has('Accept')) headers.set('Accept', accept);
    const authorization = this.auth.header();
    if (authorization) headers.set('Authorization', authorization);
    const res = await fetch(this.resolve(pathOrUrl), { ...init, headers, credentials: 'omit' });
    if (res.status === 401) this.auth.unauthorized();
    return res;
  }

  /** The JSON answer, or an ApiError carrying the OperationOutcome's text. */
  async json<T>(pathOrUrl: string, init: RequestInit = {}): Promise<T> {
    const res = await this.fetch(pathOrUrl, init);
    if (!res.ok) throw await errorOf(res);
    return (await res.json()) as T;
  }

  read<T extends Resource = Resource>(type: string, id: string): Promise<T> {
    return this.json<T>(`${type}/${encodeURIComponent(id)}`);
  }

  search(type: string, q: Query): Promise<Bundle> {
    return this.json<Bundle>(`${type}${queryString(q)}`);
  }
}

export async function errorOf(res: Response): Promise<ApiError> {
  let outcome: OperationOutcome | undefined;
  let text = '';
  try {
    text = await res.text();
    const body = JSON.parse(text) as Resource;
    if (body.resourceType === 'OperationOutcome') outcome = body as OperationOutcome;
  } catch {
    // not JSON: keep the text
  }
  const detail =
    outcome?.issue
      .map((i) => i.diagnostics ?? i.details?.text ?? i.code)
      .filter(Boolean)
      .join('; ') || text.slice(0, 300);
  return new ApiError(res.status, `HTTP ${res.status}${detail ? `: ${detail}` : ''}`, outcome);
}
