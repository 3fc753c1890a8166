import path from 'node:path';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type { Config } from '../config';

/** Where the console is served, and where `npm run build:console` writes it (console/dist). */
export const CONSOLE_PATH = '/console';
const DEFAULT_DIR = path.resolve(__dirname, '../../console/dist');

export interface ConsoleOptions {
  config: Config;
  /** The built console (index.html and assets/); default console/dist. */
  dir?: string;
}

/** Whether the console path would shadow (or be shadowed by) the FHIR API's own mount path. */
export function consoleCollides(mountPath: string): boolean {
  return mountPath === CONSOLE_PATH || mountPath.startsWith(`${CONSOLE_PATH}/`);
}

/**
 * The records console (console/): static files of a single-page app that works only through the
 * FHIR API, with the user's own token, so it needs no authorization of its own: the files hold no
 * data. Paths without a file extension answer index.html (the app's own routes, e.g.
 * /console/patient/123); a missing file with an extension is 404. The CSP lets the page load only
 * its own scripts and styles and talk only to this origin and the SMART token endpoint.
 */
export function consoleRouter({ config, dir = DEFAULT_DIR }: ConsoleOptions): Router {
  const router = express.Router({ caseSensitive: true, strict: false });
  const smart = config.auth.mode === 'smart' ? config.auth.smart : undefined;
  const connect = ["'self'"];
  if (smart) connect.push(new URL(smart.tokenUrl).origin);
  const csp = [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data: blob:",
    "font-src 'self'",
    `connect-src ${connect.join(' ')}`,
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
  const hsts = config.baseUrl.startsWith('https:');
  router.use((_req, res, next) => {
    res.set('Content-Security-Policy', csp);
    res.set('X-Content-Type-Options', 'nosniff');
    res.set('X-Frame-Options', 'DENY');
    res.set('Referrer-Policy', 'no-referrer');
    if (hsts) res.set('Strict-Transport-Security', 'max-age=31536000');
    next();
  });

  // What the page needs to find the API: its public base (the SMART `aud`) and its path on this origin.
  const settings = JSON.stringify({ fhirBase: config.baseUrl, fhirPath: config.mountPath });
  router.get('/config.json', (_req, res) => {
    res.status(200).set('Content-Type', 'application/json; charset=utf-8').set('Cache-Control', 'no-cache');
    res.send(settings);
  });

  // Built file names carry a content hash (assets/index-3f2a....js): cached for good.
  router.use(
    '/assets',
    express.static(path.join(dir, 'assets'), {
      index: false,
      fallthrough: true,
      immutable: true,
      maxAge: '365d',
    }),
  );
  router.use(express.static(dir, { index: false, fallthrough: true, maxAge: 0 }));

  const index = path.join(dir, 'index.html');
  router.use((req: Request, res: Response, next: NextFunction) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.status(405).set({ Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8' });
      res.send(`${req.method} is not allowed on the console`);
      return;
    }
    if (/\.[A-Za-z0-9]+$/.test(req.path)) {
      res.status(404).set('Content-Type', 'text/plain; charset=utf-8').send('Not found');
      return;
    }
    // No stat of its own per request: a missing index.html shows as sendFile's ENOENT.
    res.set('Cache-Control', 'no-cache');
    res.sendFile(index, (err?: NodeJS.ErrnoException) => {
      if (!err) return;
      if (err.code !== 'ENOENT' || res.headersSent) return next(err);
      res.removeHeader('Cache-Control');
      res.status(503).set('Content-Type', 'text/plain; charset=utf-8');
      res.send('The console is not built: run `npm run build:console` (npm ci and npm start do it).');
    });
  });
  return router;
}
