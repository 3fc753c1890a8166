import type { FhirClient } from './fhir';

/** What every page gets: the API client and the router. */
export interface App {
  client: FhirClient;
  navigate(path: string): void;
}

/** A page renders itself into `view` (a fresh element; a page that finishes late writes into a detached one). */
export type Page = (
  app: App,
  view: HTMLElement,
  params: string[],
  query: URLSearchParams,
) => Promise<void> | void;
