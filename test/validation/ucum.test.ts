import { canonicalUnit, ucumDifference } from '../../src/validation/ucum';
import { errorsOf, observation, observationProfile, validatorWith } from './helpers';

/** UCUM conversion for minValue/maxValue on Quantities (unitsofmeasure.org). */
describe('UCUM units', () => {
  const inBase = (code: string): number | undefined => canonicalUnit(code)?.factor;

  test('prefixes, derived units, exponents, division, factors and annotations', () => {
    expect(inBase('kg')).toBe(1000);
    expect(inBase('mg')).toBeCloseTo(1e-3);
    expect(inBase('dL')).toBeCloseTo(1e-4); // 0.1 L = 1e-4 m3
    expect(inBase('mL')).toBeCloseTo(1e-6);
    expect(inBase('mg/dL')).toBeCloseTo(1e-3 / 1e-4);
    expect(inBase('10*3/uL')).toBeCloseTo(1e3 / 1e-9);
    expect(inBase('/min')).toBeCloseTo(1 / 60);
    expect(inBase('{beats}/min')).toBeCloseTo(1 / 60);
    expect(inBase('kg/m2')).toBe(1000);
    expect(inBase('mm[Hg]')).toBeCloseTo(133.322 * 1000); // in g/(m.s2)
    expect(canonicalUnit('[lb_av]')?.dims).toEqual({ M: 1 });
    expect(canonicalUnit('Cel')).toBeUndefined(); // offset units are not converted
    expect(canonicalUnit('furlong')).toBeUndefined();
  });

  test('differences across units of one kind; none across kinds', () => {
    expect(ucumDifference({ value: 1500, code: 'g' }, { value: 1, code: 'kg' })).toBeCloseTo(0.5);
    expect(ucumDifference({ value: 12, code: '[in_i]' }, { value: 1, code: '[ft_i]' })).toBeCloseTo(0);
    expect(ucumDifference({ value: 90, code: 'min' }, { value: 1, code: 'h' })).toBeCloseTo(0.5);
    expect(ucumDifference({ value: 1, code: 'g' }, { value: 1, code: 'm' })).toBeUndefined();
    expect(ucumDifference({ value: 1, code: 'mmol/L' }, { value: 1, code: 'mg/dL' })).toBeUndefined();
  });
});

describe('minValue/maxValue across UCUM units', () => {
  const ucum = (value: number, code: string): Record<string, unknown> => ({
    value,
    unit: code,
    system: 'http://unitsofmeasure.org',
    code,
  });
  const weight = observationProfile('weight-limits', [
    {
      id: 'Observation.value[x]',
      type: [{ code: 'Quantity' }],
      minValueQuantity: ucum(0, 'kg'),
      maxValueQuantity: ucum(10, 'kg'),
    },
  ]);
  const v = validatorWith([weight]);
  const errors = (q: Record<string, unknown>): string[] =>
    errorsOf(v.validate(observation({ valueQuantity: q }), [weight.url]).issues).map(
      (i) => i.diagnostics ?? '',
    );

  test('grams within kilogram bounds pass; below or above fail', () => {
    expect(errors(ucum(3000, 'g'))).toEqual([]);
    expect(errors(ucum(-1, 'g'))).toEqual([expect.stringMatching(/below the minimum 0 kg/)]);
    expect(errors(ucum(11000, 'g'))).toEqual([expect.stringMatching(/above the maximum 10 kg/)]);
    expect(errors(ucum(23, '[lb_av]'))).toEqual([expect.stringMatching(/above the maximum/)]);
  });

  test('a unit of another kind is not compared (no false rejection)', () => {
    expect(errors(ucum(50000, 'mL'))).toEqual([]);
  });
});
