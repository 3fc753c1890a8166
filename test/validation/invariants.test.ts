import { InvariantEngine } from '../../src/validation/invariants';
import { errorsOf, observation, observationProfile, validatorWith, warningsOf } from './helpers';

/** Invariants (conformance-rules.html#constraints): FHIRPath constraints, with their severity. */
const withRules = observationProfile('rules', [
  {
    id: 'Observation',
    constraint: [
      { key: 'rul-1', severity: 'error', human: 'a note is required', expression: 'note.exists()' },
      {
        key: 'rul-2',
        severity: 'warning',
        human: 'an issued time is advised',
        expression: 'issued.exists()',
      },
      { key: 'rul-3', severity: 'error', human: 'not FHIRPath', expression: 'this is ((( not valid' },
    ],
  },
]);
const v = validatorWith([withRules]);
const P = 'http://example.org/fhir/StructureDefinition/rules';

describe('invariants', () => {
  test('a failing error invariant of the base definition is an error at its element', () => {
    const r = observation({ effectivePeriod: { start: '2024-02-01', end: '2024-01-01' } });
    delete r.effectiveDateTime;
    const e = errorsOf(v.validate(r).issues);
    expect(e).toHaveLength(1);
    expect(e[0]).toMatchObject({ code: 'invariant', expression: ['Observation.effective.ofType(Period)'] });
    expect(e[0]?.diagnostics).toMatch(/per-1/);
  });

  test('invariants evaluated with fhirpath (obs-3 on referenceRange)', () => {
    const bad = observation({ referenceRange: [{ text: 'x', type: { text: 'y' } }] });
    expect(errorsOf(v.validate(bad).issues)).toEqual([]);
    const empty = observation({ referenceRange: [{ type: { text: 'y' } }] });
    expect(errorsOf(v.validate(empty).issues)[0]?.diagnostics).toMatch(/obs-3/);
  });

  test('a resource-level invariant of a profile, with severity error', () => {
    const e = errorsOf(v.validate(observation(), [P]).issues);
    expect(e.map((i) => i.diagnostics)).toEqual([expect.stringMatching(/rul-1/)]);
    expect(errorsOf(v.validate(observation({ note: [{ text: 'n' }] }), [P]).issues)).toEqual([]);
  });

  test('severity is honoured: a warning invariant gives a warning', () => {
    const w = warningsOf(v.validate(observation({ note: [{ text: 'n' }] }), [P]).issues);
    expect(w.some((i) => /rul-2/.test(i.diagnostics ?? ''))).toBe(true);
  });

  test('invariants fhirpath cannot compile are skipped and counted', () => {
    v.validate(observation({ note: [{ text: 'n' }] }), [P]);
    expect(v.invariants.stats.uncompilableKeys.has('rul-3')).toBe(true);
    expect(v.invariants.stats.uncompilable).toBeGreaterThanOrEqual(1);
  });

  test('ext-1: an extension has a value or extensions, not both', () => {
    const r = observation({
      extension: [
        { url: 'http://x.example/e', valueString: 'a', extension: [{ url: 'b', valueString: 'c' }] },
      ],
    });
    expect(errorsOf(v.validate(r).issues)[0]?.diagnostics).toMatch(/ext-1/);
  });

  test('dom-3: a contained resource must be referenced', () => {
    const r = observation({ contained: [{ resourceType: 'Patient', id: 'p' }] });
    expect(errorsOf(v.validate(r).issues)[0]?.diagnostics).toMatch(/dom-3/);
  });

  test('native checks agree with fhirpath on the expressions they replace', () => {
    const engine = new InvariantEngine();
    const c = {
      key: 'x-1',
      severity: 'error' as const,
      human: '',
      expression: 'start.hasValue().not() or end.hasValue().not() or (start <= end)',
    };
    expect(engine.evaluate(c, 'Period', { start: '2024-01-01', end: '2024-01-02' }, {}, {})).toBe('pass');
    expect(engine.evaluate(c, 'Period', { start: '2024-01-03', end: '2024-01-02' }, {}, {})).toBe('fail');
  });
});

describe('invariants evaluated once', () => {
  test("a profile's copies of the base definitions' invariants are not evaluated again", () => {
    const v = validatorWith();
    const seen: string[] = [];
    const evaluate = v.invariants.evaluate.bind(v.invariants);
    v.invariants.evaluate = (c, ...rest) => {
      seen.push(c.key);
      return evaluate(c, ...rest);
    };
    const r = v.validate(
      observation({
        valueQuantity: { value: 72, unit: '/min', system: 'http://unitsofmeasure.org', code: '/min' },
      }),
      ['http://hl7.org/fhir/StructureDefinition/heartrate'],
    );
    expect(seen.filter((k) => k === 'dom-6')).toHaveLength(1); // base pass only
    expect(seen).toContain('vs-2'); // the profile's own invariants still run
    // dom-6 (no narrative) is still reported, once.
    expect(r.issues.filter((i) => /dom-6/.test(i.diagnostics ?? ''))).toHaveLength(1);
  });
});
