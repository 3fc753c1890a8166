import { badRequest } from './errors';

/**
 * A point in time given as a parameter (`_since` of history, $everything, $export and view
 * exports): a FHIR instant, or a dateTime of lesser precision (`2024`, `2024-03`, `2024-03-01`,
 * `2024-03-01T10:00Z`) taken as its start. A time must carry its zone: without one the instant
 * would depend on the server's clock setting.
 */
const POINT = /^(\d{4})(-(\d{2})(-(\d{2})(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?)?)?$/;

/** The ISO instant (UTC) of `raw`; a malformed or impossible value is a 400 naming the parameter. */
export function parseInstantParam(name: string, raw: string): string {
  const value = raw.trim();
  const m = POINT.exec(value);
  if (!m)
    throw badRequest(`${name} must be an instant such as 2024-01-31T10:00:00Z, got "${value.slice(0, 80)}"`);
  const year = Number(m[1]);
  const month = m[3] === undefined ? 1 : Number(m[3]);
  const day = m[5] === undefined ? 1 : Number(m[5]);
  // Date.parse would roll 2024-02-30 over to March 1st.
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  const padded = m[3] === undefined ? `${value}-01-01` : m[5] === undefined ? `${value}-01` : value;
  const t = Date.parse(padded);
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth || Number.isNaN(t))
    throw badRequest(`${name} is not a valid date: "${value.slice(0, 80)}"`);
  return new Date(t).toISOString();
}
