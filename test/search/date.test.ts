import type { Encounter, MedicationRequest, Patient } from 'fhir/r4';
import { matches } from './helpers';

const born = (birthDate: string): Patient => ({ resourceType: 'Patient', birthDate });
const encounter = (start?: string, end?: string): Encounter => ({
  resourceType: 'Encounter',
  status: 'finished',
  class: { code: 'AMB' },
  period: { ...(start ? { start } : {}), ...(end ? { end } : {}) },
});

describe('date search', () => {
  it('birthdate=ge2000 matches a 2001 birthDate', async () => {
    expect(await matches(born('2001-03-04'), 'birthdate=ge2000')).toBe(true);
  });
  it('birthdate=ge2000 matches a birthDate within 2000', async () => {
    expect(await matches(born('2000-07-01'), 'birthdate=ge2000')).toBe(true);
  });
  it('birthdate=ge2000 does not match 1999', async () => {
    expect(await matches(born('1999-12-31'), 'birthdate=ge2000')).toBe(false);
  });
  it('birthdate=2000 matches any day of 2000 (eq: the search range contains the value)', async () => {
    expect(await matches(born('2000-12-31'), 'birthdate=2000')).toBe(true);
    expect(await matches(born('2001-01-01'), 'birthdate=2000')).toBe(false);
  });
  it('birthdate=2000-06-15 does not match a birthDate of only 2000 (eq needs containment)', async () => {
    expect(await matches(born('2000'), 'birthdate=2000-06-15')).toBe(false);
  });
  it('birthdate=ne2000 matches 2001 but not 2000-05', async () => {
    expect(await matches(born('2001-01-01'), 'birthdate=ne2000')).toBe(true);
    expect(await matches(born('2000-05'), 'birthdate=ne2000')).toBe(false);
  });
  it('birthdate=gt2000-01-01 matches 2000-01-02 but not 2000-01-01', async () => {
    expect(await matches(born('2000-01-02'), 'birthdate=gt2000-01-01')).toBe(true);
    expect(await matches(born('2000-01-01'), 'birthdate=gt2000-01-01')).toBe(false);
  });
  it('birthdate=lt2000 matches 1999-12-31', async () => {
    expect(await matches(born('1999-12-31'), 'birthdate=lt2000')).toBe(true);
    expect(await matches(born('2000-01-01'), 'birthdate=lt2000')).toBe(false);
  });
  it('birthdate=le2000 matches 2000-12-31', async () => {
    expect(await matches(born('2000-12-31'), 'birthdate=le2000')).toBe(true);
    expect(await matches(born('2001-01-01'), 'birthdate=le2000')).toBe(false);
  });
  it('date=2020-01 matches a Period covering part of January only if contained (eq)', async () => {
    expect(await matches(encounter('2020-01-05', '2020-01-09'), 'date=2020-01')).toBe(true);
    expect(await matches(encounter('2019-12-30', '2020-01-09'), 'date=2020-01')).toBe(false);
  });
  it('date=2020-01 matches a Period covering January', async () => {
    expect(await matches(encounter('2020-01-01', '2020-01-31'), 'date=2020-01')).toBe(true);
    expect(await matches(encounter('2020-01-01T00:00:00Z', '2020-01-31T23:59:59Z'), 'date=2020-01')).toBe(
      true,
    );
  });
  it('date=2020-01 does not match a Period reaching into February (eq needs containment)', async () => {
    expect(await matches(encounter('2020-01-01', '2020-02-01'), 'date=2020-01')).toBe(false);
  });
  it('date=ge2020-01 matches a Period still running after January', async () => {
    expect(await matches(encounter('2019-12-30', '2020-03-01'), 'date=ge2020-01')).toBe(true);
  });
  it('an open-ended Period matches date=gt2030 (it has not ended)', async () => {
    expect(await matches(encounter('2020-01-01'), 'date=gt2030')).toBe(true);
  });
  it('a Period without start matches date=lt1900', async () => {
    expect(await matches(encounter(undefined, '2020-01-01'), 'date=lt1900')).toBe(true);
  });
  it('date=sa2020-02 matches a Period starting after February', async () => {
    expect(await matches(encounter('2020-03-01', '2020-03-02'), 'date=sa2020-02')).toBe(true);
    expect(await matches(encounter('2020-02-20', '2020-03-02'), 'date=sa2020-02')).toBe(false);
  });
  it('date=eb2020-02 matches a Period ending before February', async () => {
    expect(await matches(encounter('2020-01-01', '2020-01-31'), 'date=eb2020-02')).toBe(true);
    expect(await matches(encounter('2020-01-01', '2020-02-01'), 'date=eb2020-02')).toBe(false);
  });
  it('birthdate=ap2020-01-01 matches a nearby date (within 10% of the distance to now)', async () => {
    expect(await matches(born('2020-02-01'), 'birthdate=ap2020-01-01')).toBe(true);
    expect(await matches(born('2022-01-01'), 'birthdate=ap2020-01-01')).toBe(false);
  });
  it('dateTimes with time zones compare as instants', async () => {
    const e = encounter('2020-01-01T23:30:00-05:00', '2020-01-02T00:30:00-05:00');
    expect(await matches(e, 'date=2020-01-02')).toBe(true);
    expect(await matches(e, 'date=ge2020-01-02T04:00:00Z')).toBe(true);
  });
  it('a Timing event matches (MedicationRequest authoredon is a dateTime; Timing via dosageInstruction)', async () => {
    const mr: MedicationRequest = {
      resourceType: 'MedicationRequest',
      status: 'active',
      intent: 'order',
      subject: { reference: 'Patient/p1' },
      medicationCodeableConcept: { text: 'x' },
      authoredOn: '2021-05-05T10:00:00Z',
    };
    expect(await matches(mr, 'authoredon=2021-05')).toBe(true);
  });
  it('a time zone whose + arrived unencoded (as a space) still parses', async () => {
    const e = encounter('2020-01-02T10:00:00+05:00', '2020-01-02T11:00:00+05:00');
    expect(await matches(e, 'date=ge2020-01-02T10:00:00+05:00')).toBe(true);
    expect(await matches(e, 'date=gt2020-01-02T11:00:00+05:00')).toBe(false);
  });
  it('an invalid date is a 400', async () => {
    await expect(matches(born('2000'), 'birthdate=yesterday')).rejects.toThrow(/Invalid date/);
  });
  it('_lastUpdated=ge2024-05-01 matches the lastUpdated of the document', async () => {
    expect(await matches(born('2000'), '_lastUpdated=ge2024-05-01')).toBe(true);
    expect(await matches(born('2000'), '_lastUpdated=gt2024-05-01')).toBe(false);
    expect(await matches(born('2000'), '_lastUpdated=2024-05')).toBe(true);
  });
  it('birthdate:missing=true matches a patient without birthDate', async () => {
    expect(await matches({ resourceType: 'Patient' }, 'birthdate:missing=true')).toBe(true);
    expect(await matches(born('2000'), 'birthdate:missing=true')).toBe(false);
  });
});
