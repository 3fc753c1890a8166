import { FhirError } from '../../src/fhir/errors';
import { parseInstantParam } from '../../src/fhir/instant';

describe('parseInstantParam (_since, _at, _till)', () => {
  it.each([
    ['2024-01-31T10:00:00Z', '2024-01-31T10:00:00.000Z'],
    ['2024-01-31T10:00:00.123456+02:00', '2024-01-31T08:00:00.123Z'],
    ['2024-01-31T10:00-05:00', '2024-01-31T15:00:00.000Z'],
    ['2024-01-31', '2024-01-31T00:00:00.000Z'],
    ['2024-02', '2024-02-01T00:00:00.000Z'],
    ['2024', '2024-01-01T00:00:00.000Z'],
    [' 2024-02-29 ', '2024-02-29T00:00:00.000Z'],
  ])('%s -> %s', (given, instant) => {
    expect(parseInstantParam('_since', given)).toBe(instant);
  });

  it.each([
    'yesterday',
    '2024-01-31T10:00:00', // a time without its zone
    '2024-13-01',
    '2023-02-29',
    '2024-04-31',
    '2024-1-5',
    '2024-01-31 10:00:00Z',
    '',
  ])('refuses %p with a 400 naming the parameter', (given) => {
    try {
      parseInstantParam('_since', given);
      throw new Error('accepted');
    } catch (e) {
      expect(e).toBeInstanceOf(FhirError);
      expect((e as FhirError).status).toBe(400);
      expect((e as FhirError).message).toContain('_since');
    }
  });
});
