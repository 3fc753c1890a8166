import { loadDefinitions } from '../src/fhir/definitions';
import { IndexExtractor } from '../src/search/extract';
import { Random } from '../bench/lib/random';
import { syntheticPatient, syntheticVitalSign } from '../bench/lib/synthetic';
const { registry } = loadDefinitions();
const ex = new IndexExtractor(registry);
const r = new Random(1);
for (const res of [syntheticPatient(r, 1), syntheticVitalSign(r, { reference: 'Patient/abc' })]) {
  const idx = ex.extract({ ...res, id: 'x', meta: { versionId: '1', lastUpdated: new Date().toISOString() } } as never) as Record<string, unknown>;
  const { _sort, _content, _text, ...rest } = idx;
  console.log(res.resourceType, 'resource', JSON.stringify(res).length, 'idx', JSON.stringify(idx).length, 'params', JSON.stringify(rest).length, '_sort', JSON.stringify(_sort).length, '_content', JSON.stringify(_content ?? []).length, '_text', JSON.stringify(_text ?? []).length);
  console.log(JSON.stringify(_sort).slice(0, 600));
}
