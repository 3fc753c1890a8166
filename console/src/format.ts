import type { CodeableConcept, Coding, HumanName, Identifier, Period, Quantity, Reference } from 'fhir/r4';

/** Display text of FHIR datatypes, as a records coordinator reads them. */

export function nameOf(names: HumanName[] | undefined): string {
  const n = names?.find((x) => x.use === 'official') ?? names?.[0];
  if (!n) return '(no name)';
  if (n.text) return n.text;
  const given = (n.given ?? []).join(' ');
  return [n.prefix?.join(' '), given, n.family].filter((s) => s && s.length > 0).join(' ') || '(no name)';
}

function codingText(c: Coding | undefined): string {
  if (!c) return '';
  return c.display ?? c.code ?? '';
}

export function conceptText(cc: CodeableConcept | undefined): string {
  if (!cc) return '';
  return cc.text ?? cc.coding?.map(codingText).find((t) => t.length > 0) ?? '';
}

function shortSystem(system: string): string {
  const known: Record<string, string> = {
    'http://loinc.org': 'LOINC',
    'http://snomed.info/sct': 'SNOMED CT',
    'http://www.nlm.nih.gov/research/umls/rxnorm': 'RxNorm',
    'http://unitsofmeasure.org': 'UCUM',
  };
  return known[system] ?? system.replace(/^https?:\/\//, '');
}

export function identifierText(i: Identifier): string {
  const type = conceptText(i.type);
  return `${type || (i.system ? shortSystem(i.system) : 'id')}: ${i.value ?? ''}`;
}

export function quantityText(q: Quantity | undefined): string {
  if (!q || q.value === undefined) return '';
  const unit = q.unit ?? q.code ?? '';
  return `${q.comparator ?? ''}${formatNumber(q.value)}${unit ? ` ${unit}` : ''}`;
}

export function formatNumber(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toLocaleString('en', { maximumFractionDigits: 3 });
}

/** A FHIR date/dateTime/instant for display: the date, and the time when there is one. */
export function dateText(d: string | undefined): string {
  if (!d) return '';
  if (d.length <= 10) return d;
  const t = new Date(d);
  if (Number.isNaN(t.getTime())) return d;
  return `${t.getFullYear()}-${pad(t.getMonth() + 1)}-${pad(t.getDate())} ${pad(t.getHours())}:${pad(t.getMinutes())}`;
}

function pad(n: number): string {
  return String(n).padStart(2, '0');
}

export function periodText(p: Period | undefined): string {
  if (!p) return '';
  if (p.start && p.end && p.start.slice(0, 10) === p.end.slice(0, 10)) return dateText(p.start);
  return [dateText(p.start), dateText(p.end)].filter(Boolean).join(' – ');
}

export function referenceText(r: Reference | undefined): string {
  return r ? (r.display ?? r.reference ?? '') : '';
}

/** Milliseconds since the epoch of a FHIR date, dateTime or instant (a date is its start, UTC). */
export function timeOf(d: string | undefined): number | undefined {
  if (!d) return undefined;
  const t = Date.parse(d.length === 4 ? `${d}-01-01` : d.length === 7 ? `${d}-01` : d);
  return Number.isNaN(t) ? undefined : t;
}

/** Age in whole years on a date (for the chart header). */
export function ageOf(birthDate: string | undefined, on: Date = new Date()): number | undefined {
  const t = timeOf(birthDate);
  if (t === undefined) return undefined;
  const b = new Date(t);
  let age = on.getUTCFullYear() - b.getUTCFullYear();
  if (
    on.getUTCMonth() < b.getUTCMonth() ||
    (on.getUTCMonth() === b.getUTCMonth() && on.getUTCDate() < b.getUTCDate())
  )
    age -= 1;
  return age;
}
