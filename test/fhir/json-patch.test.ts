import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FhirError } from '../../src/fhir/errors';
import { applyJsonPatch, parseJsonPatch } from '../../src/fhir/json-patch';

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** The FhirError thrown by applying `patch` to `doc`; fails the test if the patch applies. */
function failure(doc: unknown, patch: unknown): FhirError {
  try {
    applyJsonPatch(doc, patch);
  } catch (e) {
    if (e instanceof FhirError) return e;
    throw e;
  }
  throw new Error('expected the patch to fail');
}

function expectError(doc: unknown, patch: unknown, status: 400 | 422, message: RegExp): void {
  const e = failure(doc, patch);
  expect(e.status).toBe(status);
  expect(e.issues[0]?.diagnostics).toMatch(message);
}

const patient = (): Record<string, unknown> => ({
  resourceType: 'Patient',
  id: 'p1',
  active: true,
  name: [{ family: 'Chalmers', given: ['Peter', 'James'] }],
  telecom: [{ system: 'phone', value: '555' }],
});

describe('applyJsonPatch: add', () => {
  it('adds an object member', () => {
    expect(applyJsonPatch({ a: 1 }, [{ op: 'add', path: '/b', value: { c: [1] } }])).toEqual({
      a: 1,
      b: { c: [1] },
    });
  });

  it('replaces an existing object member', () => {
    expect(applyJsonPatch({ a: 1 }, [{ op: 'add', path: '/a', value: 2 }])).toEqual({ a: 2 });
  });

  it('inserts into an array before the index', () => {
    expect(applyJsonPatch({ a: [1, 3] }, [{ op: 'add', path: '/a/1', value: 2 }])).toEqual({ a: [1, 2, 3] });
  });

  it('appends with index equal to the length and with "-"', () => {
    expect(
      applyJsonPatch({ a: [1] }, [
        { op: 'add', path: '/a/1', value: 2 },
        { op: 'add', path: '/a/-', value: 3 },
      ]),
    ).toEqual({ a: [1, 2, 3] });
  });

  it('replaces the whole document at path ""', () => {
    expect(applyJsonPatch({ a: 1 }, [{ op: 'add', path: '', value: [1] }])).toEqual([1]);
  });

  it('adds null as a value', () => {
    expect(applyJsonPatch({}, [{ op: 'add', path: '/a', value: null }])).toEqual({ a: null });
  });

  it('fails with 422 when the parent does not exist (no recursive creation)', () => {
    expectError(
      { q: {} },
      [{ op: 'add', path: '/a/b', value: 1 }],
      422,
      /operation 0 .*path "\/a" does not exist/,
    );
  });

  it('fails with 422 for an index past the end', () => {
    expectError({ a: [1] }, [{ op: 'add', path: '/a/2', value: 1 }], 422, /array index 2 is out of bounds/);
  });

  it('fails with 422 for a non-numeric or leading-zero array index', () => {
    expectError({ a: [1] }, [{ op: 'add', path: '/a/x', value: 1 }], 422, /"x" is not an array index/);
    expectError({ a: [1, 2] }, [{ op: 'add', path: '/a/01', value: 1 }], 422, /"01" is not an array index/);
  });

  it('fails with 422 when the parent is a primitive', () => {
    expectError(
      { a: 'text' },
      [{ op: 'add', path: '/a/b', value: 1 }],
      422,
      /path "\/a" is not an object or array/,
    );
  });
});

describe('applyJsonPatch: remove', () => {
  it('removes an object member', () => {
    expect(applyJsonPatch({ a: 1, b: 2 }, [{ op: 'remove', path: '/a' }])).toEqual({ b: 2 });
  });

  it('removes an array element and shifts the rest', () => {
    expect(applyJsonPatch({ a: [1, 2, 3] }, [{ op: 'remove', path: '/a/1' }])).toEqual({ a: [1, 3] });
  });

  it('fails with 422 when the member is missing', () => {
    expectError(
      { a: 1 },
      [{ op: 'remove', path: '/b' }],
      422,
      /operation 0 \(remove "\/b"\): path "\/b" does not exist/,
    );
  });

  it('fails with 422 for "-" and out-of-range indexes', () => {
    expectError({ a: [1] }, [{ op: 'remove', path: '/a/-' }], 422, /"-" does not name an existing element/);
    expectError({ a: [1] }, [{ op: 'remove', path: '/a/1' }], 422, /out of bounds/);
  });

  it('does not treat inherited properties as members', () => {
    expectError({ a: 1 }, [{ op: 'remove', path: '/toString' }], 422, /does not exist/);
    expectError({ a: 1 }, [{ op: 'test', path: '/hasOwnProperty', value: 1 }], 422, /does not exist/);
  });

  it('refuses to remove the whole document', () => {
    expectError({ a: 1 }, [{ op: 'remove', path: '' }], 422, /whole document/);
  });
});

describe('applyJsonPatch: replace', () => {
  it('replaces an object member and an array element', () => {
    expect(
      applyJsonPatch({ a: 1, b: [1, 2] }, [
        { op: 'replace', path: '/a', value: 'x' },
        { op: 'replace', path: '/b/0', value: { c: 1 } },
      ]),
    ).toEqual({ a: 'x', b: [{ c: 1 }, 2] });
  });

  it('replaces the whole document', () => {
    expect(applyJsonPatch({ a: 1 }, [{ op: 'replace', path: '', value: { b: 2 } }])).toEqual({ b: 2 });
  });

  it('fails with 422 when the target does not exist', () => {
    expectError({ a: 1 }, [{ op: 'replace', path: '/b', value: 1 }], 422, /path "\/b" does not exist/);
    expectError({ a: [] }, [{ op: 'replace', path: '/a/0', value: 1 }], 422, /out of bounds/);
  });
});

describe('applyJsonPatch: move', () => {
  it('moves an object member', () => {
    expect(
      applyJsonPatch({ foo: { bar: 'baz', waldo: 'fred' }, qux: { corge: 'grault' } }, [
        { op: 'move', from: '/foo/waldo', path: '/qux/thud' },
      ]),
    ).toEqual({ foo: { bar: 'baz' }, qux: { corge: 'grault', thud: 'fred' } });
  });

  it('moves an array element (removed first, then added)', () => {
    expect(
      applyJsonPatch({ foo: ['all', 'grass', 'cows', 'eat'] }, [
        { op: 'move', from: '/foo/1', path: '/foo/3' },
      ]),
    ).toEqual({ foo: ['all', 'cows', 'eat', 'grass'] });
  });

  it('is a no-op when from equals path', () => {
    expect(applyJsonPatch({ a: 1 }, [{ op: 'move', from: '/a', path: '/a' }])).toEqual({ a: 1 });
  });

  it('fails with 422 when from does not exist', () => {
    expectError({ a: 1 }, [{ op: 'move', from: '/b', path: '/c' }], 422, /path "\/b" does not exist/);
  });

  it('rejects moving a value into its own child with 400', () => {
    expectError({ a: { b: {} } }, [{ op: 'move', from: '/a', path: '/a/b/c' }], 400, /into its own child/);
  });
});

describe('applyJsonPatch: copy', () => {
  it('copies a value; the copy is independent of the original', () => {
    const result = applyJsonPatch({ a: { b: [1] } }, [
      { op: 'copy', from: '/a', path: '/c' },
      { op: 'add', path: '/c/b/-', value: 2 },
    ]);
    expect(result).toEqual({ a: { b: [1] }, c: { b: [1, 2] } });
  });

  it('fails with 422 when from does not exist', () => {
    expectError({ a: 1 }, [{ op: 'copy', from: '/x/y', path: '/c' }], 422, /path "\/x" does not exist/);
  });
});

describe('applyJsonPatch: test', () => {
  it('passes for equal values (object member order does not matter)', () => {
    const doc = { a: { x: 1, y: [1, { z: null }] }, s: 'v' };
    expect(
      applyJsonPatch(doc, [
        { op: 'test', path: '/a', value: { y: [1, { z: null }], x: 1 } },
        { op: 'test', path: '/s', value: 'v' },
        { op: 'test', path: '', value: doc },
      ]),
    ).toEqual(doc);
  });

  it('fails with 422 naming the operation index', () => {
    expectError(
      { a: 1 },
      [
        { op: 'test', path: '/a', value: 1 },
        { op: 'test', path: '/a', value: 2 },
      ],
      422,
      /^JSON Patch operation 1 \(test "\/a"\): test failed/,
    );
  });

  it.each([
    [10, '10'],
    [1, true],
    [null, 0],
    [
      [1, 2],
      [2, 1],
    ],
    [{ a: 1 }, { a: 1, b: 2 }],
    [{ a: 1, b: 2 }, { a: 1 }],
    [[1], { 0: 1 }],
  ])('distinguishes %j from %j', (actual, expected) => {
    expectError({ v: actual }, [{ op: 'test', path: '/v', value: expected }], 422, /test failed/);
  });
});

describe('applyJsonPatch: JSON Pointer', () => {
  it('decodes ~1 as "/" and ~0 as "~", in that order', () => {
    const doc = { '/': 9, '~1': 10, 'a/b': 1, 'm~n': 2, '': 3 };
    expect(
      applyJsonPatch(doc, [
        { op: 'test', path: '/~01', value: 10 },
        { op: 'test', path: '/~1', value: 9 },
        { op: 'test', path: '/a~1b', value: 1 },
        { op: 'test', path: '/m~0n', value: 2 },
        { op: 'test', path: '/', value: 3 },
      ]),
    ).toEqual(doc);
  });

  it('rejects a pointer not starting with "/" with 400', () => {
    expectError(
      {},
      [{ op: 'add', path: 'a', value: 1 }],
      400,
      /operation 0: pointer "a" must be empty or start with/,
    );
  });

  it('rejects a "~" escape other than ~0 and ~1 with 400', () => {
    expectError({}, [{ op: 'add', path: '/a~2', value: 1 }], 400, /"~" not followed by 0 or 1/);
    expectError({}, [{ op: 'add', path: '/a~', value: 1 }], 400, /"~" not followed by 0 or 1/);
  });

  it.each(['/__proto__', '/constructor', '/a/prototype', '/$where', '/a/__proto__/x'])(
    'rejects the forbidden segment in %s with 400',
    (path) => {
      expectError({ a: {} }, [{ op: 'add', path, value: { polluted: true } }], 400, /forbidden member/);
      expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    },
  );

  it('rejects a forbidden segment in "from"', () => {
    expectError(
      { a: {} },
      [{ op: 'copy', from: '/__proto__', path: '/b' }],
      400,
      /forbidden member "__proto__"/,
    );
  });

  it('rejects forbidden member names inside an added value', () => {
    expectError({}, [{ op: 'add', path: '/a', value: { b: { $set: 1 } } }], 400, /forbidden member "\$set"/);
    const value = JSON.parse('{"__proto__":{"polluted":true}}') as unknown;
    expectError({}, [{ op: 'add', path: '/a', value }], 400, /forbidden member "__proto__"/);
  });
});

describe('applyJsonPatch: patch document shape (400)', () => {
  it.each([
    ['not an array', { op: 'add', path: '/a', value: 1 }, /must be an array/],
    ['null', null, /must be an array/],
    ['an operation that is not an object', [1], /operation 0: must be an object/],
    ['an operation that is an array', [[]], /operation 0: must be an object/],
    ['a missing op', [{ path: '/a' }], /operation 0: "op" must be a string/],
    ['an unknown op', [{ op: 'merge', path: '/a' }], /operation 0: unknown op "merge"/],
    ['a wrong-case op', [{ op: 'Add', path: '/a', value: 1 }], /unknown op "Add"/],
    ['a missing path', [{ op: 'remove' }], /"path" must be a string/],
    ['a numeric path', [{ op: 'remove', path: 1 }], /"path" must be a string/],
    ['a missing value for add', [{ op: 'add', path: '/a' }], /"value" is required for add/],
    ['a missing value for replace', [{ op: 'replace', path: '/a' }], /"value" is required for replace/],
    ['a missing value for test', [{ op: 'test', path: '/a' }], /"value" is required for test/],
    ['a missing from for move', [{ op: 'move', path: '/a' }], /"from" must be a string for move/],
    ['a missing from for copy', [{ op: 'copy', path: '/a', from: 3 }], /"from" must be a string for copy/],
    ['a value that is not JSON', [{ op: 'add', path: '/a', value: () => 1 }], /not JSON/],
    ['a NaN value', [{ op: 'add', path: '/a', value: NaN }], /not finite/],
  ])('rejects %s', (_name, patch, message) => {
    expectError({ a: 1 }, patch, 400, message);
  });

  it('names the index of the faulty operation', () => {
    expectError(
      { a: 1 },
      [{ op: 'test', path: '/a', value: 1 }, { op: 'nope' }],
      400,
      /^JSON Patch operation 1:/,
    );
  });

  it('checks the whole patch before applying any operation', () => {
    // Operation 0 would fail with 422, but the malformed operation 1 is reported first.
    expectError({}, [{ op: 'remove', path: '/missing' }, { op: 'add' }], 400, /operation 1/);
  });

  it('ignores unrecognised members of an operation (RFC 6902 section 4)', () => {
    expect(applyJsonPatch({}, [{ op: 'add', path: '/a', value: 1, xyz: 123, from: 7 }])).toEqual({ a: 1 });
  });

  it('accepts an empty patch and returns an equal copy', () => {
    const doc = patient();
    const result = applyJsonPatch(doc, []);
    expect(result).toEqual(doc);
    expect(result).not.toBe(doc);
  });

  it('parseJsonPatch returns the operations', () => {
    expect(parseJsonPatch([{ op: 'move', from: '/a', path: '/b', extra: 1 }])).toEqual([
      { op: 'move', from: '/a', path: '/b' },
    ]);
  });
});

describe('applyJsonPatch: inputs are never modified', () => {
  it('works on a deeply frozen document and patch', () => {
    const doc = deepFreeze(patient());
    const patch = deepFreeze([
      { op: 'replace', path: '/active', value: false },
      { op: 'add', path: '/name/0/given/-', value: 'Jim' },
      { op: 'remove', path: '/telecom/0' },
      { op: 'move', from: '/id', path: '/idCopy' },
      { op: 'copy', from: '/idCopy', path: '/id' },
      { op: 'test', path: '/id', value: 'p1' },
    ]);
    const before = JSON.stringify(doc);
    const result = applyJsonPatch(doc, patch) as Record<string, unknown>;
    expect(JSON.stringify(doc)).toBe(before);
    expect(result).toEqual({
      resourceType: 'Patient',
      id: 'p1',
      idCopy: 'p1',
      active: false,
      name: [{ family: 'Chalmers', given: ['Peter', 'James', 'Jim'] }],
      telecom: [],
    });
  });

  it('returns a result that shares no objects with the inputs', () => {
    const doc = deepFreeze(patient());
    const value = deepFreeze({ system: 'email', value: 'a@b' });
    const result = applyJsonPatch(doc, [{ op: 'add', path: '/telecom/-', value }]) as {
      name: { given: string[] }[];
      telecom: unknown[];
    };
    expect(Object.isFrozen(result)).toBe(false);
    expect(result.telecom[1]).toEqual(value);
    expect(result.telecom[1]).not.toBe(value);
    result.name[0]?.given.push('mutable'); // would throw if shared with the frozen input
    expect((doc['name'] as { given: string[] }[])[0]?.given).toEqual(['Peter', 'James']);
  });

  it('leaves the input untouched when a later operation fails (atomic)', () => {
    const doc = patient();
    expectError(
      doc,
      [
        { op: 'remove', path: '/active' },
        { op: 'test', path: '/id', value: 'other' },
      ],
      422,
      /operation 1/,
    );
    expect(doc).toEqual(patient());
  });
});

// The JSON Patch cases shipped with FHIR's test cases (FHIR/fhir-test-cases r4/patch/json-patch-tests.json):
// each has a doc, a patch, and either the expected result or an error description.
const dataDir = process.env['FHIR_TEST_DATA'] ?? join(__dirname, '../../../shared/data');
const casesFile = join(dataDir, 'fhir-test-cases/r4/patch/json-patch-tests.json');

type Case = { comment: string; doc: unknown; patch: unknown; expected?: unknown; error?: string };

describe('applyJsonPatch: FHIR test cases (json-patch-tests.json)', () => {
  if (!existsSync(casesFile)) {
    console.log(`Skipping FHIR JSON Patch test cases: ${casesFile} not found (set FHIR_TEST_DATA)`);
    it.skip('FHIR JSON Patch test cases', () => undefined);
    return;
  }
  const cases = JSON.parse(readFileSync(casesFile, 'utf8')) as Case[];

  it('has cases', () => {
    expect(cases.length).toBeGreaterThan(0);
  });

  it.each(cases.map((c) => [c.comment, c] as const))('%s', (_comment, c) => {
    if (c.error !== undefined) {
      const e = failure(deepFreeze(c.doc), deepFreeze(c.patch));
      expect(e.status).toBe(422);
    } else {
      expect(applyJsonPatch(deepFreeze(c.doc), deepFreeze(c.patch))).toEqual(c.expected);
    }
  });
});
