import type { Observation, Patient, Quantity, Reference } from 'fhir/r4';
import type { Random } from './random';

/**
 * Realistic-looking synthetic resources, shaped like what an EHR sends: Patients with
 * identifiers, names, telecom, addresses; vital-sign Observations per the R4 vital signs profile
 * (http://hl7.org/fhir/R4/observation-vitalsigns.html): LOINC code, UCUM units, category
 * vital-signs, subject and effectiveDateTime.
 */

const GIVEN = [
  'Anna',
  'Ben',
  'Clara',
  'David',
  'Elif',
  'Farid',
  'Greta',
  'Hugo',
  'Ines',
  'Jonas',
  'Kaito',
  'Lena',
];
const FAMILY = ['Müller', 'Schmidt', 'Garcia', 'Nguyen', 'Okafor', 'Rossi', 'Kowalski', 'Yilmaz', 'Dubois'];
const STREETS = ['Hauptstraße', 'Bahnhofstraße', 'Lindenweg', 'Gartenstraße', 'Schulstraße', 'Bergweg'];
const CITIES: ReadonlyArray<readonly [city: string, postalCode: string]> = [
  ['Berlin', '10115'],
  ['Hamburg', '20095'],
  ['München', '80331'],
  ['Köln', '50667'],
  ['Leipzig', '04109'],
];

const LOINC = 'http://loinc.org';
const UCUM = 'http://unitsofmeasure.org';
const MRN_SYSTEM = 'urn:oid:1.2.276.0.76.4.8';

const pad = (n: number, width: number): string => String(n).padStart(width, '0');

function isoDate(random: Random, fromYear: number, toYear: number): string {
  return `${random.int(fromYear, toYear)}-${pad(random.int(1, 12), 2)}-${pad(random.int(1, 28), 2)}`;
}

export function syntheticPatient(random: Random, index: number): Patient {
  const given = random.pick(GIVEN);
  const family = random.pick(FAMILY);
  const [city, postalCode] = random.pick(CITIES);
  return {
    resourceType: 'Patient',
    identifier: [
      {
        use: 'usual',
        type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR' }] },
        system: MRN_SYSTEM,
        value: `MRN-${pad(index, 8)}`,
      },
    ],
    active: true,
    // FHIR JSON forbids empty arrays, so optional elements are left out rather than emptied.
    name: [
      {
        use: 'official',
        family,
        given: [given, random.pick(GIVEN)],
        ...(index % 10 === 0 && { prefix: ['Dr.'] }),
      },
    ],
    telecom: [
      { system: 'phone', value: `+49 30 ${random.int(1_000_000, 9_999_999)}`, use: 'home' },
      { system: 'email', value: `${given}.${family}.${index}@example.org`.toLowerCase(), use: 'home' },
    ],
    gender: random.pick(['male', 'female', 'other', 'unknown'] as const),
    birthDate: isoDate(random, 1930, 2023),
    address: [
      {
        use: 'home',
        line: [`${random.pick(STREETS)} ${random.int(1, 120)}`],
        city,
        postalCode,
        country: 'DE',
      },
    ],
  };
}

interface VitalSign {
  code: string;
  display: string;
  unit: string;
  min: number;
  max: number;
  decimals: number;
}

const VITAL_SIGNS: readonly VitalSign[] = [
  { code: '8867-4', display: 'Heart rate', unit: '/min', min: 45, max: 140, decimals: 0 },
  { code: '9279-1', display: 'Respiratory rate', unit: '/min', min: 10, max: 30, decimals: 0 },
  { code: '8310-5', display: 'Body temperature', unit: 'Cel', min: 35.5, max: 40.5, decimals: 1 },
  { code: '29463-7', display: 'Body weight', unit: 'kg', min: 3, max: 150, decimals: 1 },
  { code: '8302-2', display: 'Body height', unit: 'cm', min: 50, max: 205, decimals: 0 },
  { code: '39156-5', display: 'Body mass index (BMI) [Ratio]', unit: 'kg/m2', min: 15, max: 45, decimals: 1 },
  {
    code: '2708-6',
    display: 'Oxygen saturation in Arterial blood',
    unit: '%',
    min: 85,
    max: 100,
    decimals: 0,
  },
];

function quantity(value: number, unit: string): Quantity {
  return { value, unit, system: UCUM, code: unit };
}

function effectiveDateTime(random: Random): string {
  const hh = pad(random.int(0, 23), 2);
  const mm = pad(random.int(0, 59), 2);
  return `${isoDate(random, 2015, 2025)}T${hh}:${mm}:00+01:00`;
}

/** Mostly single-value vital signs; one in eight is a blood pressure panel with two components. */
export function syntheticVitalSign(random: Random, subject: Reference): Observation {
  const base: Omit<Observation, 'code'> = {
    resourceType: 'Observation',
    status: 'final',
    category: [
      {
        coding: [
          {
            system: 'http://terminology.hl7.org/CodeSystem/observation-category',
            code: 'vital-signs',
            display: 'Vital Signs',
          },
        ],
      },
    ],
    subject,
    effectiveDateTime: effectiveDateTime(random),
  };
  if (random.next() < 0.125) {
    const systolic = random.int(90, 180);
    return {
      ...base,
      code: {
        coding: [
          { system: LOINC, code: '85354-9', display: 'Blood pressure panel with all children optional' },
        ],
        text: 'Blood pressure',
      },
      component: [
        {
          code: { coding: [{ system: LOINC, code: '8480-6', display: 'Systolic blood pressure' }] },
          valueQuantity: quantity(systolic, 'mm[Hg]'),
        },
        {
          code: { coding: [{ system: LOINC, code: '8462-4', display: 'Diastolic blood pressure' }] },
          valueQuantity: quantity(random.int(50, Math.min(110, systolic - 20)), 'mm[Hg]'),
        },
      ],
    };
  }
  const vital = random.pick(VITAL_SIGNS);
  return {
    ...base,
    code: { coding: [{ system: LOINC, code: vital.code, display: vital.display }], text: vital.display },
    valueQuantity: quantity(random.decimal(vital.min, vital.max, vital.decimals), vital.unit),
  };
}

/** A new version of a resource as a client would write it: one field changed. */
export function modified(resource: Patient | Observation, random: Random): Patient | Observation {
  if (resource.resourceType === 'Patient') {
    const phone = {
      system: 'phone',
      value: `+49 40 ${random.int(1_000_000, 9_999_999)}`,
      use: 'mobile',
    } as const;
    return { ...resource, telecom: [phone, ...(resource.telecom ?? []).slice(1)] };
  }
  if (resource.valueQuantity !== undefined) {
    const value = (resource.valueQuantity.value ?? 0) + 1;
    return { ...resource, valueQuantity: { ...resource.valueQuantity, value } };
  }
  return { ...resource, status: 'amended' };
}
