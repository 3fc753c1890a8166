import { isRecord, normalizeText } from './types/common';

/**
 * Words for `_text` (the narrative, XHTML tags dropped) and `_content` (every string in the resource):
 * lower case, accents folded, unique, in first-seen order. Searched by word prefix.
 */
export const WORD = /[\p{L}\p{N}]+/gu;
const TAG = /<[^>]*>/g;
const ENTITY = /&[a-z]+;|&#\d+;/gi;
const MAX_WORDS = 2000;

export function textWords(value: unknown, xhtml: boolean): string[] {
  const words = new Set<string>();
  const addText = (s: string): void => {
    const text = normalizeText(xhtml ? s.replace(TAG, ' ').replace(ENTITY, ' ') : s);
    for (const m of text.matchAll(WORD)) {
      if (words.size >= MAX_WORDS) return;
      words.add(m[0]);
    }
  };
  const walk = (v: unknown, key: string): void => {
    if (typeof v === 'string') {
      // Narrative, ids, attachments, and machine values (urls, references, codes) are not content words.
      if (xhtml || !SKIP_KEYS.has(key)) addText(v);
    } else if (Array.isArray(v)) {
      for (const x of v) walk(x, key);
    } else if (isRecord(v)) {
      for (const [k, x] of Object.entries(v)) if (!SKIP_KEYS.has(k)) walk(x, k);
    }
  };
  walk(value, '');
  return [...words];
}

const SKIP_KEYS = new Set([
  'div',
  'id',
  'resourceType',
  'reference',
  'system',
  'url',
  'data',
  'fullUrl',
  'versionId',
  'lastUpdated',
  'profile',
  'status',
  'use',
]);
