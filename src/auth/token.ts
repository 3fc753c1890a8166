import fs from 'node:fs';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  errors as joseErrors,
  jwtVerify,
  type JSONWebKeySet,
  type JWTPayload,
  type JWTVerifyGetKey,
} from 'jose';

/**
 * Bearer token verification (RFC 7519 JWTs signed by the authorization server, SMART App Launch 2.0).
 * Only asymmetric algorithms are accepted: `none` and HS* (which would let anyone holding the public
 * key sign, "alg confusion") are refused before any key is looked at.
 */
export const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512'];

export interface VerifierOptions {
  issuer: string;
  audience: string;
  /** The issuer's JWKS, fetched and cached; refetched on an unknown `kid` at most every `cooldownMs`. */
  jwksUri?: string;
  /** Or a JWKS JSON file, read once. */
  jwksFile?: string;
  /** Allowed clock difference for exp/nbf/iat, seconds. */
  clockToleranceSec?: number;
  /** Minimum time between two JWKS fetches (the rate limit of refresh on unknown kid). */
  cooldownMs?: number;
  /** How long a fetched JWKS is trusted before it is refetched. */
  cacheMaxAgeMs?: number;
  /** Verified tokens kept (by their exact text) so a repeat costs no signature check. */
  cacheSize?: number;
}

/** Why a token was refused: goes to `error_description` (RFC 6750 section 3). */
export class TokenError extends Error {
  constructor(
    message: string,
    /** true when the server, not the token, is at fault (JWKS unreachable): 503, not 401. */
    readonly unavailable = false,
  ) {
    super(message);
    this.name = 'TokenError';
  }
}

/** A JWKS file -> its key set; throws with one clear line when it is not one. */
export function readJwksFile(file: string): JSONWebKeySet {
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`cannot read JWKS file ${file}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const keys = (parsed as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys) || keys.length === 0)
    throw new Error(`JWKS file ${file} must be a JSON object with a non-empty "keys" array`);
  for (const k of keys) {
    if (typeof k !== 'object' || k === null || typeof (k as { kty?: unknown }).kty !== 'string')
      throw new Error(`JWKS file ${file} holds a key without "kty"`);
    if ('d' in k) throw new Error(`JWKS file ${file} holds a private key; publish only public keys`);
  }
  return parsed as JSONWebKeySet;
}

export class TokenVerifier {
  private readonly keys: JWTVerifyGetKey;
  private readonly cache = new Map<string, { payload: JWTPayload; until: number }>();
  private readonly cacheSize: number;
  private readonly tolerance: number;

  constructor(
    private readonly options: VerifierOptions,
    private readonly now: () => number = Date.now,
  ) {
    if (options.jwksFile) this.keys = createLocalJWKSet(readJwksFile(options.jwksFile));
    else if (options.jwksUri)
      this.keys = createRemoteJWKSet(new URL(options.jwksUri), {
        cooldownDuration: options.cooldownMs ?? 30_000,
        cacheMaxAge: options.cacheMaxAgeMs ?? 10 * 60_000,
        timeoutDuration: 5_000,
      });
    else throw new Error('TokenVerifier needs jwksUri or jwksFile');
    this.cacheSize = options.cacheSize ?? 10_000;
    this.tolerance = options.clockToleranceSec ?? 60;
  }

  /** The verified claims, or a TokenError saying what is wrong. */
  async verify(token: string): Promise<JWTPayload> {
    const t = this.now();
    const hit = this.cache.get(token);
    if (hit) {
      if (t < hit.until) return hit.payload;
      this.cache.delete(token);
    }
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.keys, {
        issuer: this.options.issuer,
        audience: this.options.audience,
        algorithms: ALGORITHMS,
        clockTolerance: this.tolerance,
        requiredClaims: ['exp'],
        currentDate: new Date(t),
      }));
    } catch (e) {
      throw describe(e);
    }
    // A cached token is good until it expires; a not-yet-valid one is never cached.
    const until = Math.min(((payload.exp as number) + this.tolerance) * 1000, t + 5 * 60_000);
    if (this.cacheSize === 0) return payload;
    if (this.cache.size >= this.cacheSize) {
      const oldest = this.cache.keys().next();
      if (!oldest.done) this.cache.delete(oldest.value);
    }
    this.cache.set(token, { payload, until });
    return payload;
  }
}

function describe(e: unknown): TokenError {
  if (e instanceof joseErrors.JWTExpired) return new TokenError('The token has expired');
  if (e instanceof joseErrors.JWTClaimValidationFailed) {
    switch (e.claim) {
      case 'nbf':
        return new TokenError('The token is not valid yet (nbf)');
      case 'iss':
        return new TokenError('The token was not issued by the trusted issuer');
      case 'aud':
        return new TokenError('The token is not meant for this server (aud)');
      case 'exp':
        return new TokenError('The token has no valid expiry (exp)');
      case 'iat':
        return new TokenError('The token is issued in the future (iat)');
      default:
        return new TokenError(`The token's ${e.claim} claim is not acceptable`);
    }
  }
  if (e instanceof joseErrors.JOSEAlgNotAllowed)
    return new TokenError(
      `The token's signing algorithm is not accepted (use one of ${ALGORITHMS.join(', ')})`,
    );
  if (e instanceof joseErrors.JWSSignatureVerificationFailed)
    return new TokenError('The token signature does not verify');
  if (e instanceof joseErrors.JWKSNoMatchingKey || e instanceof joseErrors.JWKSMultipleMatchingKeys)
    return new TokenError('The token is not signed by a key of the issuer');
  if (e instanceof joseErrors.JWKSTimeout)
    return new TokenError('The issuer keys could not be fetched in time', true);
  if (e instanceof joseErrors.JWKSInvalid) return new TokenError('The issuer keys could not be read', true);
  if (e instanceof joseErrors.JOSEError && /JSON Web Key Set/.test(e.message))
    return new TokenError('The issuer keys could not be fetched', true);
  if (e instanceof joseErrors.JOSEError) return new TokenError('The token is malformed or not a signed JWT');
  // fetch failures (connection refused, DNS) are the server's problem, not the token's.
  return new TokenError('The issuer keys could not be fetched', true);
}
