import type { Resource } from 'fhir/r4';
import type { BaseDoc } from './backend';

/**
 * One document per resource in the collection named after its type: the current version, or a
 * tombstone when deleted. `idx` holds the normalised search values extracted at write time
 * (search/extract.ts); search filters are built over it and never evaluate FHIRPath at query time.
 */
export interface CurrentDoc extends BaseDoc {
  /** The logical id. */
  _id: string;
  versionId: number;
  /** ISO instant with milliseconds, the same string as resource.meta.lastUpdated. */
  lastUpdated: string;
  deleted: boolean;
  /** Null on a tombstone. */
  resource: Resource | null;
  idx: Record<string, unknown>;
}

export type HistoryMethod = 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** Every version ever written, of every type, in the `history` collection. */
export interface HistoryDoc extends BaseDoc {
  /** `${type}/${id}/${versionId}` */
  _id: string;
  type: string;
  id: string;
  versionId: number;
  lastUpdated: string;
  deleted: boolean;
  method: HistoryMethod;
  /** Absent for deletes. */
  resource?: Resource;
}

export const HISTORY_COLLECTION = 'history';
