import { errorLines, observation, validatorWith } from './helpers';

/** Structure against the R4 StructureDefinitions (validation.html#structure). */
const v = validatorWith();
const errors = (r: unknown): string[] => errorLines(v, r);

describe('structure', () => {
  test('a well-formed Observation has no errors', () => {
    expect(
      errors(
        observation({
          valueQuantity: { value: 72, unit: '/min', system: 'http://unitsofmeasure.org', code: '/min' },
        }),
      ),
    ).toEqual([]);
  });

  test('an unknown element is an error at its path', () => {
    const e = errors(observation({ colour: 'blue' }));
    expect(e).toHaveLength(1);
    expect(e[0]).toMatch(/^Observation\.colour: Unrecognised element/);
  });

  test('unknown elements inside datatypes are found too', () => {
    expect(errors(observation({ code: { text: 'x', spelling: 'y' } }))[0]).toMatch(
      /^Observation\.code\.spelling:/,
    );
  });

  test('a JSON type that does not fit the element is an error', () => {
    expect(errors({ resourceType: 'Patient', active: 'yes' })[0]).toMatch(/^Patient\.active: .*JSON boolean/);
  });

  test('primitive formats: an impossible date is an error, a partial date is fine', () => {
    expect(errors({ resourceType: 'Patient', birthDate: '1980-02-30' })).toHaveLength(1);
    expect(errors({ resourceType: 'Patient', birthDate: '1980-02' })).toEqual([]);
    expect(errors({ resourceType: 'Patient', birthDate: '1980-2-3' })).toHaveLength(1);
  });

  test('primitive formats: instant needs a time zone, id its character set, integer a whole number', () => {
    expect(errors({ resourceType: 'Patient', meta: { lastUpdated: '2024-01-01T00:00:00' } })).toHaveLength(1);
    expect(errors({ resourceType: 'Patient', id: 'a_b' })).toHaveLength(1);
    expect(errors({ resourceType: 'Patient', multipleBirthInteger: 1.5 })).toHaveLength(1);
  });

  test('choice elements take one of their types as a suffix', () => {
    expect(errors(observation({ valueString: 'ok' }))).toEqual([]);
    expect(errors(observation({ valueAddress: { city: 'x' } }))[0]).toMatch(
      /Unrecognised element 'valueAddress'/,
    );
  });

  test('a choice element with two types at once is an error', () => {
    expect(errors(observation({ valueString: 'a', valueBoolean: true })).join()).toMatch(
      /more than one type/,
    );
  });

  test('minimum cardinality: a required element that is missing', () => {
    const e = errors({ resourceType: 'Observation', code: { text: 'x' } });
    expect(e).toEqual([expect.stringMatching(/^Observation\.status: .*minimum required = 1/)]);
  });

  test('maximum cardinality: an array where at most one is allowed', () => {
    expect(errors(observation({ status: ['final'] }))[0]).toMatch(/must not be a JSON array/);
  });

  test('a repeating element must be an array', () => {
    expect(errors({ resourceType: 'Patient', name: { family: 'X' } })[0]).toMatch(
      /^Patient\.name: .*JSON array/,
    );
  });

  test('primitive extensions (_element) are checked, and line up with their values', () => {
    const ok = {
      resourceType: 'Patient',
      birthDate: '1980-01-01',
      _birthDate: { extension: [{ url: 'http://x.example/e', valueString: 'a' }] },
    };
    expect(errors(ok)).toEqual([]);
    expect(errors({ ...ok, _birthDate: { colour: 'red' } })[0]).toMatch(/Unrecognised element 'colour'/);
    const given = {
      resourceType: 'Patient',
      name: [
        {
          given: ['A', null],
          _given: [null, { extension: [{ url: 'http://x.example/e', valueString: 'b' }] }],
        },
      ],
    };
    expect(errors(given)).toEqual([]);
  });

  test('empty objects, empty arrays and nulls are rejected', () => {
    expect(errors({ resourceType: 'Patient', name: [] })).not.toEqual([]);
    expect(errors({ resourceType: 'Patient', name: [{}] })).not.toEqual([]);
    expect(errors({ resourceType: 'Patient', gender: null })).not.toEqual([]);
  });

  test('contained resources are validated as resources of their own type', () => {
    const r = observation({
      contained: [{ resourceType: 'Patient', id: 'p', active: 'no' }],
      subject: { reference: '#p' },
    });
    expect(errors(r)).toEqual([expect.stringMatching(/^Observation\.contained\[0\]\.active:/)]);
  });

  test('an unknown resource type is an error', () => {
    expect(errors({ resourceType: 'Patientx' })).not.toEqual([]);
    expect(errors(observation({ contained: [{ resourceType: 'Nope', id: 'n' }] }))).not.toEqual([]);
  });

  test('references may only point to the target types the element allows', () => {
    expect(errors(observation({ subject: { reference: 'Patient/1' } }))).toEqual([]);
    expect(errors(observation({ subject: { reference: 'Practitioner/1' } }))[0]).toMatch(
      /reference to Practitioner is not allowed/,
    );
  });

  test('a local reference must name a contained resource', () => {
    expect(errors(observation({ subject: { reference: '#nope' } })).join()).toMatch(
      /#nope is not in this resource/,
    );
  });

  test('Bundle entries are validated as resources', () => {
    const b = {
      resourceType: 'Bundle',
      type: 'collection',
      entry: [
        { fullUrl: 'urn:uuid:1', resource: { resourceType: 'Patient', gender: 'x', birthDate: 'soon' } },
      ],
    };
    expect(errors(b).some((e) => e.startsWith('Bundle.entry[0].resource.birthDate'))).toBe(true);
  });

  test('nested backbone elements and contentReference (Questionnaire.item.item) are followed', () => {
    const q = {
      resourceType: 'Questionnaire',
      status: 'draft',
      item: [{ linkId: '1', type: 'group', item: [{ linkId: '1.1', type: 'string', bogus: 1 }] }],
    };
    expect(errors(q)).toEqual([expect.stringMatching(/^Questionnaire\.item\[0\]\.item\[0\]\.bogus:/)]);
  });
});
