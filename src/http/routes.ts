import type { RequestHandler, Router } from 'express';

type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';

const ORDER = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'];

/** An Express route path (`/:type/:id/$validate`) as a regular expression over request paths. */
function pathPattern(path: string): RegExp {
  if (path === '/') return /^\/?$/;
  const segments = path
    .split('/')
    .map((s) => (s.startsWith(':') ? '[^/]+' : s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  return new RegExp(`^${segments.join('/')}/?$`);
}

/**
 * Registers routes on a router and remembers them, so that the methods allowed at a path are
 * derived from the routes themselves: a request whose path has routes, but none for its method,
 * gets 405 with exactly those methods in `Allow` (GET brings HEAD), and the table cannot drift from
 * the routes.
 */
export class RouteTable {
  private readonly routes: Array<{ pattern: RegExp; methods: Set<string> }> = [];

  constructor(private readonly router: Router) {}

  add(method: Method, path: string, handler: RequestHandler): void {
    this.router[method](path, handler);
    const pattern = pathPattern(path);
    let route = this.routes.find((r) => r.pattern.source === pattern.source);
    if (!route) {
      route = { pattern, methods: new Set() };
      this.routes.push(route);
    }
    route.methods.add(method.toUpperCase());
    if (method === 'get') route.methods.add('HEAD');
  }

  /** The methods some route answers at `path`, in the usual order; empty when no route has the path. */
  allowed(path: string): string[] {
    const methods = new Set<string>();
    for (const r of this.routes) if (r.pattern.test(path)) for (const m of r.methods) methods.add(m);
    return ORDER.filter((m) => methods.has(m));
  }
}
