import { badRequest } from '../../fhir/errors';
import type { Filter } from '../../store/backend';
import type { SearchValue } from '../request';
import { entryFilter, isRecord, missingFilter, num, orOf, type ValueNode } from './common';

/**
 * Location `near` (R4 special parameter): `near=lat|lon[|distance[|units]]`.
 * Index: `idx.near = [{lat, lon}]` from Location.position.
 * Query: the bounding box of the circle (the spec lets servers trade accuracy for speed). Units are
 * km (default), m, [mi_i] / mi; without a distance, 10 km is near.
 */
export interface NearEntry {
  lat: number;
  lon: number;
}

const DEFAULT_KM = 10;
const KM_PER_DEGREE = 111.32;
const UNIT_KM: Record<string, number> = { km: 1, m: 0.001, '[mi_i]': 1.609344, mi: 1.609344 };

export function indexNear(nodes: ValueNode[]): NearEntry[] {
  const out: NearEntry[] = [];
  for (const n of nodes) {
    if (!isRecord(n.data)) continue;
    const lat = num(n.data.latitude);
    const lon = num(n.data.longitude);
    if (lat !== undefined && lon !== undefined) out.push({ lat, lon });
  }
  return out;
}

function nearMatch(code: string, v: SearchValue): Filter {
  const [latText = '', lonText = '', distText, unitsText] = v.parts;
  const lat = Number(latText);
  const lon = Number(lonText);
  if (
    latText === '' ||
    lonText === '' ||
    !Number.isFinite(lat) ||
    !Number.isFinite(lon) ||
    Math.abs(lat) > 90
  ) {
    throw badRequest(`Invalid '${code}' value '${v.value}': use latitude|longitude[|distance[|units]]`);
  }
  const distance = distText ? Number(distText) : DEFAULT_KM;
  const unit = unitsText && unitsText !== '' ? UNIT_KM[unitsText] : 1;
  if (!Number.isFinite(distance) || distance < 0 || unit === undefined) {
    throw badRequest(`Invalid distance or units in '${code}=${v.value}' (units: km, m, [mi_i])`);
  }
  const km = distance * unit;
  const dLat = km / KM_PER_DEGREE;
  const cos = Math.cos((lat * Math.PI) / 180);
  const dLon = cos > 1e-6 ? Math.min(180, km / (KM_PER_DEGREE * cos)) : 180;
  const box: Filter = { lat: { $gte: lat - dLat, $lte: lat + dLat } };
  const west = lon - dLon;
  const east = lon + dLon;
  // A box across the antimeridian is two longitude ranges.
  let lonRange: Filter;
  if (dLon >= 180) lonRange = {};
  else if (west < -180) lonRange = { $or: [{ lon: { $gte: west + 360 } }, { lon: { $lte: east } }] };
  else if (east > 180) lonRange = { $or: [{ lon: { $gte: west } }, { lon: { $lte: east - 360 } }] };
  else lonRange = { lon: { $gte: west, $lte: east } };
  return entryFilter(code, { ...box, ...lonRange });
}

export function nearFilter(code: string, modifier: string | undefined, values: SearchValue[]): Filter {
  if (modifier === 'missing') return orOf(values.map((v) => missingFilter(code, v.value)));
  if (modifier !== undefined) throw badRequest(`Unknown modifier ':${modifier}' for '${code}'`);
  return orOf(values.map((v) => nearMatch(code, v)));
}
