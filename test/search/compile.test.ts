import type { Patient } from 'fhir/r4';
import { Query } from 'mingo';
import { compileQuery, docOf, search } from './helpers';

const patient = (id: string, family: string, birthDate?: string, given = 'A'): Patient => ({
  resourceType: 'Patient',
  id,
  name: [{ family, given: [given] }],
  ...(birthDate ? { birthDate } : {}),
});

describe('compileSearch', () => {
  it('the filter always excludes deleted documents', async () => {
    const { filter } = await compileQuery('Patient', 'name=smith');
    const doc = { ...docOf(patient('x', 'Smith')), deleted: true };
    expect(new Query(filter).test(doc as unknown as Record<string, unknown>)).toBe(false);
    expect(JSON.stringify(filter)).toContain('"deleted":false');
  });
  it('an empty search still filters deleted documents and sorts by _id', async () => {
    expect(await compileQuery('Patient', '')).toEqual({ filter: { deleted: false }, sort: { _id: 1 } });
  });
  it('sort always ends with _id as a unique tiebreaker', async () => {
    const { sort } = await compileQuery('Patient', '_sort=-birthdate');
    expect(Object.keys(sort)).toEqual(['idx._sort.birthdate.d', '_id']);
  });
  it('_sort=_lastUpdated sorts by the lastUpdated field', async () => {
    expect((await compileQuery('Patient', '_sort=-_lastUpdated')).sort).toEqual({ lastUpdated: -1, _id: 1 });
  });
  it('_sort=family orders by family name, ties by id', async () => {
    const docs = [patient('3', 'Brown'), patient('1', 'Adams'), patient('2', 'Brown')].map((p) => docOf(p));
    expect(await search('Patient', '_sort=family', docs)).toEqual(['1', '2', '3']);
  });
  it('_sort=-birthdate orders latest first; missing values last', async () => {
    const docs = [patient('a', 'X', '1990'), patient('b', 'X'), patient('c', 'X', '2001-05-02')].map((p) =>
      docOf(p),
    );
    expect(await search('Patient', '_sort=-birthdate', docs)).toEqual(['c', 'a', 'b']);
  });
  it('_sort=birthdate orders earliest first', async () => {
    const docs = [patient('a', 'X', '1990'), patient('c', 'X', '2001-05-02')].map((p) => docOf(p));
    expect(await search('Patient', '_sort=birthdate', docs)).toEqual(['a', 'c']);
  });
  it('_sort on a multi-valued string uses the least value ascending', async () => {
    const docs = [patient('a', 'Zed', undefined, 'Bob'), patient('b', 'Cat', undefined, 'Dan')].map((p) =>
      docOf(p),
    );
    // a: name parts {zed, bob} -> least 'bob'; b: {cat, dan} -> 'cat'
    expect(await search('Patient', '_sort=name', docs)).toEqual(['a', 'b']);
  });
  it('user values never become operators: a "$where" value stays a string', async () => {
    const { filter } = await compileQuery('Patient', 'name=$where&gender=$ne&_id=$gt');
    const walk = (v: unknown, key: string): void => {
      if (Array.isArray(v)) v.forEach((x) => walk(x, key));
      else if (typeof v === 'object' && v !== null) {
        for (const [k, x] of Object.entries(v)) {
          expect(k === '$where' || k === '$expr' || k === '$function').toBe(false);
          walk(x, k);
        }
      }
    };
    walk(filter, '');
    expect(JSON.stringify(filter)).toContain('"idx.gender.c":"$ne"');
    expect(JSON.stringify(filter)).toContain('"_id":"$gt"');
    expect(JSON.stringify(filter)).toContain('"$regex":"^\\\\$where"');
  });
  it('regex input is escaped: name=(a+)+ is matched literally', async () => {
    const docs = [docOf(patient('a', '(a+)+b')), docOf(patient('b', 'aaab', undefined, 'Z'))];
    expect(await search('Patient', `name=${encodeURIComponent('(a+)+')}`, docs)).toEqual(['a']);
  });
  it('every regex metacharacter is matched literally (and the pattern is valid in Unicode mode)', async () => {
    const name = 'a.b*c+d?e^f$g{h}i(j)k|l[m]n\\o/p-q';
    const docs = [docOf(patient('m', name)), docOf(patient('n', 'aXb', undefined, 'Z'))];
    expect(await search('Patient', `name:exact=${encodeURIComponent(name)}`, docs)).toEqual(['m']);
    expect(await search('Patient', `name:contains=${encodeURIComponent('(j)k|l[m]')}`, docs)).toEqual(['m']);
    const { filter } = await compileQuery('Patient', `name=${encodeURIComponent(name)}`);
    const pattern = JSON.stringify(filter).match(/"\$regex":("(?:[^"\\]|\\.)*")/)?.[1] ?? '""';
    expect(() => new RegExp(JSON.parse(pattern) as string, 'u')).not.toThrow();
  });
  it('_text matches words of the narrative', async () => {
    const p: Patient = {
      resourceType: 'Patient',
      id: 't',
      text: {
        status: 'generated',
        div: '<div xmlns="http://www.w3.org/1999/xhtml">Patient has <b>diabetes</b></div>',
      },
    };
    const docs = [docOf(p)];
    expect(await search('Patient', '_text=diab', docs)).toEqual(['t']);
    expect(await search('Patient', '_text=cancer', docs)).toEqual([]);
  });
  it('_content matches words of any string in the resource', async () => {
    const docs = [docOf(patient('c', 'Smithers'))];
    expect(await search('Patient', '_content=smithers', docs)).toEqual(['c']);
  });
  it('a chain with no matching targets matches nothing', async () => {
    const { filter } = await compileQuery('Observation', 'subject:Patient.name=nobody');
    expect(JSON.stringify(filter)).toContain('{"_id":{"$in":[]}}');
  });
});
