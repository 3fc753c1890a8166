import './style.css';
import 'uplot/dist/uPlot.min.css';
import type { App, Page } from './app';
import { append, h, message, replace } from './dom';
import { FhirClient, type Authorizer, type ConsoleSettings } from './fhir';
import { auditPage } from './pages/audit';
import { chartPage } from './pages/chart';
import { finderPage } from './pages/finder';
import { qualityPage } from './pages/quality';
import { resourcePage } from './pages/resource';
import { studiesPage } from './pages/studies';
import { CALLBACK_PATH, DEFAULT_SCOPE, discover, noAuth, SmartAuth } from './smart';

const ROOT = '/console';

const NAV: Array<{ path: string; label: string; match: RegExp }> = [
  { path: `${ROOT}/`, label: 'Patients', match: /^\/(patient\/.*)?$/ },
  { path: `${ROOT}/quality`, label: 'Data quality', match: /^\/quality$/ },
  { path: `${ROOT}/audit`, label: 'Audit', match: /^\/audit$/ },
  { path: `${ROOT}/studies`, label: 'Studies', match: /^\/studies$/ },
];

const ROUTES: Array<{ pattern: RegExp; page: Page; title: string }> = [
  { pattern: /^\/$/, page: finderPage, title: 'Find a patient' },
  { pattern: /^\/patient\/([^/]+)$/, page: chartPage, title: 'Patient chart' },
  { pattern: /^\/quality$/, page: qualityPage, title: 'Data quality' },
  { pattern: /^\/audit$/, page: auditPage, title: 'Audit' },
  { pattern: /^\/studies$/, page: studiesPage, title: 'Studies' },
  { pattern: /^\/resource\/([A-Za-z]+)\/([A-Za-z0-9.-]+)$/, page: resourcePage, title: 'Resource' },
];

function consolePath(): string {
  const p = location.pathname.startsWith(ROOT) ? location.pathname.slice(ROOT.length) : '/';
  return p === '' ? '/' : p.replace(/(.)\/+$/, '$1');
}

async function boot(): Promise<void> {
  const main = document.getElementById('main') as HTMLElement;
  let settings: ConsoleSettings;
  let auth: Authorizer = noAuth;
  let smart: SmartAuth | undefined;
  try {
    const res = await fetch(`${ROOT}/config.json`);
    settings = (await res.json()) as ConsoleSettings;
    const conf = await discover(settings);
    if (conf) {
      if (!conf.authorization_endpoint)
        throw new Error(
          'The server requires SMART tokens but names no authorization endpoint (SMART_AUTHORIZE_URL): the console cannot sign in.',
        );
      smart = new SmartAuth(settings, conf);
      auth = smart;
    }
  } catch (e) {
    replace(main, message(`The console could not start: ${(e as Error).message}`, 'error'));
    return;
  }

  if (smart && location.pathname === CALLBACK_PATH) {
    try {
      const next = await smart.complete(location.search);
      history.replaceState(null, '', next);
    } catch (e) {
      history.replaceState(null, '', `${ROOT}/`);
      replace(main, message(`Sign-in failed: ${(e as Error).message}`, 'error'));
      signInForm(main, smart);
      return;
    }
  }
  if (smart && !smart.signedIn()) {
    replace(main);
    signInForm(main, smart);
    return;
  }

  const client = new FhirClient(settings, auth);
  const app: App = {
    client,
    navigate(path: string) {
      history.pushState(null, '', path);
      void render();
    },
  };
  renderNav();
  const session = document.getElementById('session');
  if (session && smart) {
    const s = smart;
    replace(
      session,
      h('span', { title: s.scope() }, 'Signed in'),
      ' ',
      h(
        'button',
        { type: 'button', class: 'link', onclick: () => (s.signOut(), location.assign(`${ROOT}/`)) },
        'Sign out',
      ),
    );
  }

  // Links inside the console change the view without a reload; others (downloads, new tabs) are left alone.
  document.addEventListener('click', (ev) => {
    const a = (ev.target as Element | null)?.closest?.('a[data-link]');
    if (!(a instanceof HTMLAnchorElement)) return;
    if (ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey)
      return;
    ev.preventDefault();
    app.navigate(a.getAttribute('href') ?? `${ROOT}/`);
  });
  window.addEventListener('popstate', () => void render());

  let first = true;
  async function render(): Promise<void> {
    const path = consolePath();
    renderNav();
    const view = h('div', { class: 'view' });
    replace(main, view);
    const route = ROUTES.find((r) => r.pattern.test(path));
    if (!route) {
      document.title = 'Not found · Records console';
      append(
        view,
        h('h1', { tabindex: '-1' }, 'Not found'),
        message(`There is no console page at ${location.pathname}.`),
      );
    } else {
      document.title = `${route.title} · Records console`;
      const params = (route.pattern.exec(path) ?? []).slice(1).map((p) => decodeURIComponent(p ?? ''));
      try {
        await route.page(app, view, params, new URLSearchParams(location.search));
      } catch (e) {
        append(view, message((e as Error).message, 'error'));
      }
    }
    // Move focus to the new page's heading (screen readers announce it), except on first load.
    if (!first) view.querySelector<HTMLElement>('h1')?.focus();
    first = false;
  }
  await render();
}

function renderNav(): void {
  const nav = document.getElementById('nav');
  if (!nav) return;
  const path = consolePath();
  replace(
    nav,
    NAV.map((n) =>
      h(
        'li',
        {},
        h(
          'a',
          { href: n.path, 'data-link': true, 'aria-current': n.match.test(path) ? 'page' : null },
          n.label,
        ),
      ),
    ),
  );
}

function signInForm(main: HTMLElement, smart: SmartAuth): void {
  const clientId = h('input', {
    id: 'client-id',
    name: 'client_id',
    required: true,
    value: smart.lastClientId(),
  });
  const scope = h('input', { id: 'scope', name: 'scope', required: true, value: DEFAULT_SCOPE, size: 40 });
  const error = h('div');
  const form = h(
    'form',
    {
      class: 'card narrow',
      onsubmit: (ev: Event) => {
        ev.preventDefault();
        smart
          .signIn(clientId.value.trim(), scope.value.trim(), location.pathname + location.search)
          .catch((e: Error) => replace(error, message(e.message, 'error')));
      },
    },
    h('h1', { tabindex: '-1' }, 'Sign in'),
    h(
      'p',
      {},
      'This server requires SMART on FHIR authorization. You will be sent to its authorization server.',
    ),
    h('label', { for: 'client-id' }, 'Client id (as registered with the authorization server)'),
    clientId,
    h('label', { for: 'scope' }, 'Scopes'),
    scope,
    h('button', { type: 'submit' }, 'Sign in'),
    error,
  );
  append(main, form);
}

void boot();
