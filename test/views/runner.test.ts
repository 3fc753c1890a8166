import { parseViewDefinition } from '../../src/views/definition';
import { compileView } from '../../src/views/runner';

/** Runner behaviour beyond the conformance suite. */
const view = (v: Record<string, unknown>): ReturnType<typeof compileView> =>
  compileView(parseViewDefinition({ resourceType: 'ViewDefinition', resource: 'Patient', ...v }));

test('a % inside a string literal or a description is not a constant reference', () => {
  const v = view({
    select: [{ column: [{ name: 'pct', path: "'100%sure'", description: 'about %things' }] }],
  });
  expect(v.rows({ resourceType: 'Patient', id: 'p' })).toEqual([{ pct: '100%sure' }]);
});

test('an undefined constant is reported before any resource is read', () => {
  expect(() => view({ select: [{ column: [{ name: 'x', path: 'name.where(use = %nope)' }] }] })).toThrow(
    /undefined constant %nope/,
  );
});

test('resources of another type give no rows', () => {
  const v = view({ select: [{ column: [{ name: 'id', path: 'id' }] }] });
  expect(v.rows({ resourceType: 'Observation', id: 'o' })).toEqual([]);
});

test('getReferenceKey of an absolute reference is the logical id', () => {
  const v = compileView(
    parseViewDefinition({
      resource: 'Observation',
      select: [{ column: [{ name: 'p', path: 'subject.getReferenceKey(Patient)' }] }],
    }),
  );
  expect(
    v.rows({
      resourceType: 'Observation',
      subject: { reference: 'http://x.test/fhir/Patient/42/_history/3' },
    }),
  ).toEqual([{ p: '42' }]);
});
