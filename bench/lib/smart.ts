import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';

/** AUTH=smart for a bench run: a key pair minted here, its JWKS in a temporary file, one token. */
export interface BenchSmart {
  env: Record<string, string>;
  headers: Record<string, string>;
  cleanup(): Promise<void>;
}

const ISSUER = 'https://bench-issuer.invalid';
const AUDIENCE = 'bench-fhir';

export async function benchSmart(scope = 'system/*.cruds'): Promise<BenchSmart> {
  const { publicKey, privateKey } = await generateKeyPair('RS256');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'fhir-bench-auth-'));
  const jwksFile = path.join(dir, 'jwks.json');
  await writeFile(
    jwksFile,
    JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'bench', alg: 'RS256' }] }),
  );
  const now = Math.floor(Date.now() / 1000);
  const token = await new SignJWT({ scope, client_id: 'bench' })
    .setProtectedHeader({ alg: 'RS256', kid: 'bench' })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setSubject('bench')
    .setIssuedAt(now)
    .setExpirationTime(now + 6 * 3600)
    .sign(privateKey);
  return {
    env: {
      AUTH: 'smart',
      SMART_ISSUER: ISSUER,
      SMART_AUDIENCE: AUDIENCE,
      SMART_JWKS_FILE: jwksFile,
      SMART_TOKEN_URL: `${ISSUER}/token`,
    },
    headers: { authorization: `Bearer ${token}` },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}
