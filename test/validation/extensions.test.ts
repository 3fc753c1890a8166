import type { StructureDefinition } from 'fhir/r4';
import { errorLines, validatorWith } from './helpers';

/** Extensions the server holds no definition for, and example URLs: policy switches (ValidatorOptions). */
const patient = (ext: Array<Record<string, unknown>>, extra: Record<string, unknown> = {}): unknown => ({
  resourceType: 'Patient',
  extension: ext,
  ...extra,
});
const unknownExt = { url: 'http://hospital.test/fhir/StructureDefinition/ward', valueString: 'B4' };
const errors = (v: ReturnType<typeof validatorWith>, r: unknown): string[] => errorLines(v, r);

describe('unknown extensions', () => {
  const lenient = validatorWith();
  const known = validatorWith([], { extensions: 'known' });

  test('by default an extension without a definition is accepted', () => {
    expect(errors(lenient, patient([unknownExt]))).toEqual([]);
  });

  test("with extensions: 'known' it is an error at the extension, also on a primitive", () => {
    expect(errors(known, patient([unknownExt]))).toEqual([
      expect.stringMatching(/^Patient\.extension\[0\]: .*the extension .*ward is not known/),
    ]);
    const onBirthDate = {
      resourceType: 'Patient',
      birthDate: '1980-01-01',
      _birthDate: { extension: [unknownExt] },
    };
    expect(errors(known, onBirthDate)[0]).toMatch(/^Patient\.birthDate\.extension\[0\]:/);
  });

  test('held definitions, parts of complex extensions, HL7 and cross-version URLs are not unknown', () => {
    const race = {
      url: 'http://hl7.org/fhir/StructureDefinition/patient-birthPlace',
      valueAddress: { city: 'Boston' },
    };
    const hl7Later = {
      url: 'http://hl7.org/fhir/StructureDefinition/organization-brand',
      extension: [{ url: 'brandLogo', valueString: 'x' }],
    };
    const xver = {
      url: 'http://hl7.org/fhir/5.0/StructureDefinition/extension-Patient.gender',
      valueCode: 'x',
    };
    expect(errors(known, patient([race, hl7Later, xver]))).toEqual([]);
  });

  test('allowed domains and (unless examples are refused) example URLs are accepted', () => {
    const domain = validatorWith([], { extensions: 'known', extensionDomains: ['http://hospital.test/'] });
    expect(errors(domain, patient([unknownExt]))).toEqual([]);
    const example = { url: 'http://example.org/fhir/StructureDefinition/x', valueString: 'y' };
    expect(errors(known, patient([example]))).toEqual([]);
    const noExamples = validatorWith([], { extensions: 'known', exampleUrls: false });
    expect(errors(noExamples, patient([example])).length).toBeGreaterThanOrEqual(1);
  });

  test('an unknown modifier extension is an error whatever the policy', () => {
    const r = { resourceType: 'Patient', modifierExtension: [unknownExt] };
    expect(errors(lenient, r)).toHaveLength(1);
  });
});

describe('example URLs', () => {
  const doc = {
    resourceType: 'DocumentReference',
    status: 'current',
    content: [{ attachment: { url: 'http://repository.example.org/fhir/DocumentReference/1' } }],
  };

  test('accepted by default', () => {
    expect(errors(validatorWith(), doc)).toEqual([]);
  });

  test('refused in uri/url/canonical values with exampleUrls: false; other hosts are fine', () => {
    const v = validatorWith([], { exampleUrls: false });
    expect(errors(v, doc)).toEqual([
      expect.stringMatching(
        /^DocumentReference\.content\[0\]\.attachment\.url: .*example URLs are not allowed/,
      ),
    ]);
    const real = { ...doc, content: [{ attachment: { url: 'https://docs.hospital.test/1' } }] };
    expect(errors(v, real)).toEqual([]);
    expect(errors(v, { resourceType: 'Patient', name: [{ text: 'see http://example.org' }] })).toEqual([]);
  });
});

/** An extension definition (differential only) with the given contexts. */
function extensionDef(id: string, contexts: string[]): StructureDefinition {
  const url = `http://hospital.test/fhir/StructureDefinition/${id}`;
  return {
    resourceType: 'StructureDefinition',
    url,
    name: id,
    status: 'active',
    kind: 'complex-type',
    abstract: false,
    context: contexts.map((expression) => ({ type: 'element', expression })),
    type: 'Extension',
    baseDefinition: 'http://hl7.org/fhir/StructureDefinition/Extension',
    derivation: 'constraint',
    differential: {
      element: [
        { id: 'Extension', path: 'Extension' },
        { id: 'Extension.url', path: 'Extension.url', fixedUri: url },
        { id: 'Extension.value[x]', path: 'Extension.value[x]', type: [{ code: 'string' }] },
      ],
    },
  };
}

describe('extension context', () => {
  const v = validatorWith([
    extensionDef('on-quantity', ['Quantity']),
    extensionDef('on-resource', ['Resource']),
    extensionDef('on-contact-name', ['Patient.contact.name']),
  ]);
  const ext = (id: string): Record<string, unknown> => ({
    url: `http://hospital.test/fhir/StructureDefinition/${id}`,
    valueString: 'x',
  });
  const mothers = {
    url: 'http://hl7.org/fhir/StructureDefinition/humanname-mothers-family',
    valueString: 'M',
  };

  test('an element path context: allowed on that element, an error elsewhere', () => {
    const onFamily = { resourceType: 'Patient', name: [{ family: 'F', _family: { extension: [mothers] } }] };
    expect(errors(v, onFamily)).toEqual([]);
    const onName = { resourceType: 'Patient', name: [{ family: 'F', extension: [mothers] }] };
    expect(errors(v, onName)).toEqual([
      expect.stringMatching(
        /^Patient\.name\[0\]\.extension\[0\]: .*humanname-mothers-family is not allowed here/,
      ),
    ]);
    const contact = {
      resourceType: 'Patient',
      contact: [{ name: { text: 'C', extension: [ext('on-contact-name')] } }],
    };
    expect(errors(v, contact)).toEqual([]);
    expect(
      errors(v, { resourceType: 'Patient', name: [{ text: 'P', extension: [ext('on-contact-name')] }] }),
    ).toHaveLength(1);
  });

  test('a type context covers types derived from it (Age is a Quantity), and nothing else', () => {
    const cond = (onset: Record<string, unknown>): unknown => ({
      resourceType: 'Condition',
      subject: { reference: 'Patient/p' },
      onsetAge: onset,
    });
    expect(
      errors(
        v,
        cond({ value: 4, system: 'http://unitsofmeasure.org', code: 'a', extension: [ext('on-quantity')] }),
      ),
    ).toEqual([]);
    expect(
      errors(v, { resourceType: 'Patient', name: [{ text: 'P', extension: [ext('on-quantity')] }] }),
    ).toHaveLength(1);
  });

  test('Resource: on any resource root (contained ones too), not inside one', () => {
    expect(errors(v, { resourceType: 'Patient', extension: [ext('on-resource')] })).toEqual([]);
    const contained = {
      resourceType: 'Observation',
      status: 'final',
      code: { text: 'x' },
      subject: { reference: '#p' },
      contained: [{ resourceType: 'Patient', id: 'p', extension: [ext('on-resource')] }],
    };
    expect(errors(v, contained)).toEqual([]);
    expect(
      errors(v, { resourceType: 'Patient', name: [{ text: 'P', extension: [ext('on-resource')] }] }),
    ).toHaveLength(1);
  });

  test('nested backbone elements (contentReference) answer to the element they repeat', () => {
    const days = {
      url: 'http://hl7.org/fhir/StructureDefinition/timing-daysOfCycle',
      extension: [{ url: 'day', valueInteger: 1 }],
    };
    const pd = {
      resourceType: 'PlanDefinition',
      status: 'draft',
      action: [{ title: 'a', action: [{ title: 'b', action: [{ title: 'c', extension: [days] }] }] }],
    };
    expect(errors(v, pd)).toEqual([]);
  });
});
