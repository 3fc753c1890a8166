import fhirpath from 'fhirpath';
import { roundSignificant } from './common';

export const UCUM_SYSTEM = 'http://unitsofmeasure.org';

/**
 * The slice of @lhncbc/ucum-lhc (shipped inside fhirpath as `ucumUtils`, untyped upstream) used here.
 * Narrowed from `unknown` by the shape checks in `canonicalUnit`.
 */
interface UcumUtils {
  convertToBaseUnits(unit: string, value: number): unknown;
}

const ucum = (fhirpath as unknown as { ucumUtils: UcumUtils }).ucumUtils;

/** A unit's canonical form: value in canonical units = value * factor; `code` names the dimension. */
export interface CanonicalUnit {
  factor: number;
  code: string;
}

const cache = new Map<string, CanonicalUnit | null>();

/**
 * UCUM canonical form of a unit code, by ucum-lhc's conversion to base units (g, m, s, K, ...): any
 * linear UCUM unit converts (mg/dL and g/L compare; mm[Hg] and kPa compare; [lb_av] and kg compare).
 * Special (non-linear) units such as Cel and [degF], dimensionless units (%, {score}, 1) and units
 * ucum-lhc does not parse have no canonical form: they match by system and code only.
 */
export function canonicalUnit(code: string): CanonicalUnit | undefined {
  const hit = cache.get(code);
  if (hit !== undefined) return hit ?? undefined;
  let result: CanonicalUnit | null = null;
  try {
    const r = ucum.convertToBaseUnits(code, 1);
    if (typeof r === 'object' && r !== null) {
      const { status, magnitude, unitToExp, fromUnitIsSpecial } = r as Record<string, unknown>;
      if (
        status === 'succeeded' &&
        fromUnitIsSpecial !== true &&
        typeof magnitude === 'number' &&
        Number.isFinite(magnitude) &&
        magnitude !== 0 &&
        typeof unitToExp === 'object' &&
        unitToExp !== null
      ) {
        const dims = Object.entries(unitToExp as Record<string, unknown>)
          .filter((e): e is [string, number] => typeof e[1] === 'number' && e[1] !== 0)
          .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
          .map(([u, e]) => (e === 1 ? u : `${u}${e}`));
        if (dims.length > 0) result = { factor: roundSignificant(magnitude), code: dims.join('.') };
      }
    }
  } catch {
    result = null;
  }
  if (cache.size > 10000) cache.clear();
  cache.set(code, result);
  return result ?? undefined;
}
