import type { Patient } from 'fhir/r4';
import { matches } from './helpers';

const smith: Patient = {
  resourceType: 'Patient',
  name: [{ family: 'Smith', given: ['John', 'Q'], prefix: ['Dr'] }],
  address: [{ line: ['1 Main Street'], city: 'Springfield', postalCode: '01234', country: 'US' }],
};
const muller: Patient = { resourceType: 'Patient', name: [{ family: 'Müller', given: ['Zoë'] }] };

describe('string search', () => {
  it('name=smi matches Smith (starts-with)', async () => {
    expect(await matches(smith, 'name=smi')).toBe(true);
  });
  it('name=SMITH matches Smith (case-insensitive)', async () => {
    expect(await matches(smith, 'name=SMITH')).toBe(true);
  });
  it('name matches a given name too', async () => {
    expect(await matches(smith, 'name=joh')).toBe(true);
  });
  it('name=mit does not match Smith (not a prefix)', async () => {
    expect(await matches(smith, 'name=mit')).toBe(false);
  });
  it('family=muller matches Müller (accents folded)', async () => {
    expect(await matches(muller, 'family=muller')).toBe(true);
  });
  it('given=zoe matches Zoë', async () => {
    expect(await matches(muller, 'given=zoe')).toBe(true);
  });
  it('name:exact=Smith matches Smith', async () => {
    expect(await matches(smith, 'name:exact=Smith')).toBe(true);
  });
  it('name:exact=Smi does not match Smith', async () => {
    expect(await matches(smith, 'name:exact=Smi')).toBe(false);
  });
  it('name:exact=smith does not match Smith (case-sensitive)', async () => {
    expect(await matches(smith, 'name:exact=smith')).toBe(false);
  });
  it('name:contains=mit matches Smith', async () => {
    expect(await matches(smith, 'name:contains=mit')).toBe(true);
  });
  it('address=springf matches the city', async () => {
    expect(await matches(smith, 'address=springf')).toBe(true);
  });
  it('address-postalcode=012 matches 01234', async () => {
    expect(await matches(smith, 'address-postalcode=012')).toBe(true);
  });
  it('name=jones,smith matches either (OR)', async () => {
    expect(await matches(smith, 'name=jones,smith')).toBe(true);
  });
  it('name=smith&name=jones requires both (AND)', async () => {
    expect(await matches(smith, 'name=smith&name=jones')).toBe(false);
  });
  it('regex metacharacters in the value are literal: name=.* matches nothing', async () => {
    expect(await matches(smith, 'name=.*')).toBe(false);
    expect(await matches(smith, 'name:contains=S.*h')).toBe(false);
  });
  it('name:missing=true does not match a named patient', async () => {
    expect(await matches(smith, 'name:missing=true')).toBe(false);
    expect(await matches({ resourceType: 'Patient' }, 'name:missing=true')).toBe(true);
  });
  it('escaped comma is part of the value', async () => {
    const p: Patient = { resourceType: 'Patient', name: [{ text: 'Smith, John' }] };
    expect(await matches(p, 'name=smith\\, jo')).toBe(true);
  });
});
