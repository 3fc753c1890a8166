import type { Scenario } from '../lib/scenario';
import { crud } from './crud';
import { exportScenario } from './export';
import { ingest } from './ingest';
import { searchScenario } from './search';
import { validate } from './validate';
import { viewsScenario } from './views';

/** Every scenario `npm run bench -- <name>` can run; the first one is the default. */
export const scenarios: readonly Scenario[] = [
  crud,
  ingest,
  validate,
  exportScenario,
  viewsScenario,
  searchScenario,
];

export function findScenario(name: string): Scenario | undefined {
  return scenarios.find((scenario) => scenario.name === name);
}
