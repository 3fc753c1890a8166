import fs from 'node:fs';
import path from 'node:path';
import type { FhirResource } from 'fhir/r4';
import { DefinitionsRegistry, loadCoreResources } from '../../src/fhir/definitions';
import { InstanceValidator, type ValidatorOptions } from '../../src/validation/validator';

/**
 * Runner for the R4 cases of the FHIR validator test suite (FHIR/fhir-test-cases validator/,
 * copied to ../shared/data). Selection: JSON instances whose supporting files are JSON, with a
 * Java outcome, `use-test` not false, no IG packages, and not in the modules that need a
 * terminology server or parts this server does not implement (see SKIPPED_MODULES).
 */
export const TEST_CASES_DIR = path.resolve(
  process.env.FHIR_TEST_DATA ?? path.join(__dirname, '../../../shared/data'),
  'fhir-test-cases/validator',
);

/** tx needs a terminology server (SNOMED, LOINC, UCUM...); questionnaire/measure validate against
 * other resources; xhtml checks narrative HTML; xver is cross-version extensions; security is
 * active-content scanning; api/scoring/versions/fmt exercise validator APIs, not instance rules. */
export const SKIPPED_MODULES = new Set([
  'tx',
  'tx-advanced',
  'questionnaire',
  'measure',
  'xhtml',
  'xver',
  'security',
  'api',
  'scoring',
  'versions',
  'fmt',
]);

interface ManifestCase {
  name: string;
  file: string;
  module?: string;
  java?: string;
  supporting?: string[];
  profiles?: string[];
  packages?: string[];
  'use-test'?: boolean;
  profile?: { source: string; java?: string; supporting?: string[] };
  /** R5 supporting files (the Java harness loads them for R4 cases too). */
  supporting5?: string[];
  examples?: boolean;
  'allowed-extension-domain'?: string;
  'allowed-extension-domains'?: string[];
}

/**
 * The validator's policy switches set as the reference validator's test harness sets them: unknown
 * extensions are errors (its default), except in the case's allowed extension domains; example URLs
 * are accepted unless the case says `examples: false`. The server's own defaults are more lenient
 * (unknown extensions accepted, see README); these are switches, not per-case answers.
 */
export function harnessOptions(t: ManifestCase): ValidatorOptions {
  return {
    extensions: 'known',
    extensionDomains: [
      ...(t['allowed-extension-domain'] ? [t['allowed-extension-domain']] : []),
      ...(t['allowed-extension-domains'] ?? []),
      ...unreadableDefinitions(t),
    ],
    exampleUrls: t.examples !== false,
  };
}

interface SummaryCase {
  name: string;
  expected: { error?: number } | null;
  profile: { expected: { error?: number } | null } | null;
}

export interface CaseResult {
  name: string;
  step: 'base' | 'profile';
  expectedValid: boolean;
  actualValid: boolean;
  errors: string[];
}

function readJson(file: string): unknown {
  return JSON.parse(fs.readFileSync(file, 'utf8').replace(/^\uFEFF/, ''));
}

export function selectedCases(): ManifestCase[] {
  const manifest = readJson(path.join(TEST_CASES_DIR, 'manifest-r4.json')) as {
    'test-cases': ManifestCase[];
  };
  const exists = (f: string): boolean => fs.existsSync(path.join(TEST_CASES_DIR, f));
  return manifest['test-cases'].filter(
    (t) =>
      t.file.endsWith('.json') &&
      exists(t.file) &&
      t.java !== undefined &&
      t['use-test'] !== false &&
      !t.packages &&
      !SKIPPED_MODULES.has(t.module ?? '') &&
      [...(t.supporting ?? []), ...(t.profiles ?? []), ...(t.profile?.supporting ?? [])].every(
        (f) => f.endsWith('.json') && exists(f),
      ) &&
      (!t.profile || (t.profile.source.endsWith('.json') && exists(t.profile.source))),
  );
}

/**
 * The canonical URLs of a case's XML supporting files (`supporting5`): this runner cannot load
 * XML, so an extension such a file defines is not reported as unknown (nothing else is taken from it).
 */
function unreadableDefinitions(t: ManifestCase): string[] {
  return (t.supporting5 ?? [])
    .filter((f) => f.endsWith('.xml') && fs.existsSync(path.join(TEST_CASES_DIR, f)))
    .flatMap((f) => {
      const m = /<url\s+value="([^"]+)"/.exec(fs.readFileSync(path.join(TEST_CASES_DIR, f), 'utf8'));
      return m?.[1] ? [m[1]] : [];
    });
}

let core: FhirResource[] | undefined;

/** The resources in supporting files (Bundles unpacked). */
function conformance(files: string[]): FhirResource[] {
  const out: FhirResource[] = [];
  for (const f of files) {
    const r = readJson(path.join(TEST_CASES_DIR, f)) as FhirResource;
    if (r.resourceType === 'Bundle') {
      for (const e of r.entry ?? []) if (e.resource) out.push(e.resource as FhirResource);
    } else out.push(r);
  }
  return out;
}

/** Runs the selected cases; valid = no error or fatal issue, compared with the Java validator's outcome. */
export function runCases(cases: ManifestCase[]): CaseResult[] {
  core ??= loadCoreResources();
  const summary = readJson(path.join(TEST_CASES_DIR, 'r4-expected-summary.json')) as { tests: SummaryCase[] };
  const expectedByName = new Map(summary.tests.map((t) => [t.name, t]));
  const out: CaseResult[] = [];
  for (const t of cases) {
    const expected = expectedByName.get(t.name);
    if (typeof expected?.expected?.error !== 'number') continue;
    // As the reference validator is set up: the base step sees `supporting`/`profiles`; the
    // profile step also sees the profile and its own supporting files.
    const baseFiles = [...(t.supporting ?? []), ...(t.profiles ?? [])];
    const options = harnessOptions(t);
    const validator = new InstanceValidator(
      new DefinitionsRegistry([...core, ...conformance(baseFiles)]),
      options,
    );
    let instance: unknown;
    try {
      instance = readJson(path.join(TEST_CASES_DIR, t.file));
    } catch {
      out.push({
        name: t.name,
        step: 'base',
        expectedValid: expected.expected.error === 0,
        actualValid: false,
        errors: ['unparseable JSON'],
      });
      continue;
    }
    const base = validator.validate(instance);
    const errs = base.issues.filter((i) => i.severity === 'error' || i.severity === 'fatal');
    out.push({
      name: t.name,
      step: 'base',
      expectedValid: expected.expected.error === 0,
      actualValid: errs.length === 0,
      errors: errs.map((i) => `${i.diagnostics ?? ''} @${i.expression?.join(',') ?? ''}`),
    });
    if (t.profile && typeof expected.profile?.expected?.error === 'number') {
      const src = readJson(path.join(TEST_CASES_DIR, t.profile.source)) as { url?: string };
      const profileFiles = [...baseFiles, ...(t.profile.supporting ?? []), t.profile.source];
      const withProfile = new InstanceValidator(
        new DefinitionsRegistry([...core, ...conformance(profileFiles)]),
        options,
      );
      const p = withProfile.validate(instance, src.url ? [src.url] : []);
      const perrs = p.issues.filter((i) => i.severity === 'error' || i.severity === 'fatal');
      out.push({
        name: t.name,
        step: 'profile',
        expectedValid: expected.profile.expected.error === 0,
        actualValid: perrs.length === 0,
        errors: perrs.map((i) => `${i.diagnostics ?? ''} @${i.expression?.join(',') ?? ''}`),
      });
    }
  }
  return out;
}
