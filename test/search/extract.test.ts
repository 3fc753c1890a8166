import type { FhirResource, Resource } from 'fhir/r4';
import { IndexExtractor, splitUnion, asToOfType } from '../../src/search/extract';
import { extractor, registry } from './helpers';

const extract = (r: FhirResource): Record<string, unknown> => extractor.extract(r);

describe('IndexExtractor', () => {
  it('with `only`, evaluates just those parameters and no full text', () => {
    const obs = {
      resourceType: 'Observation',
      status: 'final',
      code: { text: 'Heart rate' },
      subject: { reference: 'Patient/p1' },
      performer: [{ reference: 'Patient/p2' }],
      text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">pulse</div>' },
    } as Resource;
    const full = extractor.extract(obs);
    expect(Object.keys(full)).toEqual(expect.arrayContaining(['code', 'subject', 'performer', '_content']));
    const only = extractor.extract(obs, ['subject', 'performer']);
    expect(Object.keys(only).sort()).toEqual(['_sort', 'performer', 'subject']);
    expect(only.subject).toEqual(full.subject);
    expect(only.performer).toEqual(full.performer);
  });

  it('leaves out parameters without values, so :missing is $exists', () => {
    const idx = extract({ resourceType: 'Patient', gender: 'male' });
    expect(idx.gender).toEqual([{ s: 'http://hl7.org/fhir/administrative-gender', c: 'male' }]);
    expect('birthdate' in idx).toBe(false);
  });
  it('does not throw on odd resources: wrong JSON types are skipped', () => {
    const odd = {
      resourceType: 'Observation',
      status: 7,
      code: 'not-a-concept',
      subject: ['Patient/1'],
      effectiveDateTime: { nope: true },
      valueQuantity: 'x',
      component: 'y',
      name: [null],
    } as unknown as Resource;
    const errors: string[] = [];
    const ex = new IndexExtractor(registry, { onError: (t, c) => errors.push(`${t}.${c}`) });
    expect(() => ex.extract(odd)).not.toThrow();
    expect(() => ex.extract(null as unknown as Resource)).not.toThrow();
    expect(() => ex.extract({ resourceType: 'NotAType' } as unknown as Resource)).not.toThrow();
  });
  it('a string parameter indexes each part of a HumanName, normalised and exact', () => {
    const idx = extract({ resourceType: 'Patient', name: [{ family: 'Núñez', given: ['Ana'] }] });
    expect(idx.name).toEqual([
      { n: 'nunez', e: 'Núñez' },
      { n: 'ana', e: 'Ana' },
    ]);
  });
  it('a date parameter indexes the range of the precision', () => {
    const idx = extract({ resourceType: 'Patient', birthDate: '2020' });
    expect(idx.birthdate).toEqual([
      { lo: Date.parse('2020-01-01T00:00:00Z'), hi: Date.parse('2021-01-01T00:00:00Z') - 1 },
    ]);
  });
  it('a quantity carries its UCUM canonical form', () => {
    const idx = extract({
      resourceType: 'Observation',
      status: 'final',
      code: { text: 'w' },
      valueQuantity: { value: 70, system: 'http://unitsofmeasure.org', code: 'kg' },
    });
    expect(idx['value-quantity']).toEqual([
      { v: 70, lo: 69.5, hi: 70.5, s: 'http://unitsofmeasure.org', c: 'kg', cv: 70000, cc: 'g' },
    ]);
  });
  it('sort keys are scalars: least value ascending, greatest descending', () => {
    const idx = extract({ resourceType: 'Patient', name: [{ family: 'Zed', given: ['Amy'] }] });
    expect((idx._sort as Record<string, unknown>).name).toEqual({ a: 'amy', d: 'zed' });
  });
  it('splitUnion splits at top-level | only', () => {
    expect(splitUnion("(A.b as C) | A.d.where(e = 'x|y') | A.f")).toEqual([
      '(A.b as C)',
      "A.d.where(e = 'x|y')",
      'A.f',
    ]);
  });
  it('asToOfType rewrites as on collections to ofType', () => {
    expect(asToOfType('Observation.component.value as CodeableConcept')).toBe(
      'Observation.component.value.ofType(CodeableConcept)',
    );
    expect(asToOfType('(Observation.effective as dateTime)')).toBe('Observation.effective.ofType(dateTime)');
    expect(asToOfType('Condition.onset.as(Age)')).toBe('Condition.onset.ofType(Age)');
  });
});
