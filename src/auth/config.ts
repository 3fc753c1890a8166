import fs from 'node:fs';
import path from 'node:path';
import { readJwksFile } from './token';

export interface SmartConfig {
  /** SMART_ISSUER: the `iss` every token must carry. */
  issuer: string;
  /** SMART_AUDIENCE: the `aud` every token must carry (default: BASE_URL). */
  audience: string;
  /** SMART_JWKS_URI: the issuer's keys, fetched and cached. */
  jwksUri?: string;
  /** SMART_JWKS_FILE: or a JWKS JSON file. */
  jwksFile?: string;
  /** SMART_AUTHORIZE_URL / SMART_TOKEN_URL: advertised in smart-configuration and the CapabilityStatement. */
  authorizeUrl?: string;
  tokenUrl: string;
}

export interface AuthConfig {
  /** AUTH: none (everything open, for development) or smart (bearer tokens required). */
  mode: 'none' | 'smart';
  smart?: SmartConfig;
  /** CORS_ORIGINS: origins allowed to call the FHIR API from a browser (`*` for any). */
  corsOrigins: string[];
}

function httpUrl(name: string, raw: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new Error(`${name} must be an absolute http(s) URL, got "${raw}"`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new Error(`${name} must be an http(s) URL, got "${raw}"`);
  return raw;
}

function origin(raw: string): string {
  if (raw === '*') return raw;
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new Error(`CORS_ORIGINS must list origins like https://app.example, got "${raw}"`);
  }
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.origin !== raw.replace(/\/$/, ''))
    throw new Error(`CORS_ORIGINS must list origins like https://app.example (no path), got "${raw}"`);
  return u.origin;
}

/**
 * The authorization settings of the environment. Throws an Error with one clear line (config.ts
 * turns it into a ConfigError). NODE_ENV=production with AUTH=none refuses to start unless
 * ALLOW_NO_AUTH=true says so on purpose.
 */
export function loadAuthConfig(env: NodeJS.ProcessEnv, baseUrl: string): AuthConfig {
  const mode = env.AUTH?.trim().toLowerCase() || 'none';
  if (mode !== 'none' && mode !== 'smart') throw new Error(`AUTH must be none or smart, got "${env.AUTH}"`);
  const allow = env.ALLOW_NO_AUTH?.trim().toLowerCase() || 'false';
  if (allow !== 'true' && allow !== 'false')
    throw new Error(`ALLOW_NO_AUTH must be true or false, got "${env.ALLOW_NO_AUTH}"`);
  if (mode === 'none' && env.NODE_ENV?.trim() === 'production' && allow !== 'true')
    throw new Error(
      'AUTH=none in production: set AUTH=smart (with SMART_ISSUER and SMART_JWKS_URI or SMART_JWKS_FILE), or ALLOW_NO_AUTH=true to run open on purpose',
    );
  const corsOrigins = (env.CORS_ORIGINS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map(origin);
  if (mode === 'none') return { mode, corsOrigins };

  const issuer = env.SMART_ISSUER?.trim();
  if (!issuer) throw new Error('AUTH=smart needs SMART_ISSUER (the iss of the tokens)');
  const audience = env.SMART_AUDIENCE?.trim() || baseUrl;
  const jwksUri = env.SMART_JWKS_URI?.trim() || undefined;
  const rawFile = env.SMART_JWKS_FILE?.trim() || undefined;
  if (!jwksUri === !rawFile)
    throw new Error('AUTH=smart needs exactly one of SMART_JWKS_URI and SMART_JWKS_FILE');
  if (jwksUri) httpUrl('SMART_JWKS_URI', jwksUri);
  const jwksFile = rawFile ? path.resolve(rawFile) : undefined;
  if (jwksFile) {
    if (!fs.existsSync(jwksFile)) throw new Error(`SMART_JWKS_FILE ${jwksFile} does not exist`);
    readJwksFile(jwksFile);
  }
  const tokenUrl = env.SMART_TOKEN_URL?.trim();
  if (!tokenUrl)
    throw new Error('AUTH=smart needs SMART_TOKEN_URL (advertised to clients in smart-configuration)');
  httpUrl('SMART_TOKEN_URL', tokenUrl);
  const authorizeUrl = env.SMART_AUTHORIZE_URL?.trim() || undefined;
  if (authorizeUrl) httpUrl('SMART_AUTHORIZE_URL', authorizeUrl);
  return { mode, corsOrigins, smart: { issuer, audience, jwksUri, jwksFile, authorizeUrl, tokenUrl } };
}
