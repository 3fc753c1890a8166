import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Resource } from 'fhir/r4';
import type { JWTPayload } from 'jose';
import type { Logger } from 'pino';
import type { Config } from '../config';
import type { DefinitionsRegistry } from '../fhir/definitions';
import { FhirError, issue } from '../fhir/errors';
import { smartConfiguration } from './discovery';
import { GranularCompiler } from './granular';
import { denyAll, grantsOf, smartPolicy, type PolicyDeps, type TokenGrants } from './smart-policy';
import { TokenError, TokenVerifier } from './token';

export interface AuthDeps {
  config: Config;
  registry: DefinitionsRegistry;
  indexOf(resource: Resource, only?: readonly string[]): Record<string, unknown>;
  log: Logger;
  /** The clock for token times (tests); default Date.now. */
  now?: () => number;
}

const WELL_KNOWN = '/.well-known/smart-configuration';
const ALLOW_METHODS = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS';
const ALLOW_HEADERS = [
  'Authorization',
  'Content-Type',
  'Accept',
  'If-Match',
  'If-None-Match',
  'If-Modified-Since',
  'If-None-Exist',
  'Prefer',
  'X-Request-Id',
].join(', ');
const EXPOSE_HEADERS = [
  'Location',
  'Content-Location',
  'ETag',
  'Last-Modified',
  'X-Request-Id',
  'WWW-Authenticate',
].join(', ');
/** RFC 6750 b64token. */
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

/**
 * The security layer, in order: security headers on every response; CORS (preflight answered
 * without a token); SMART discovery; then, with AUTH=smart, the bearer token: verified, turned into
 * the request's AccessPolicy (res.locals.access), or refused with 401 and WWW-Authenticate.
 * It runs after the request id, access log and audit middleware, so refusals are logged and audited.
 */
export function authLayer(deps: AuthDeps): RequestHandler[] {
  const { config } = deps;
  const mount = config.mountPath === '/' ? '' : config.mountPath;
  const smart = config.auth.mode === 'smart' ? config.auth.smart : undefined;
  const realm = config.baseUrl.replace(/"/g, '');
  // The router is not strict about a trailing slash; neither is this.
  const trim = (p: string): string => (p.length > 1 ? p.replace(/\/+$/, '') : p);
  const isDiscovery = (p: string): boolean => {
    const t = trim(p);
    return t === WELL_KNOWN || t === `${mount}${WELL_KNOWN}`;
  };
  const isPublic = (p: string): boolean => isDiscovery(p) || trim(p) === `${mount}/metadata`;
  const origins = new Set(config.auth.corsOrigins);
  const anyOrigin = origins.has('*');
  const hsts = config.baseUrl.startsWith('https:');

  const headers: RequestHandler = (_req, res, next) => {
    res.set('X-Content-Type-Options', 'nosniff');
    res.set('X-Frame-Options', 'DENY');
    res.set('Content-Security-Policy', "default-src 'none'; frame-ancestors 'none'");
    res.set('Referrer-Policy', 'no-referrer');
    if (hsts) res.set('Strict-Transport-Security', 'max-age=31536000');
    next();
  };

  const cors: RequestHandler = (req, res, next) => {
    const origin = req.get('origin');
    if (!origin) return next();
    const publicPath = isPublic(req.path);
    const allowed = publicPath || anyOrigin || origins.has(origin);
    const preflight = req.method === 'OPTIONS' && req.get('access-control-request-method') !== undefined;
    if (allowed) {
      res.set('Access-Control-Allow-Origin', publicPath ? '*' : origin);
      if (!publicPath) res.vary('Origin');
      res.set('Access-Control-Expose-Headers', EXPOSE_HEADERS);
    }
    if (!preflight) return next();
    if (!allowed)
      throw new FhirError(403, [issue('forbidden', `Origin ${origin.slice(0, 200)} may not call this API`)]);
    res.set('Access-Control-Allow-Methods', ALLOW_METHODS);
    res.set('Access-Control-Allow-Headers', ALLOW_HEADERS);
    res.set('Access-Control-Max-Age', '600');
    res.status(204).end();
  };

  // The discovery document depends on the configuration only: serialised once.
  const discoveryBody = smart ? JSON.stringify(smartConfiguration(smart)) : undefined;
  const discovery: RequestHandler = (req, res, next) => {
    if (!discoveryBody || !isDiscovery(req.path) || (req.method !== 'GET' && req.method !== 'HEAD'))
      return next();
    // Plain JSON, not a FHIR resource.
    res.status(200).set('Content-Type', 'application/json; charset=utf-8');
    if (req.method === 'HEAD') res.end();
    else res.send(discoveryBody);
  };
  if (!smart) return [headers, cors, discovery];

  const verifier = new TokenVerifier(
    {
      issuer: smart.issuer,
      audience: smart.audience,
      jwksUri: smart.jwksUri,
      jwksFile: smart.jwksFile,
    },
    deps.now,
  );
  const policyDeps: PolicyDeps = {
    registry: deps.registry,
    indexOf: deps.indexOf,
    granular: new GranularCompiler(deps.registry),
    realm,
  };
  // One grants computation per verified token (the verifier caches the payload object by token).
  const grantsByPayload = new WeakMap<JWTPayload, Promise<TokenGrants>>();

  const refuse = (description: string, withError = true): FhirError =>
    new FhirError(401, [issue('login', description)], {
      'WWW-Authenticate': withError
        ? `Bearer realm="${realm}", error="invalid_token", error_description="${description.replace(/"/g, "'")}"`
        : `Bearer realm="${realm}"`,
    });

  const authenticate = async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    if (isPublic(req.path)) return next();
    const address = req.socket.remoteAddress;
    // Until the token is verified, nothing is visible (defence in depth: the error below ends the request).
    res.locals.access = denyAll(address);
    const header = req.get('authorization');
    // RFC 6750 3.1: a request without credentials gets the challenge without an error code.
    if (header === undefined || header.trim() === '')
      throw refuse('This server needs a bearer token (Authorization: Bearer <token>)', false);
    if (!/^Bearer\b/i.test(header.trim()))
      throw refuse('Only bearer tokens are accepted (Authorization: Bearer <token>)', false);
    const m = BEARER.exec(header.trim());
    if (!m || !m[1]) throw refuse('The Authorization header does not hold a well-formed bearer token');
    let payload: JWTPayload;
    try {
      payload = await verifier.verify(m[1]);
    } catch (e) {
      if (!(e instanceof TokenError)) throw e;
      deps.log.info({ requestId: res.locals.requestId as string, reason: e.message }, 'bearer token refused');
      if (e.unavailable)
        throw new FhirError(503, [issue('transient', `${e.message}; try again later`)], {
          'Retry-After': '5',
        });
      throw refuse(e.message);
    }
    let grants = grantsByPayload.get(payload);
    if (!grants) {
      grants = grantsOf(payload, policyDeps);
      grantsByPayload.set(payload, grants);
    }
    res.locals.access = smartPolicy(await grants, policyDeps, address);
    // Answers to authorised requests carry patient data: no shared or browser caches.
    res.set('Cache-Control', 'no-store');
    next();
  };
  return [headers, cors, discovery, authenticate];
}
