import type { Observation, RiskAssessment } from 'fhir/r4';
import { matches } from './helpers';

const risk = (probability: number): RiskAssessment => ({
  resourceType: 'RiskAssessment',
  status: 'final',
  subject: { reference: 'Patient/p1' },
  prediction: [{ probabilityDecimal: probability }],
});
const weight = (value: number, code: string, unit = code): Observation => ({
  resourceType: 'Observation',
  status: 'final',
  code: { coding: [{ system: 'http://loinc.org', code: '29463-7' }] },
  valueQuantity: { value, unit, system: 'http://unitsofmeasure.org', code },
});

describe('number search', () => {
  it('probability=0.8 matches 0.8', async () => {
    expect(await matches(risk(0.8), 'probability=0.8')).toBe(true);
  });
  it('probability=0.8 matches 0.84 (within the precision of the search value)', async () => {
    expect(await matches(risk(0.84), 'probability=0.8')).toBe(true);
    expect(await matches(risk(0.86), 'probability=0.8')).toBe(false);
  });
  it('probability=0.80 does not match 0.84 (more significant digits)', async () => {
    expect(await matches(risk(0.84), 'probability=0.80')).toBe(false);
  });
  it('probability=gt0.5 matches 0.8 and not 0.5', async () => {
    expect(await matches(risk(0.8), 'probability=gt0.5')).toBe(true);
    expect(await matches(risk(0.5), 'probability=gt0.5')).toBe(false);
  });
  it('probability=le0.5 matches 0.5', async () => {
    expect(await matches(risk(0.5), 'probability=le0.5')).toBe(true);
  });
  it('probability=ne0.5 matches 0.8', async () => {
    expect(await matches(risk(0.8), 'probability=ne0.5')).toBe(true);
    expect(await matches(risk(0.5), 'probability=ne0.5')).toBe(false);
  });
  it('probability=ap0.5 matches 0.53 (within 10%)', async () => {
    expect(await matches(risk(0.53), 'probability=ap0.5')).toBe(true);
    expect(await matches(risk(0.6), 'probability=ap0.5')).toBe(false);
  });
  it('an invalid number is a 400', async () => {
    await expect(matches(risk(0.5), 'probability=abc')).rejects.toThrow(/Invalid number/);
  });
});

describe('quantity search', () => {
  it('value-quantity=70 matches 70 kg (any unit)', async () => {
    expect(await matches(weight(70, 'kg'), 'value-quantity=70')).toBe(true);
  });
  it('value-quantity=70|http://unitsofmeasure.org|kg matches', async () => {
    expect(await matches(weight(70, 'kg'), 'value-quantity=70|http://unitsofmeasure.org|kg')).toBe(true);
  });
  it('value-quantity=70||kg matches by code or unit without a system', async () => {
    expect(await matches(weight(70, 'kg', 'kilogram'), 'value-quantity=70||kilogram')).toBe(true);
  });
  it('value-quantity=gt60|http://unitsofmeasure.org|kg matches 70 kg', async () => {
    expect(await matches(weight(70, 'kg'), 'value-quantity=gt60|http://unitsofmeasure.org|kg')).toBe(true);
    expect(await matches(weight(50, 'kg'), 'value-quantity=gt60|http://unitsofmeasure.org|kg')).toBe(false);
  });
  it('UCUM conversion: value-quantity=70000|http://unitsofmeasure.org|g matches 70 kg', async () => {
    expect(await matches(weight(70, 'kg'), 'value-quantity=70000|http://unitsofmeasure.org|g')).toBe(true);
  });
  it('UCUM conversion: lt in pounds compares with kilograms', async () => {
    // 70 kg = 154.3 [lb_av]
    expect(await matches(weight(70, 'kg'), 'value-quantity=lt160|http://unitsofmeasure.org|[lb_av]')).toBe(
      true,
    );
    expect(await matches(weight(70, 'kg'), 'value-quantity=lt150|http://unitsofmeasure.org|[lb_av]')).toBe(
      false,
    );
  });
  it('UCUM conversion: mg/dL and g/L', async () => {
    const glucose = weight(100, 'mg/dL');
    expect(await matches(glucose, 'value-quantity=1|http://unitsofmeasure.org|g/L')).toBe(true);
  });
  it('a different unit does not match', async () => {
    expect(await matches(weight(70, 'kg'), 'value-quantity=70|http://unitsofmeasure.org|m')).toBe(false);
  });
  it('value-quantity=ne70 matches 71', async () => {
    expect(await matches(weight(71, 'kg'), 'value-quantity=ne70')).toBe(true);
    expect(await matches(weight(70, 'kg'), 'value-quantity=ne70')).toBe(false);
  });
  it('value-quantity:missing=true matches an Observation without a value', async () => {
    const o: Observation = { resourceType: 'Observation', status: 'final', code: { text: 'x' } };
    expect(await matches(o, 'value-quantity:missing=true')).toBe(true);
  });
});
