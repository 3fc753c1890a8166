import type { Location } from 'fhir/r4';
import { matches } from './helpers';

const at = (latitude: number, longitude: number): Location => ({
  resourceType: 'Location',
  position: { latitude, longitude },
});

describe('Location near', () => {
  it('near=lat|lon|distance|km matches a location within the distance', async () => {
    // Ann Arbor to Ypsilanti: about 11 km east.
    expect(await matches(at(42.2411, -83.613), 'near=42.256|-83.694|15|km')).toBe(true);
  });
  it('near does not match a location farther than the distance', async () => {
    expect(await matches(at(42.2411, -83.613), 'near=42.256|-83.694|5|km')).toBe(false);
  });
  it('units default to km; m and [mi_i] convert', async () => {
    expect(await matches(at(42.2411, -83.613), 'near=42.256|-83.694|15')).toBe(true);
    expect(await matches(at(42.2411, -83.613), 'near=42.256|-83.694|15000|m')).toBe(true);
    expect(await matches(at(42.2411, -83.613), 'near=42.256|-83.694|2|[mi_i]')).toBe(false);
  });
  it('a box across the antimeridian wraps', async () => {
    expect(await matches(at(0, 179.99), 'near=0|-179.99|10|km')).toBe(true);
  });
  it('an invalid position is a 400', async () => {
    await expect(matches(at(0, 0), 'near=north|-83')).rejects.toThrow(/Invalid/);
  });
  it('near:missing=true matches a Location without position', async () => {
    expect(await matches({ resourceType: 'Location' }, 'near:missing=true')).toBe(true);
  });
});
