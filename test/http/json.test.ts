import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { FhirError } from '../../src/fhir/errors';
import { parseJsonBody } from '../../src/http/json';

const parse = (text: string | Buffer, maxDepth = 64): unknown =>
  parseJsonBody(typeof text === 'string' ? Buffer.from(text, 'utf8') : text, { maxDepth });

/** The FhirError thrown by parsing `text`; fails the test if parsing succeeds. */
function rejection(text: string | Buffer, maxDepth = 64): FhirError {
  try {
    parse(text, maxDepth);
  } catch (e) {
    if (e instanceof FhirError) return e;
    throw e;
  }
  throw new Error(`expected a rejection of ${String(text)}`);
}

function expectBadRequest(text: string | Buffer, message: RegExp, maxDepth = 64): void {
  const e = rejection(text, maxDepth);
  expect(e.status).toBe(400);
  expect(e.issues[0]?.diagnostics).toMatch(message);
}

describe('parseJsonBody: valid documents equal JSON.parse', () => {
  const documents = [
    '{}',
    '[]',
    '0',
    '-0',
    '"x"',
    'true',
    'false',
    'null',
    ' \t\r\n{ "a" : [ 1 , -2.5e+3 , 0.5E-2 , 1E2 , true , false , null , "" ] } \n',
    '{"resourceType":"Patient","name":[{"family":"Chalmers","given":["Peter","James"]}],"active":true}',
    '{"s":"quote \\" backslash \\\\ slash \\/ \\b\\f\\n\\r\\t \\u00e9 \\u20AC \\ud83d\\ude00"}',
    '{"caf\\u00e9":1,"café2":2,"\\"":3}',
    '{"a":{"a":{"a":[]}},"b":[[[{}]]]}',
    '"é€😀 raw multi-byte"',
    '123456789012345678901234567890',
    '{"big":{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":10,"k11":11,"k12":12,"k13":13,"k14":14,"k15":15,"k16":16,"k17":17,"k18":18,"k19":19}}',
  ];
  it.each(documents)('%s', (text) => {
    expect(parse(text)).toEqual(JSON.parse(text));
  });

  it('produces plain objects with Object.prototype', () => {
    const value = parse('{"a":{"b":1}}') as { a: object };
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(Object.getPrototypeOf(value.a)).toBe(Object.prototype);
  });

  it('drops a leading UTF-8 byte order mark', () => {
    const body = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"a":1}')]);
    expect(parse(body)).toEqual({ a: 1 });
  });

  it('accepts the same name in different objects and at different levels', () => {
    expect(parse('{"a":{"a":1},"b":{"a":2},"c":[{"a":3},{"a":4}]}')).toEqual({
      a: { a: 1 },
      b: { a: 2 },
      c: [{ a: 3 }, { a: 4 }],
    });
  });

  it('accepts nesting exactly maxDepth deep', () => {
    expect(parse('[[[1]]]', 3)).toEqual([[[1]]]);
    expect(parse('{"a":{"b":{}}}', 3)).toEqual({ a: { b: {} } });
  });
});

describe('parseJsonBody: encoding', () => {
  it('rejects invalid UTF-8', () => {
    expectBadRequest(Buffer.from([0x7b, 0xff, 0x7d]), /^Request body is not valid UTF-8$/);
  });

  it('rejects an overlong UTF-8 encoding', () => {
    expectBadRequest(Buffer.from([0x22, 0xc0, 0xaf, 0x22]), /not valid UTF-8/);
  });

  it('rejects UTF-8 encoded surrogates (CESU-8)', () => {
    expectBadRequest(Buffer.from([0x22, 0xed, 0xa0, 0x80, 0x22]), /not valid UTF-8/);
  });

  it('rejects a BOM in the middle of the body as an unexpected character', () => {
    expectBadRequest(Buffer.from('{"a":1}\ufeff', 'utf8'), /unexpected character/);
  });
});

describe('parseJsonBody: RFC 8259 syntax', () => {
  it.each([
    ['{"a":1,}', /unexpected character "}", expected a member name string at 1:8/],
    ['[1,]', /unexpected character "]", expected a value at 1:4/],
    ['[1 2]', /expected ',' or '\]' at 1:4/],
    ['{"a" 1}', /expected ':' at 1:6/],
    ["{'a':1}", /expected a member name string at 1:2/],
    ['{a:1}', /expected a member name string/],
    ['', /unexpected end of input, expected a value at 1:1/],
    ['   ', /unexpected end of input/],
    ['[1', /unexpected end of input, expected ',' or '\]'/],
    ['{"a":1', /unexpected end of input/],
    ['{"a":1}}', /expected end of input at 1:8/],
    ['{} {}', /expected end of input at 1:4/],
    ['"abc', /unterminated string/],
    ['"abc\\', /unterminated string/],
    ['tru', /expected a value/],
    ['True', /expected a value/],
    ['nul', /expected a value/],
    ['NaN', /expected a value/],
    ['Infinity', /expected a value/],
    ['undefined', /expected a value/],
    ['// comment\n{}', /unexpected character "\/"/],
    ['{/* c */}', /unexpected character "\/"/],
    ['{"a":1}// c', /expected end of input/],
  ])('rejects %j', (text, message) => {
    expectBadRequest(text, message);
  });

  it.each([
    ['01', /leading zero in number at 1:1/],
    ['-01', /leading zero in number/],
    ['[00]', /leading zero in number at 1:2/],
    ['1.', /digit expected after decimal point at 1:3/],
    ['.5', /expected a value/],
    ['-', /digit expected in number at 1:2/],
    ['-a', /digit expected in number/],
    ['+1', /expected a value/],
    ['1e', /digit expected in exponent at 1:3/],
    ['1e+', /digit expected in exponent/],
    ['1.5e-', /digit expected in exponent/],
    ['0x10', /expected end of input/],
    ['1e400', /number out of range/],
    ['-1e400', /number out of range/],
  ])('rejects the number %j', (text, message) => {
    expectBadRequest(text, message);
  });

  it('keeps numbers as JS numbers (tiny exponents underflow to 0, as in JSON.parse)', () => {
    expect(parse('[1e-400, 1.5, -0.0, 1E+2]')).toEqual([0, 1.5, -0, 100]);
  });

  it.each([
    ['\u00a0{}', 'U+00A0 no-break space'],
    ['\u000b{}', 'vertical tab'],
    ['\u000c{}', 'form feed'],
    ['{}\u2028', 'line separator'],
  ])('rejects whitespace other than the four JSON characters: %j (%s)', (text) => {
    expectBadRequest(text, /unexpected character/);
  });

  it.each([
    ['"\u0000"', 'U\\+0000'],
    ['"a\tb"', 'U\\+0009'],
    ['"a\nb"', 'U\\+000A'],
    ['"\u001f"', 'U\\+001F'],
  ])('rejects a raw control character in a string: %j', (text, code) => {
    expectBadRequest(text, new RegExp(`control character ${code} in string`));
  });

  it('accepts DEL (U+007F) unescaped, as RFC 8259 does', () => {
    expect(parse('"\u007f"')).toBe('\u007f');
  });

  it.each([
    ['"\\x41"', /invalid escape sequence at 1:2/],
    ['"\\a"', /invalid escape sequence/],
    ['"\\\'"', /invalid escape sequence/],
    ['"\\u12"', /invalid \\u escape/],
    ['"\\u12G4"', /invalid \\u escape/],
    ['"\\U0041"', /invalid escape sequence/],
  ])('rejects the bad escape %j', (text, message) => {
    expectBadRequest(text, message);
  });

  it('reports line and column of the error', () => {
    expectBadRequest('{\n  "a": 1,\n  "b": [1, 2,]\n}', /at 3:14$/);
  });

  it('counts columns in code points, not UTF-16 units', () => {
    expectBadRequest('["😀", x]', /at 1:7$/);
  });
});

describe('parseJsonBody: surrogate escapes', () => {
  // Decision (documented in src/http/json.ts): paired escapes are accepted, lone ones rejected, because a
  // lone surrogate cannot be stored or sent as UTF-8 without silently becoming U+FFFD.
  it('accepts a surrogate pair', () => {
    expect(parse('"\\uD83D\\uDE00"')).toBe('😀');
  });

  it.each([
    ['"\\ud800"', /lone high surrogate escape/],
    ['"\\ud800x"', /lone high surrogate escape/],
    ['"\\ud800\\u0041"', /lone high surrogate escape/],
    ['"\\ud800\\ud800"', /lone high surrogate escape/],
    ['"\\udc00"', /lone low surrogate escape/],
    ['"\\ude00\\ud83d"', /lone low surrogate escape/],
    ['{"\\ud800":1}', /lone high surrogate escape/],
  ])('rejects %j', (text, message) => {
    expectBadRequest(text, message);
  });
});

describe('parseJsonBody: duplicate member names', () => {
  it('rejects a duplicate at the top level', () => {
    expectBadRequest('{"x":1,"x":2}', /^Invalid JSON: Duplicate key "x" at 1:8$/);
  });

  it('rejects a duplicate in a nested object', () => {
    expectBadRequest('{"a":[{"b":{"c":1,"d":2,"c":3}}]}', /Duplicate key "c" at 1:25/);
  });

  it('rejects a duplicate written with an escape', () => {
    expectBadRequest('{"a":1,"\\u0061":2}', /Duplicate key "a"/);
  });

  it('rejects a duplicate after the object has many members', () => {
    const members = Array.from({ length: 40 }, (_, k) => `"k${k}":${k}`).join(',');
    expectBadRequest(`{${members},"k3":0}`, /Duplicate key "k3"/);
    expect(parse(`{${members},"k40":0}`)).toEqual(JSON.parse(`{${members},"k40":0}`));
  });

  it('forgets the names of a closed object', () => {
    expect(parse('{"a":{"x":1,"y":2},"x":3,"y":{"x":4}}')).toEqual({ a: { x: 1, y: 2 }, x: 3, y: { x: 4 } });
  });
});

describe('parseJsonBody: forbidden member names', () => {
  it.each(['__proto__', 'constructor', 'prototype', '$where', '$set', '$'])('rejects "%s"', (name) => {
    expectBadRequest(`{"ok":{"${name}":{}}}`, /member name .* is not allowed at 1:8/);
  });

  it('rejects a forbidden name hidden behind escapes', () => {
    expectBadRequest('{"\\u005f_proto__":{"polluted":true}}', /member name "__proto__" is not allowed/);
    expectBadRequest('{"\\u0024where":1}', /member name "\$where" is not allowed/);
  });

  it('leaves Object.prototype untouched', () => {
    expect(() => parse('{"__proto__":{"polluted":true}}')).toThrow(FhirError);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });

  it('allows these words as values and names that merely contain them', () => {
    expect(parse('{"a$":"__proto__","my_constructor":"$x","prototypes":1}')).toEqual({
      a$: '__proto__',
      my_constructor: '$x',
      prototypes: 1,
    });
  });
});

describe('parseJsonBody: nesting depth', () => {
  it('rejects nesting deeper than maxDepth', () => {
    expectBadRequest('[[[[1]]]]', /nesting deeper than 3 levels at 1:4/, 3);
    expectBadRequest('{"a":{"b":{"c":{}}}}', /nesting deeper than 3 levels/, 3);
  });

  it('gives a clean error, not a stack overflow, for 10,000 nested arrays', () => {
    const deep = '['.repeat(10_000) + ']'.repeat(10_000);
    expectBadRequest(deep, /nesting deeper than 100 levels at 1:101/, 100);
  });

  it('parses 10,000 nested arrays when maxDepth allows them', () => {
    let value = parse('['.repeat(10_000) + ']'.repeat(10_000), 10_000);
    let depth = 0;
    while (Array.isArray(value)) {
      depth++;
      value = value[0];
    }
    expect(depth).toBe(10_000);
  });

  it('validates maxDepth', () => {
    expect(() => parseJsonBody(Buffer.from('1'), { maxDepth: -1 })).toThrow(RangeError);
    expect(parseJsonBody(Buffer.from('1'), { maxDepth: 0 })).toBe(1);
  });
});

const dataDir = process.env['FHIR_TEST_DATA'] ?? join(__dirname, '../../../shared/data');
const synthea = join(dataDir, 'synthea-blaze');

describe('parseJsonBody: real Synthea Bundles', () => {
  const present = existsSync(synthea);
  if (!present) console.log(`Skipping Synthea parse test: ${synthea} not found (set FHIR_TEST_DATA)`);
  (present ? it : it.skip)('parses every Bundle exactly as JSON.parse does', () => {
    const files = readdirSync(synthea).filter((f) => f.endsWith('.json.gz'));
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      const body = gunzipSync(readFileSync(join(synthea, f)));
      // isDeepStrictEqual: jest's toEqual takes tens of seconds on 216 MB of JSON.
      const same = isDeepStrictEqual(
        parseJsonBody(body, { maxDepth: 100 }),
        JSON.parse(body.toString('utf8')),
      );
      expect({ file: f, same }).toEqual({ file: f, same: true });
    }
  });
});
