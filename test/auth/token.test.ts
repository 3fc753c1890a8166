import { createHmac } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, exportSPKI, generateKeyPair, importJWK, SignJWT, type JWK, type KeyLike } from 'jose';
import { TokenError, TokenVerifier } from '../../src/auth/token';
import { AUDIENCE, ISSUER, makeIssuer, type TestIssuer } from './issuer';

let iss: TestIssuer;
let verifier: TokenVerifier;

beforeAll(async () => {
  iss = await makeIssuer();
  verifier = new TokenVerifier({ issuer: ISSUER, audience: AUDIENCE, jwksFile: iss.jwksFile, cacheSize: 0 });
});
afterAll(() => iss.cleanup());

const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64url');
const unb64 = (s: string): string => Buffer.from(s, 'base64url').toString('utf8');

function parts(token: string): {
  header: Record<string, unknown>;
  payload: Record<string, unknown>;
  sig: string;
} {
  const [h, p, sig] = token.split('.') as [string, string, string];
  return { header: JSON.parse(unb64(h)), payload: JSON.parse(unb64(p)), sig };
}

function assemble(header: unknown, payload: unknown, sig: string): string {
  return `${b64(JSON.stringify(header))}.${b64(JSON.stringify(payload))}.${sig}`;
}

function hs256(header: Record<string, unknown>, payload: unknown, secret: Buffer | string): string {
  const signingInput = `${b64(JSON.stringify({ ...header, alg: 'HS256' }))}.${b64(JSON.stringify(payload))}`;
  return `${signingInput}.${createHmac('sha256', secret).update(signingInput).digest('base64url')}`;
}

async function rejected(token: string): Promise<TokenError> {
  try {
    await verifier.verify(token);
  } catch (e) {
    expect(e).toBeInstanceOf(TokenError);
    expect((e as TokenError).unavailable).toBe(false);
    return e as TokenError;
  }
  throw new Error(`accepted a token that should be refused: ${token.slice(0, 60)}...`);
}

describe('TokenVerifier with a JWKS file', () => {
  test('accepts RS256 and ES256 tokens of the issuer and returns their claims', async () => {
    const rs = await verifier.verify(await iss.token({ scope: 'user/*.rs' }));
    expect(rs.scope).toBe('user/*.rs');
    const es = await verifier.verify(await iss.token({ scope: 'user/*.rs' }, { alg: 'ES256' }));
    expect(es.iss).toBe(ISSUER);
  });

  test('a cached token is refused once it expires', async () => {
    let now = Date.now();
    const v = new TokenVerifier({ issuer: ISSUER, audience: AUDIENCE, jwksFile: iss.jwksFile }, () => now);
    const t = await iss.token({}, { expiresIn: 30 });
    await v.verify(t);
    await v.verify(t);
    now += 120_000;
    await expect(v.verify(t)).rejects.toThrow('expired');
  });
});

describe('tampered tokens are all refused (fuzz)', () => {
  let good: string;
  beforeAll(async () => {
    good = await iss.token({ scope: 'patient/*.rs', patient: 'p1' });
    await verifier.verify(good);
  });

  test('a changed claim with the original signature', async () => {
    const { header, payload, sig } = parts(good);
    const changes: Array<Record<string, unknown>> = [
      { patient: 'p2' },
      { scope: 'system/*.cruds' },
      { sub: 'admin' },
      { exp: (payload.exp as number) + 3600 },
      { iss: `${ISSUER}/` },
      { aud: [AUDIENCE, 'https://other.test'] },
      { nbf: 0 },
      { fhirUser: 'Practitioner/1' },
      { extra: true },
    ];
    for (const c of changes) {
      const tampered = assemble(header, { ...payload, ...c }, sig);
      expect(tampered).not.toBe(good);
      await rejected(tampered);
    }
  });

  test('single flipped characters anywhere in header, payload and signature', async () => {
    // Deterministic: every 7th position, each replaced by a different base64url character.
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    let tried = 0;
    for (let i = 0; i < good.length; i += 7) {
      const ch = good[i] as string;
      if (ch === '.') continue;
      const repl = alphabet[(alphabet.indexOf(ch) + 17) % alphabet.length] as string;
      const tampered = good.slice(0, i) + repl + good.slice(i + 1);
      // Base64url's last character may carry unused bits: a change there can decode to the same bytes.
      const same = tampered
        .split('.')
        .every((p, k) =>
          Buffer.from(p, 'base64url').equals(Buffer.from(good.split('.')[k] as string, 'base64url')),
        );
      if (same) continue;
      await rejected(tampered);
      tried++;
    }
    expect(tried).toBeGreaterThan(50);
  });

  test('alg none, with and without a signature', async () => {
    const { header, payload, sig } = parts(good);
    for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
      await rejected(assemble({ ...header, alg }, payload, ''));
      await rejected(assemble({ ...header, alg }, payload, sig));
    }
  });

  test('alg confusion: HS256 signed with the public key in every usual encoding', async () => {
    const { header, payload } = parts(good);
    const jwk = iss.rsa.publicJwk;
    const pem = await exportSPKI((await importJWK(jwk, 'RS256')) as KeyLike);
    const secrets: Array<Buffer | string> = [
      pem,
      pem.trim(),
      JSON.stringify(jwk),
      JSON.stringify({ kty: jwk.kty, n: jwk.n, e: jwk.e }),
      Buffer.from(jwk.n as string, 'base64url'),
      jwk.n as string,
    ];
    for (const s of secrets) {
      await rejected(hs256(header, payload, s));
      for (const alg of ['HS384', 'HS512']) {
        const input = `${b64(JSON.stringify({ ...header, alg }))}.${b64(JSON.stringify(payload))}`;
        const mac = createHmac(alg === 'HS384' ? 'sha384' : 'sha512', s)
          .update(input)
          .digest('base64url');
        await rejected(`${input}.${mac}`);
      }
    }
  });

  test('kid swap: a signature presented under another key id, or another algorithm', async () => {
    const rs = await iss.token({ scope: 'user/*.rs' });
    const es = await iss.token({ scope: 'user/*.rs' }, { alg: 'ES256' });
    const a = parts(rs);
    const b = parts(es);
    await rejected(assemble({ ...a.header, kid: 'ec-1' }, a.payload, a.sig));
    await rejected(assemble({ ...b.header, kid: 'rsa-1' }, b.payload, b.sig));
    await rejected(assemble({ ...b.header, alg: 'RS256', kid: 'rsa-1' }, b.payload, b.sig));
    await rejected(assemble({ ...a.header, kid: 'unknown' }, a.payload, a.sig));
    for (const alg of ['RS384', 'RS512', 'PS256', 'ES256'])
      await rejected(assemble({ ...a.header, alg }, a.payload, a.sig));
  });

  test('a key embedded in the header (jwk, jku, x5u) is never trusted', async () => {
    const attacker = await generateKeyPair('RS256', { extractable: true });
    const attackerJwk: JWK = await exportJWK(attacker.publicKey);
    const now = Math.floor(Date.now() / 1000);
    const claims = { scope: 'system/*.cruds', iss: ISSUER, aud: AUDIENCE, exp: now + 300 };
    for (const extra of [
      { jwk: attackerJwk },
      { jku: 'http://127.0.0.1:1/jwks.json' },
      { x5u: 'http://127.0.0.1:1/cert.pem' },
      { kid: 'rsa-1', jwk: attackerJwk },
    ]) {
      const t = await new SignJWT(claims)
        .setProtectedHeader({ alg: 'RS256', ...extra })
        .sign(attacker.privateKey);
      await rejected(t);
    }
  });

  test('structural garbage: too few or too many parts, bad JSON, huge numbers', async () => {
    const { header, payload, sig } = parts(good);
    const [h, p] = good.split('.') as [string, string];
    for (const t of [
      '',
      '.',
      '..',
      `${h}.${p}`,
      `${good}.x`,
      `${b64('{')}.${p}.${sig}`,
      `${h}.${b64('[]')}.${sig}`,
      `${h}.${b64('null')}.${sig}`,
      assemble({ ...header, crit: ['exp'] }, payload, sig),
      assemble({ ...header, b64: false, crit: ['b64'] }, payload, sig),
      assemble(header, { ...payload, exp: 1e308 }, sig),
    ])
      await rejected(t);
  });
});

describe('TokenVerifier with SMART_JWKS_URI (a local JWKS server)', () => {
  let server: http.Server;
  let url: string;
  let served: { keys: JWK[] };
  let fetches = 0;
  let status = 200;

  beforeAll(async () => {
    served = { keys: [iss.rsa.publicJwk] };
    server = http.createServer((_req, res) => {
      fetches++;
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(served));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  test('keys are fetched once and cached', async () => {
    fetches = 0;
    const v = new TokenVerifier({ issuer: ISSUER, audience: AUDIENCE, jwksUri: url, cacheSize: 0 });
    await v.verify(await iss.token({ a: 1 }));
    await v.verify(await iss.token({ a: 2 }));
    expect(fetches).toBe(1);
  });

  test('an unknown kid triggers a refetch (key rotation), at most once per cooldown', async () => {
    fetches = 0;
    const v = new TokenVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      jwksUri: url,
      cacheSize: 0,
      cooldownMs: 0,
    });
    served = { keys: [iss.rsa.publicJwk] };
    await v.verify(await iss.token({}));
    expect(fetches).toBe(1);
    // The issuer rotates in its EC key: the verifier refetches on the unknown kid.
    served = { keys: [iss.rsa.publicJwk, iss.ec.publicJwk] };
    await v.verify(await iss.token({}, { alg: 'ES256' }));
    expect(fetches).toBe(2);

    // With a cooldown, a flood of unknown kids does not flood the issuer.
    fetches = 0;
    const limited = new TokenVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      jwksUri: url,
      cacheSize: 0,
      cooldownMs: 60_000,
    });
    served = { keys: [iss.rsa.publicJwk] };
    await limited.verify(await iss.token({}));
    for (let i = 0; i < 5; i++)
      await expect(limited.verify(await iss.token({}, { kid: `nope-${i}` }))).rejects.toThrow(TokenError);
    expect(fetches).toBe(1);
  });

  test('an unreachable JWKS is the server’s problem (unavailable), not a bad token', async () => {
    status = 500;
    const v = new TokenVerifier({ issuer: ISSUER, audience: AUDIENCE, jwksUri: url });
    const e = await v.verify(await iss.token({})).catch((x: unknown) => x);
    status = 200;
    expect(e).toBeInstanceOf(TokenError);
    expect((e as TokenError).unavailable).toBe(true);
  });
});
