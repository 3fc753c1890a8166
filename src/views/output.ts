import type { Row } from './runner';

/** The row formats of $run (SQL-on-FHIR v2 OperationDefinition-ViewDefinitionRun, `_format`). */
export type RowFormat = 'json' | 'ndjson' | 'csv';

export const CONTENT_TYPES: Record<RowFormat, string> = {
  json: 'application/json',
  ndjson: 'application/x-ndjson',
  csv: 'text/csv',
};

const FORMATS: Record<string, RowFormat> = {
  json: 'json',
  'application/json': 'json',
  'application/fhir+json': 'json',
  ndjson: 'ndjson',
  'application/x-ndjson': 'ndjson',
  'application/ndjson': 'ndjson',
  'application/fhir+ndjson': 'ndjson',
  csv: 'csv',
  'text/csv': 'csv',
};

/** The format named by `_format` (or an Accept type); undefined when it names none of ours. */
export function rowFormat(name: string): RowFormat | undefined {
  return FORMATS[name.trim().toLowerCase()];
}

/** One CSV field (RFC 4180): null is empty; quoted when it holds a comma, quote or line break. */
export function csvField(v: unknown): string {
  if (v === null || v === undefined) return '';
  const s = typeof v === 'object' ? JSON.stringify(v) : String(v);
  return /[",\r\n]/.test(s) || s !== s.trim() ? `"${s.replace(/"/g, '""')}"` : s;
}

/** Builds the body chunk by chunk, so the caller can feed rows as they are produced. */
export class RowWriter {
  private readonly chunks: string[] = [];
  private count = 0;

  constructor(
    readonly format: RowFormat,
    private readonly columns: string[],
  ) {
    if (format === 'csv') this.chunks.push(`${columns.map(csvField).join(',')}\r\n`);
    if (format === 'json') this.chunks.push('[');
  }

  get rows(): number {
    return this.count;
  }

  write(row: Row): void {
    const ordered = this.columns.map((c) => row[c] ?? null);
    if (this.format === 'csv') this.chunks.push(`${ordered.map(csvField).join(',')}\r\n`);
    else {
      const obj = JSON.stringify(Object.fromEntries(this.columns.map((c, i) => [c, ordered[i]])));
      if (this.format === 'ndjson') this.chunks.push(`${obj}\n`);
      else this.chunks.push(this.count === 0 ? obj : `,${obj}`);
    }
    this.count++;
  }

  finish(): string {
    if (this.format === 'json') this.chunks.push(']');
    return this.chunks.join('');
  }
}
