import type { Authorizer, ConsoleSettings } from './fhir';

/** The part of .well-known/smart-configuration the console uses. */
export interface SmartConfiguration {
  authorization_endpoint?: string;
  token_endpoint?: string;
  code_challenge_methods_supported?: string[];
}

interface Token {
  accessToken: string;
  /** ms since the epoch; the token is dropped a little before. */
  expiresAt: number;
  scope: string;
  patient?: string;
}

interface Pending {
  state: string;
  verifier: string;
  clientId: string;
  redirectUri: string;
  tokenEndpoint: string;
  returnTo: string;
}

const TOKEN_KEY = 'console.smart.token';
const PENDING_KEY = 'console.smart.pending';
const CLIENT_KEY = 'console.smart.client';
const DEFAULT_CLIENT_ID = 'records-console';
export const DEFAULT_SCOPE = 'openid fhirUser user/*.rs';
export const CALLBACK_PATH = '/console/callback';

/** The server's SMART configuration, or undefined when it has none (AUTH=none answers 404). */
export async function discover(settings: ConsoleSettings): Promise<SmartConfiguration | undefined> {
  const base = settings.fhirPath === '/' ? '' : settings.fhirPath;
  const res = await fetch(`${base}/.well-known/smart-configuration`, {
    headers: { Accept: 'application/json' },
  });
  if (res.status === 404) return undefined;
  if (!res.ok) throw new Error(`smart-configuration answered HTTP ${res.status}`);
  return (await res.json()) as SmartConfiguration;
}

/**
 * SMART App Launch 2.0, standalone launch, public client with PKCE (S256): the browser goes to the
 * authorization endpoint, comes back to /console/callback with a code, and trades it (with the
 * verifier only this tab knows) for an access token. Tokens live in sessionStorage: one tab, gone
 * when it closes.
 */
export class SmartAuth implements Authorizer {
  constructor(
    private readonly settings: ConsoleSettings,
    readonly conf: SmartConfiguration,
  ) {}

  private token(): Token | undefined {
    const raw = sessionStorage.getItem(TOKEN_KEY);
    if (!raw) return undefined;
    const t = JSON.parse(raw) as Token;
    if (t.expiresAt <= Date.now()) {
      sessionStorage.removeItem(TOKEN_KEY);
      return undefined;
    }
    return t;
  }

  signedIn(): boolean {
    return this.token() !== undefined;
  }

  scope(): string {
    return this.token()?.scope ?? '';
  }

  header(): string | undefined {
    const t = this.token();
    return t ? `Bearer ${t.accessToken}` : undefined;
  }

  unauthorized(): void {
    sessionStorage.removeItem(TOKEN_KEY);
    location.assign('/console/');
  }

  signOut(): void {
    sessionStorage.removeItem(TOKEN_KEY);
  }

  lastClientId(): string {
    return localStorage.getItem(CLIENT_KEY) ?? DEFAULT_CLIENT_ID;
  }

  /** Leaves for the authorization server. */
  async signIn(clientId: string, scope: string, returnTo: string): Promise<void> {
    const authorize = this.conf.authorization_endpoint;
    const tokenEndpoint = this.conf.token_endpoint;
    if (!authorize || !tokenEndpoint) throw new Error('The server names no authorization endpoint');
    if (!crypto.subtle)
      throw new Error('Signing in needs a secure page (https, or localhost): PKCE uses the Web Crypto API');
    const verifier = randomString(48);
    const challenge = base64url(new Uint8Array(await crypto.subtle.digest('SHA-256', ascii(verifier))));
    const pending: Pending = {
      state: randomString(24),
      verifier,
      clientId,
      redirectUri: `${location.origin}${CALLBACK_PATH}`,
      tokenEndpoint,
      returnTo,
    };
    sessionStorage.setItem(PENDING_KEY, JSON.stringify(pending));
    localStorage.setItem(CLIENT_KEY, clientId);
    const q = new URLSearchParams({
      response_type: 'code',
      client_id: clientId,
      redirect_uri: pending.redirectUri,
      scope,
      state: pending.state,
      aud: this.settings.fhirBase,
      code_challenge: challenge,
      code_challenge_method: 'S256',
    });
    location.assign(`${authorize}${authorize.includes('?') ? '&' : '?'}${q.toString()}`);
  }

  /** On /console/callback: checks the state, trades the code for a token; answers where to go next. */
  async complete(search: string): Promise<string> {
    const params = new URLSearchParams(search);
    const raw = sessionStorage.getItem(PENDING_KEY);
    sessionStorage.removeItem(PENDING_KEY);
    if (!raw) throw new Error('No sign-in was started in this tab');
    const pending = JSON.parse(raw) as Pending;
    const error = params.get('error');
    if (error)
      throw new Error(`The authorization server refused: ${error} ${params.get('error_description') ?? ''}`);
    if (params.get('state') !== pending.state)
      throw new Error('The answer does not match this sign-in (state)');
    const code = params.get('code');
    if (!code) throw new Error('The authorization server sent no code');
    const res = await fetch(pending.tokenEndpoint, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code,
        redirect_uri: pending.redirectUri,
        client_id: pending.clientId,
        code_verifier: pending.verifier,
      }),
    });
    const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
    if (!res.ok || typeof body.access_token !== 'string')
      throw new Error(`The token endpoint answered HTTP ${res.status} ${String(body.error ?? '')}`);
    const expiresIn = typeof body.expires_in === 'number' ? body.expires_in : 300;
    const token: Token = {
      accessToken: body.access_token,
      expiresAt: Date.now() + Math.max(expiresIn - 10, 1) * 1000,
      scope: typeof body.scope === 'string' ? body.scope : '',
      patient: typeof body.patient === 'string' ? body.patient : undefined,
    };
    sessionStorage.setItem(TOKEN_KEY, JSON.stringify(token));
    return pending.returnTo;
  }
}

/** AUTH=none: no token. */
export const noAuth: Authorizer = {
  header: () => undefined,
  unauthorized: () => undefined,
};

function ascii(s: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(s) as Uint8Array<ArrayBuffer>;
}

function base64url(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** RFC 7636 unreserved characters, from the platform's CSPRNG. */
function randomString(length: number): string {
  const bytes = crypto.getRandomValues(new Uint8Array(length));
  return base64url(bytes).slice(0, length);
}
