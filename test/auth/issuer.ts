import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type JWK, type JWTPayload, type KeyLike } from 'jose';
import { FHIR_JSON, type Harness } from '../api/harness';

/** A test authorization server: its own keys (minted here, nothing fetched), a JWKS file, and tokens. */
export interface TestIssuer {
  issuer: string;
  audience: string;
  rsa: { kid: string; privateKey: KeyLike; publicJwk: JWK };
  ec: { kid: string; privateKey: KeyLike; publicJwk: JWK };
  jwks: { keys: JWK[] };
  /** Folder holding jwks.json; remove with cleanup(). */
  dir: string;
  jwksFile: string;
  /** Harness environment for AUTH=smart with this issuer's JWKS file. */
  env: Record<string, string>;
  token(claims?: JWTPayload, options?: TokenOptions): Promise<string>;
  cleanup(): void;
}

export interface TokenOptions {
  alg?: 'RS256' | 'ES256';
  kid?: string;
  /** Seconds from now; negative for an expired token. */
  expiresIn?: number;
  notBefore?: number;
  issuer?: string;
  audience?: string | string[];
  omitExp?: boolean;
}

export const ISSUER = 'https://auth.test';
export const AUDIENCE = 'http://fhir.test/fhir';

export async function makeIssuer(): Promise<TestIssuer> {
  const rsaPair = await generateKeyPair('RS256', { extractable: true });
  const ecPair = await generateKeyPair('ES256', { extractable: true });
  const rsaJwk = { ...(await exportJWK(rsaPair.publicKey)), kid: 'rsa-1', alg: 'RS256', use: 'sig' };
  const ecJwk = { ...(await exportJWK(ecPair.publicKey)), kid: 'ec-1', alg: 'ES256', use: 'sig' };
  const jwks = { keys: [rsaJwk, ecJwk] };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhir-auth-'));
  const jwksFile = path.join(dir, 'jwks.json');
  fs.writeFileSync(jwksFile, JSON.stringify(jwks));
  const rsa = { kid: 'rsa-1', privateKey: rsaPair.privateKey, publicJwk: rsaJwk };
  const ec = { kid: 'ec-1', privateKey: ecPair.privateKey, publicJwk: ecJwk };
  return {
    issuer: ISSUER,
    audience: AUDIENCE,
    rsa,
    ec,
    jwks,
    dir,
    jwksFile,
    env: {
      AUTH: 'smart',
      SMART_ISSUER: ISSUER,
      SMART_JWKS_FILE: jwksFile,
      SMART_TOKEN_URL: `${ISSUER}/token`,
      SMART_AUTHORIZE_URL: `${ISSUER}/authorize`,
    },
    async token(claims = {}, o = {}) {
      const alg = o.alg ?? 'RS256';
      const key = alg === 'ES256' ? ec : rsa;
      const now = Math.floor(Date.now() / 1000);
      const jwt = new SignJWT({ client_id: 'test-app', ...claims })
        .setProtectedHeader({ alg, kid: o.kid ?? key.kid, typ: 'JWT' })
        .setIssuer(o.issuer ?? ISSUER)
        .setAudience(o.audience ?? AUDIENCE)
        .setSubject(typeof claims.sub === 'string' ? claims.sub : 'user-1')
        .setIssuedAt(now);
      if (!o.omitExp) jwt.setExpirationTime(now + (o.expiresIn ?? 300));
      if (o.notBefore !== undefined) jwt.setNotBefore(now + o.notBefore);
      return jwt.sign(key.privateKey);
    },
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

/** A token for a patient-context app. */
export function patientToken(iss: TestIssuer, patient: string, scope: string): Promise<string> {
  return iss.token({ patient, scope, fhirUser: `Patient/${patient}` });
}

export const bearer = (token: string): Record<string, string> => ({ Authorization: `Bearer ${token}` });

/** Creates `resource` with `token` (expects 201) and returns its id. */
export async function createAs(
  h: Harness,
  token: string,
  resource: Record<string, unknown>,
): Promise<string> {
  const res = await h.request
    .post(`/fhir/${resource.resourceType as string}`)
    .set(bearer(token))
    .set('Content-Type', FHIR_JSON)
    .send(resource);
  expect(res.status).toBe(201);
  return res.body.id as string;
}
