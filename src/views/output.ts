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

/** The first line of a file or body: CSV's header row; nothing for the other formats. */
export function headerLine(format: RowFormat, columns: readonly string[]): string {
  return format === 'csv' ? `${columns.map(csvField).join(',')}\r\n` : '';
}

/** One row as a CSV line or a JSON object (NDJSON adds the line break), columns in view order. */
export function rowLine(format: RowFormat, columns: readonly string[], row: Row): string {
  const ordered = columns.map((c) => row[c] ?? null);
  if (format === 'csv') return `${ordered.map(csvField).join(',')}\r\n`;
  const obj = JSON.stringify(Object.fromEntries(columns.map((c, i) => [c, ordered[i]])));
  return format === 'ndjson' ? `${obj}\n` : obj;
}

/** Builds the body chunk by chunk, so the caller can feed rows as they are produced. */
export class RowWriter {
  private readonly chunks: string[] = [];
  private count = 0;

  constructor(
    readonly format: RowFormat,
    private readonly columns: string[],
  ) {
    this.chunks.push(format === 'json' ? '[' : headerLine(format, columns));
  }

  get rows(): number {
    return this.count;
  }

  write(row: Row): void {
    const line = rowLine(this.format, this.columns, row);
    this.chunks.push(this.format === 'json' && this.count > 0 ? `,${line}` : line);
    this.count++;
  }

  finish(): string {
    if (this.format === 'json') this.chunks.push(']');
    return this.chunks.join('');
  }
}
