import type { OperationOutcomeIssue } from 'fhir/r4';
import type { DefinitionsRegistry } from '../fhir/definitions';
import { issue } from '../fhir/errors';
import { isRecord } from '../search/types/common';
import { parseLiteral } from '../search/types/reference';
import { BundleIndex, bundleReferenceIssues } from './bundle-refs';
import { jsonEqual } from '../fhir/json-patch';
import { jsonContains } from './compare';
import { InvariantEngine } from './invariants';
import { jsonRepresentationIssues } from './json-rules';
import {
  type CompiledStructure,
  type Constraint,
  type ElementNode,
  type ExtensionContext,
  compileStructure,
} from './model';
import { isPrimitiveType, primitiveProblem } from './primitives';
import { proseRules } from './rules';
import { generateSnapshot } from './snapshot';
import { type Item, extensionUrl, matchesSlice } from './slicing';
import { TerminologyService, terminologyOf } from './terminology';
import { ucumDifference } from './ucum';

/** Which pass found an issue: the base definition of the type, or a profile the resource claims. */
export type IssueOrigin = 'base' | 'profile';

/**
 * Policies that are choices rather than rules of the specification (the reference validator has the
 * same switches). The server's defaults accept what the specification accepts.
 */
export interface ValidatorOptions {
  /**
   * Extensions the server holds no definition for: `any` (default) accepts them (the specification
   * lets anyone define extensions); `known` makes them errors unless their URL starts with one of
   * `extensionDomains`, is in HL7's namespace (http://hl7.org/fhir/StructureDefinition/, where HL7
   * publishes extensions after R4) or a cross-version extension (versions.html#extensions), or is an
   * example URL while `exampleUrls` is true. Unknown modifier extensions are errors either way.
   */
  extensions?: 'any' | 'known';
  /** URL prefixes whose extensions are accepted without a definition under `extensions: known`. */
  extensionDomains?: readonly string[];
  /** Example URLs (hosts example.org/.com/.net, RFC 2606) in uri/url/canonical values: accepted unless false. */
  exampleUrls?: boolean;
}

export interface ValidationResult {
  issues: OperationOutcomeIssue[];
  /** Errors (error or fatal) by origin. */
  errors: { base: number; profile: number };
}

interface Run {
  issues: Array<OperationOutcomeIssue & { origin: IssueOrigin }>;
  origin: IssueOrigin;
  resource: unknown;
  /** The resource that holds `contained` for `#id` references (a contained resource's container). */
  container: unknown;
  root: unknown;
  /** The location of `resource` (`Bundle.entry[0].resource`); paths inside it are relative to it. */
  resourceLoc: string;
  /** Within a `profile` discriminator check: stop at the first error. */
  probe: boolean;
}

const CORE = 'http://hl7.org/fhir/StructureDefinition/';
const MAX_ISSUES = 500;
const PROSE_TYPES = new Set(['Coding', 'Attachment', 'Bundle']);

const cap = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);

/**
 * Validates resources against the R4 StructureDefinitions and the profiles they claim
 * (validation.html, profiling.html). One element tree per StructureDefinition, compiled lazily and
 * cached; invariants compiled once per element; ValueSet expansions cached.
 */
export class InstanceValidator {
  private readonly structures = new Map<string, CompiledStructure | null>();
  private readonly constraintCache = new Map<ElementNode, Map<string, Constraint[]>>();
  readonly terminology: TerminologyService;
  readonly invariants = new InvariantEngine();
  private readonly bundleIndexes = new WeakMap<object, BundleIndex>();
  /** Nesting of target-profile checks (a target's own references are checked up to a depth). */
  private targetDepth = 0;
  private coreConstraintSet: ReadonlySet<string> | undefined;

  constructor(
    private readonly registry: DefinitionsRegistry,
    private readonly options: ValidatorOptions = {},
    terminology?: TerminologyService,
  ) {
    this.terminology = terminology ?? terminologyOf(registry);
  }

  structure(url: string): CompiledStructure | undefined {
    let s = this.structures.get(url);
    if (s === undefined) {
      let sd = this.registry.structureDefinition(url);
      if (sd && !sd.snapshot?.element?.length) {
        const element = generateSnapshot(sd, (u) => this.registry.structureDefinition(u));
        sd = element ? { ...sd, snapshot: { element } } : undefined;
      }
      s = (sd && compileStructure(sd)) ?? null;
      this.structures.set(url, s);
    }
    return s ?? undefined;
  }

  /**
   * Validates a resource against its base definition, the profiles in meta.profile, `profiles`, and
   * the profiles the held ImplementationGuides declare global for its type.
   */
  validate(resource: unknown, profiles: readonly string[] = []): ValidationResult {
    const run: Run = {
      issues: [],
      origin: 'base',
      resource,
      container: resource,
      root: resource,
      resourceLoc:
        isRecord(resource) && typeof resource.resourceType === 'string' ? resource.resourceType : '',
      probe: false,
    };
    if (!isRecord(resource) || typeof resource.resourceType !== 'string') {
      run.issues.push({
        ...issue('structure', 'The content is not a FHIR resource (no resourceType)'),
        origin: 'base',
      });
      return finish(run);
    }
    const type = resource.resourceType;
    for (const i of jsonRepresentationIssues(resource as never)) run.issues.push({ ...i, origin: 'base' });
    this.checkResource(resource, type, run);
    const meta = resource.meta;
    const claimed =
      isRecord(meta) && Array.isArray(meta.profile)
        ? meta.profile.filter((p): p is string => typeof p === 'string')
        : [];
    for (const url of new Set([...claimed, ...profiles, ...this.registry.globalProfiles(type)])) {
      if (url === `${CORE}${type}`) continue;
      const s = this.structure(url);
      if (!s) {
        run.issues.push({
          ...issue(
            'not-found',
            `Profile ${url} is not known to this server; only the base definition of ${type} was checked`,
            'warning',
            [`${type}.meta.profile`],
          ),
          origin: 'profile',
        });
        continue;
      }
      if (s.type !== type) {
        run.issues.push({
          ...issue('invalid', `Profile ${url} is for ${s.type}, not ${type}`, 'error', [type]),
          origin: 'profile',
        });
        continue;
      }
      const prun: Run = { ...run, origin: 'profile' };
      this.checkItem({ value: resource, type }, s.root, type, prun, true);
    }
    return finish(run);
  }

  /** Whether a value conforms to a profile (slicing `profile` discriminators); undefined if not held. */
  conformsTo(value: unknown, profile: string, outer: Run): boolean | undefined {
    const s = this.structure(profile);
    if (!s) return undefined;
    // A resource (a Bundle entry's, a reference's target) is its own %resource and container.
    const isResource = isRecord(value) && typeof value.resourceType === 'string';
    const run: Run = {
      issues: [],
      origin: 'profile',
      resource: isResource ? value : outer.resource,
      container: isResource ? value : outer.container,
      root: outer.root,
      resourceLoc: outer.resourceLoc,
      probe: true,
    };
    const type = isRecord(value) && typeof value.resourceType === 'string' ? value.resourceType : s.type;
    if (s.kind === 'resource' && type !== s.type) return false;
    this.checkItem({ value, type }, s.root, s.type, run, s.kind === 'resource');
    return !run.issues.some((i) => i.severity === 'error' || i.severity === 'fatal');
  }

  private report(
    run: Run,
    code: OperationOutcomeIssue['code'],
    msg: string,
    loc: string,
    severity: OperationOutcomeIssue['severity'] = 'error',
  ): void {
    if (run.issues.length >= MAX_ISSUES) return;
    // A probe only asks whether there is an error (and stops at the first): warnings do not count.
    if (run.probe && severity !== 'error' && severity !== 'fatal') return;
    run.issues.push({ ...issue(code, msg, severity, [loc]), origin: run.origin });
  }

  /** A resource in a resource position (the root, contained, Bundle.entry.resource, Parameters). */
  private checkResource(value: unknown, loc: string, run: Run): void {
    if (!isRecord(value) || typeof value.resourceType !== 'string') {
      this.report(run, 'structure', 'A resource is expected here (an object with resourceType)', loc);
      return;
    }
    const type = value.resourceType;
    const s = this.registry.isResourceType(type) ? this.structure(`${CORE}${type}`) : undefined;
    if (!s) {
      this.report(run, 'structure', `Unknown resource type '${type}'`, loc);
      return;
    }
    const contained = /\.contained\[\d+\]$/.test(loc);
    const inner: Run = {
      ...run,
      origin: 'base',
      resource: value,
      container: contained ? run.container : value,
      resourceLoc: loc,
    };
    this.checkItem({ value, type }, s.root, type, inner, true, loc);
  }

  private childrenFor(node: ElementNode, type: string): Map<string, ElementNode> {
    if (node.children.size > 0) return node.children;
    if (node.contentReference) {
      const ref = node.contentReference.replace(/^.*#/, '');
      const base = this.structure(`${CORE}${ref.split('.')[0] ?? ''}`);
      const target = base?.byId.get(ref);
      if (target) return target.children;
    }
    const s = this.structure(`${CORE}${type}`);
    return s?.root.children ?? node.children;
  }

  /** The invariants for an occurrence: the element's own plus those of its type's definition. */
  private constraintsFor(node: ElementNode, type: string): Constraint[] {
    let byType = this.constraintCache.get(node);
    if (!byType) {
      byType = new Map();
      this.constraintCache.set(node, byType);
    }
    let out = byType.get(type);
    if (!out) {
      const typeRoot =
        node.children.size === 0 && !isPrimitiveType(type)
          ? this.structure(`${CORE}${type}`)?.root
          : undefined;
      const seen = new Set<string>();
      out = [];
      for (const c of [...node.constraints, ...(typeRoot && typeRoot !== node ? typeRoot.constraints : [])]) {
        if (seen.has(c.key)) continue;
        seen.add(c.key);
        out.push(c);
      }
      byType.set(type, out);
    }
    return out;
  }

  /** Validates one occurrence of an element against its definition. */
  private checkItem(
    item: Item,
    node: ElementNode,
    type: string,
    run: Run,
    resourceRoot = false,
    locIn?: string,
  ): void {
    const loc = locIn ?? (resourceRoot ? type : node.path);
    const { value } = item;
    if (run.probe && run.issues.length > 0) return;
    if (isPrimitiveType(type)) {
      if (value !== undefined && value !== null) {
        const problem = primitiveProblem(type, value);
        if (problem) this.report(run, 'value', `${loc} ${problem}`, loc);
        else this.checkValueRules(value, node, type, loc, run);
        if (
          this.options.exampleUrls === false &&
          URI_TYPES.has(type) &&
          typeof value === 'string' &&
          isExampleUrl(value)
        ) {
          this.report(run, 'value', `${loc}: example URLs are not allowed here (${value})`, loc);
        }
      } else if (item.ext === undefined || item.ext === null) {
        this.report(run, 'structure', `${loc} has neither a value nor extensions`, loc);
      }
      if (item.ext !== undefined && item.ext !== null) {
        const el = this.structure(`${CORE}Element`);
        if (!isRecord(item.ext))
          this.report(run, 'structure', `The primitive extension of ${loc} must be an object`, loc);
        else if (el) this.checkObject(item.ext, el.root.children, type, loc, run, false, node);
      }
    } else if ((type === 'Resource' || this.registry.isResourceType(type)) && !resourceRoot) {
      this.checkResource(value, loc, run);
      // Profiles on a resource position: those of the type it is; conforming to one is enough.
      const rt = isRecord(value) ? value.resourceType : undefined;
      const profiles = node.types
        .filter((t) => t.code === rt || t.code === 'Resource')
        .flatMap((t) => t.profiles);
      const verdicts = profiles.map((p) => this.conformsTo(value, p, run));
      if (verdicts.length > 0 && verdicts.every((x) => x === false)) {
        this.report(run, 'structure', `${loc} does not conform to ${profiles.join(' or ')}`, loc);
      }
      return;
    } else {
      if (!isRecord(value)) {
        this.report(run, 'structure', `${loc} must be a JSON object (FHIR ${type})`, loc);
        return;
      }
      this.checkObject(value, this.childrenFor(node, type), type, loc, run, resourceRoot, node);
      this.checkValueRules(value, node, type, loc, run);
      if (type === 'Reference') this.checkReference(value, node, loc, run);
      if (run.origin === 'base' && PROSE_TYPES.has(type)) {
        for (const p of proseRules(type, value, loc)) this.report(run, p.code, p.message, p.expression);
        if (type === 'Bundle') {
          for (const p of bundleReferenceIssues(value, loc, this.bundleIndex(value)))
            this.report(run, p.code, p.message, p.expression);
        }
      }
      if (type === 'Extension') this.checkExtension(value, node, loc, run);
    }
    const constraints = this.constraintsFor(node, type);
    if (constraints.length > 0) {
      // fhirpath resolves element types from this base: backbone elements by their path, others by type.
      const base = type === 'BackboneElement' || type === 'Element' ? node.path.replace(/\[x\]/g, '') : type;
      const core = run.origin === 'profile' ? this.coreConstraints() : undefined;
      for (const c of constraints) {
        // A profile repeats the base definitions' invariants: the base pass has evaluated them here.
        if (core?.has(constraintKey(c))) continue;
        const r = this.invariants.evaluate(c, base, value, run.resource, run.container);
        if (r === 'fail')
          this.report(run, 'invariant', `Constraint failed: ${c.key}: '${c.human}'`, loc, c.severity);
      }
    }
  }

  /**
   * The elements of a complex value: known names, JSON shapes, cardinality, then each occurrence.
   * `type` and `holder` are the value's type and definition (for extension contexts).
   */
  private checkObject(
    obj: Record<string, unknown>,
    children: Map<string, ElementNode>,
    type: string,
    loc: string,
    run: Run,
    resourceRoot: boolean,
    holder?: ElementNode,
  ): void {
    const groups = new Map<ElementNode, { type: string; value?: unknown; ext?: unknown }>();
    for (const key of Object.keys(obj)) {
      if (resourceRoot && key === 'resourceType') continue;
      const isExt = key.charCodeAt(0) === 95; // '_'
      const name = isExt ? key.slice(1) : key;
      let child = children.get(name);
      let childType: string | undefined;
      if (child && !child.choice) {
        childType = child.types[0]?.code ?? 'BackboneElement';
      } else {
        child = undefined;
        for (const c of children.values()) {
          if (!c.choice || !name.startsWith(c.name)) continue;
          const suffix = name.slice(c.name.length);
          const t = c.types.find((x) => cap(x.code) === suffix);
          if (t) {
            child = c;
            childType = t.code;
            break;
          }
        }
      }
      if (!child || !childType) {
        this.report(run, 'structure', `Unrecognised element '${key}'`, `${loc}.${key}`);
        continue;
      }
      if (isExt && !isPrimitiveType(childType)) {
        this.report(
          run,
          'structure',
          `'${key}': only primitive elements have a '_' extension partner`,
          `${loc}.${key}`,
        );
        continue;
      }
      let g = groups.get(child);
      if (!g) {
        g = { type: childType };
        groups.set(child, g);
      } else if (g.type !== childType) {
        this.report(
          run,
          'structure',
          `${child.name}[x] has more than one type (${cap(g.type)} and ${cap(childType)})`,
          `${loc}.${child.name}`,
        );
        continue;
      }
      if (isExt) g.ext = obj[key];
      else g.value = obj[key];
    }
    for (const child of children.values()) {
      const g = groups.get(child);
      if (!g) {
        if (child.min > 0)
          this.report(
            run,
            'required',
            `${loc}.${child.name}${child.choice ? '[x]' : ''}: minimum required = ${child.min}, but only found 0`,
            `${loc}.${child.name}`,
          );
        continue;
      }
      const at = child.choice ? `${loc}.${child.name}.ofType(${g.type})` : `${loc}.${child.name}`;
      const items: Item[] = [];
      if (child.array) {
        if (g.value !== undefined && !Array.isArray(g.value)) {
          this.report(run, 'structure', `${at} must be a JSON array (it repeats)`, at);
          continue;
        }
        if (g.ext !== undefined && !Array.isArray(g.ext)) {
          this.report(run, 'structure', `_${child.name} must be a JSON array (it repeats)`, at);
          continue;
        }
        const vals = (g.value as unknown[] | undefined) ?? [];
        const exts = (g.ext as unknown[] | undefined) ?? [];
        if (g.value !== undefined && g.ext !== undefined && vals.length !== exts.length) {
          this.report(run, 'structure', `${at} and its '_' partner have different lengths`, at);
        }
        const n = Math.max(vals.length, exts.length);
        for (let i = 0; i < n; i++) {
          const it: Item = { value: vals[i] === null ? undefined : vals[i], type: g.type };
          if (exts[i] !== undefined && exts[i] !== null) it.ext = exts[i];
          items.push(it);
        }
      } else {
        if (Array.isArray(g.value) || Array.isArray(g.ext)) {
          this.report(run, 'structure', `${at} must not be a JSON array (max 1)`, at);
          continue;
        }
        const it: Item = { value: g.value, type: g.type };
        if (g.ext !== undefined) it.ext = g.ext;
        items.push(it);
      }
      if (items.length < child.min)
        this.report(
          run,
          'required',
          `${at}: minimum required = ${child.min}, but only found ${items.length}`,
          at,
        );
      if (items.length > child.max)
        this.report(run, 'structure', `${at}: maximum allowed = ${child.max}, but found ${items.length}`, at);
      for (let i = 0; i < items.length; i++) {
        const it = items[i] as Item;
        this.checkItem(it, child, it.type, run, false, child.array ? `${at}[${i}]` : at);
      }
      if (
        run.origin === 'base' &&
        holder &&
        (child.name === 'extension' || child.name === 'modifierExtension')
      ) {
        for (let i = 0; i < items.length; i++)
          this.checkExtensionContext(items[i]?.value, obj, type, holder, loc, `${at}[${i}]`, run);
      }
      if (child.slices.length > 0) this.checkSlices(items, child, at, run);
    }
  }

  private checkSlices(items: Item[], node: ElementNode, at: string, run: Run): void {
    const discriminators = node.slicing?.discriminators ?? [];
    const counts = new Map<ElementNode, number>();
    const conforms = (v: unknown, p: string): boolean | undefined => this.conformsTo(v, p, run);
    const memberOf = (v: unknown, vs: string): boolean =>
      codingsOf(v, isRecord(v) ? (Array.isArray(v.coding) ? 'CodeableConcept' : 'Coding') : 'code').some(
        (c) => this.terminology.membership(vs, c.system, c.code) === 'member',
      );
    for (let i = 0; i < items.length; i++) {
      const it = items[i] as Item;
      const loc = node.array ? `${at}[${i}]` : at;
      let slice: ElementNode | undefined;
      for (const s of node.slices) {
        if (matchesSlice(it, s, discriminators, conforms, memberOf)) {
          slice = s;
          break;
        }
      }
      if (!slice) {
        if (node.slicing?.rules === 'closed') {
          this.report(
            run,
            'structure',
            `${loc} does not match any slice of a closed slicing (${node.slices.map((s) => s.sliceName).join(', ')})`,
            loc,
          );
        }
        continue;
      }
      counts.set(slice, (counts.get(slice) ?? 0) + 1);
      this.checkItem(it, slice, it.type, run, false, loc);
    }
    for (const s of node.slices) {
      const n = counts.get(s) ?? 0;
      if (n < s.min)
        this.report(
          run,
          'structure',
          `Slice '${s.sliceName ?? ''}' of ${at}: minimum required = ${s.min}, but only found ${n}`,
          at,
        );
      if (n > s.max)
        this.report(
          run,
          'structure',
          `Slice '${s.sliceName ?? ''}' of ${at}: maximum allowed = ${s.max}, but found ${n}`,
          at,
        );
    }
  }

  /** fixed/pattern, maxLength, min/maxValue and bindings of one occurrence. */
  private checkValueRules(value: unknown, node: ElementNode, type: string, loc: string, run: Run): void {
    if (node.fixed !== undefined && !jsonEqual(value, node.fixed)) {
      this.report(run, 'value', `${loc}: value must be exactly ${JSON.stringify(node.fixed)}`, loc);
    }
    if (node.pattern !== undefined && !jsonContains(value, node.pattern)) {
      this.report(run, 'value', `${loc}: value must match the pattern ${JSON.stringify(node.pattern)}`, loc);
    }
    if (node.maxLength !== undefined && typeof value === 'string' && value.length > node.maxLength) {
      this.report(run, 'too-long', `${loc}: length ${value.length} exceeds maxLength ${node.maxLength}`, loc);
    }
    if (node.minValue !== undefined && compareValues(value, node.minValue) < 0) {
      this.report(run, 'value', `${loc}: value is below the minimum ${shownBound(node.minValue)}`, loc);
    }
    if (node.maxValue !== undefined && compareValues(value, node.maxValue) > 0) {
      this.report(run, 'value', `${loc}: value is above the maximum ${shownBound(node.maxValue)}`, loc);
    }
    if (node.binding?.valueSet && node.binding.strength !== 'example')
      this.checkBinding(value, type, node.binding.strength, node.binding.valueSet, loc, run);
    for (const a of node.binding?.additional ?? []) {
      // required/maximum: the codes must be in the ValueSet (errors); extensible/current: warnings.
      const strength =
        a.purpose === 'required' || a.purpose === 'maximum'
          ? 'required'
          : a.purpose === 'extensible' || a.purpose === 'current'
            ? 'extensible'
            : undefined;
      if (strength) this.checkBinding(value, type, strength, a.valueSet, loc, run, 'additional ');
    }
  }

  private checkBinding(
    value: unknown,
    type: string,
    strength: string,
    valueSet: string,
    loc: string,
    run: Run,
    kind = '',
  ): void {
    const codings = codingsOf(value, type);
    if (codings.length === 0) return;
    const exp = this.terminology.expand(valueSet);
    if (!exp) return;
    let member = false;
    let unknown = false;
    for (const c of codings) {
      // A Coding without a system cannot be checked against a ValueSet that names systems.
      const m =
        c.system === undefined && type !== 'code' && type !== 'string' && type !== 'uri'
          ? 'unknown'
          : this.terminology.membership(valueSet, c.system, c.code);
      if (m === 'member') member = true;
      if (m === 'unknown') unknown = true;
    }
    if (member || unknown) return;
    const shown = codings.map((c) => (c.system ? `${c.system}#${c.code}` : c.code)).join(', ');
    const severity = strength === 'required' ? 'error' : 'warning';
    this.report(
      run,
      'code-invalid',
      `${loc}: ${shown} is not in the ${kind}${strength} value set ${valueSet}`,
      loc,
      severity,
    );
  }

  private checkReference(value: Record<string, unknown>, node: ElementNode, loc: string, run: Run): void {
    const ref = value.reference;
    if (run.origin === 'profile' && typeof ref === 'string') this.checkTargetProfiles(ref, node, loc, run);
    if (typeof ref !== 'string' || ref.startsWith('urn:') || ref.includes('?')) return;
    const allowed = new Set<string>();
    for (const t of node.types) {
      if (t.code !== 'Reference') continue;
      for (const tp of t.targetProfiles) {
        const held = this.registry.structureDefinition(tp)?.type;
        // A target profile the server does not hold says nothing it can check about the type.
        if (!held && !tp.startsWith(CORE)) return;
        allowed.add(held ?? tp.slice(tp.lastIndexOf('/') + 1));
      }
    }
    let target: string | undefined;
    if (ref.startsWith('#')) {
      const res = run.container;
      const contained = isRecord(res) && Array.isArray(res.contained) ? res.contained : [];
      const found = ref === '#' ? res : contained.find((c) => isRecord(c) && c.id === ref.slice(1));
      if (!isRecord(found)) {
        this.report(
          run,
          'structure',
          `${loc}: the contained resource ${ref} is not in this resource`,
          `${loc}.reference`,
        );
        return;
      }
      target = typeof found.resourceType === 'string' ? found.resourceType : undefined;
    } else {
      // The type of a literal reference (relative or absolute), whether or not the server knows it.
      target = parseLiteral(ref, () => true)?.type;
    }
    if (!target || allowed.size === 0 || allowed.has('Resource')) return;
    if (!allowed.has(target)) {
      this.report(
        run,
        'structure',
        `${loc}: a reference to ${target} is not allowed here (allowed: ${[...allowed].join(', ')})`,
        `${loc}.reference`,
      );
    }
  }

  /** The invariants of R4's own definitions (resources and datatypes), as constraintKey. */
  private coreConstraints(): ReadonlySet<string> {
    if (!this.coreConstraintSet) {
      const set = new Set<string>();
      for (const sd of this.registry.allStructureDefinitions()) {
        if (!sd.url.startsWith(CORE) || sd.derivation === 'constraint') continue;
        for (const el of sd.snapshot?.element ?? [])
          for (const c of el.constraint ?? [])
            set.add(
              constraintKey({
                key: c.key,
                severity: c.severity === 'error' ? 'error' : 'warning',
                expression: c.expression,
              }),
            );
      }
      this.coreConstraintSet = set;
    }
    return this.coreConstraintSet;
  }

  private bundleIndex(bundle: Record<string, unknown>): BundleIndex {
    let index = this.bundleIndexes.get(bundle);
    if (!index) {
      index = new BundleIndex(bundle);
      this.bundleIndexes.set(bundle, index);
    }
    return index;
  }

  /**
   * Target profiles (Reference(BundlePatient)) of a reference that resolves to another entry of
   * the Bundle being validated: the target must conform to one of those for its type. References
   * outside the Bundle are not read (no reads during validation).
   */
  private checkTargetProfiles(ref: string, node: ElementNode, loc: string, run: Run): void {
    const root = run.root;
    if (ref.startsWith('#') || !isRecord(root) || root.resourceType !== 'Bundle' || root === run.resource)
      return;
    const profiles = node.types.filter((t) => t.code === 'Reference').flatMap((t) => t.targetProfiles);
    if (profiles.length === 0 || this.targetDepth > 2) return;
    const index = this.bundleIndex(root);
    const { exact, loose } = index.resolve(ref, index.entryOf(run.resource)?.fullUrl);
    const targets = exact.length > 0 ? exact : loose;
    const target = targets.length === 1 ? targets[0]?.resource : undefined;
    if (!target) return;
    const forType = profiles.filter(
      (p) => this.registry.structureDefinition(p)?.type === target.resourceType,
    );
    // Its plain type is allowed (or its type is not: the base pass says so).
    if (forType.length === 0 || forType.some((p) => p === `${CORE}${String(target.resourceType)}`)) return;
    this.targetDepth++;
    try {
      if (forType.some((p) => this.conformsTo(target, p, run) === true)) return;
    } finally {
      this.targetDepth--;
    }
    this.report(
      run,
      'structure',
      `${loc}: the referenced ${String(target.resourceType)} (${ref}) does not conform to ${forType.join(' or ')}`,
      `${loc}.reference`,
    );
  }

  /**
   * An extension's context (StructureDefinition.context, extensibility.html#context): the element
   * holding it must be named by an `element` context, by its path (`Patient.name`, `Observation.value[x]`)
   * or by its type or a type it derives from (`HumanName`, `Element`, `Resource`); an `extension`
   * context names the URL of the extension holding it. FHIRPath contexts are not evaluated (accepted).
   */
  private checkExtensionContext(
    ext: unknown,
    holderValue: Record<string, unknown>,
    holderType: string,
    holder: ElementNode,
    holderLoc: string,
    loc: string,
    run: Run,
  ): void {
    if (!isRecord(ext) || typeof ext.url !== 'string') return;
    const s = this.structure(ext.url.split('|')[0] ?? ext.url);
    if (!s || s.type !== 'Extension' || s.contexts.length === 0) return;
    if (s.contexts.some((c) => c.type === 'fhirpath')) return;
    const names = this.holderNames(holderType, holder, holderLoc, run);
    const extra = CONTEXT_ERRATA[s.url] ?? [];
    const ok = [...s.contexts, ...extra].some((c) => {
      if (c.type === 'extension') return holderType === 'Extension' && holderValue.url === c.expression;
      const e = c.expression;
      // R5-style `profile#path` contexts need the profile to be checked: accepted.
      return (
        e === 'Element' ||
        e === 'Any' ||
        e.includes('#') ||
        names.has(e) ||
        names.has(e.replace(/\[x\]/g, ''))
      );
    });
    if (!ok) {
      const allowed = s.contexts.map((c) => c.expression).join(', ');
      this.report(
        run,
        'structure',
        `${loc}: the extension ${ext.url} is not allowed here (it is for ${allowed}; this element is ${[...names].slice(0, 3).join(', ')})`,
        loc,
      );
    }
  }

  /** The names an element answers to in extension contexts: its paths, its type and that type's ancestors. */
  private holderNames(type: string, holder: ElementNode, holderLoc: string, run: Run): Set<string> {
    const rt =
      isRecord(run.resource) && typeof run.resource.resourceType === 'string'
        ? run.resource.resourceType
        : '';
    const literal = (rt + holderLoc.slice(run.resourceLoc.length))
      .replace(/\[\d+\]/g, '')
      .replace(/\.ofType\([^)]*\)/g, '');
    const names = new Set<string>([literal, holder.path, holder.path.replace(/\[x\]/g, '')]);
    if (holder.sameAs) names.add(holder.sameAs);
    if (holder.contentReference) names.add(holder.contentReference.replace(/^.*#/, ''));
    let t: string | undefined = type;
    for (let depth = 0; t && depth < 10; depth++) {
      names.add(t);
      const base: string | undefined = this.registry.structureDefinition(`${CORE}${t}`)?.baseDefinition;
      t = base?.startsWith(CORE) ? base.slice(CORE.length) : undefined;
    }
    return names;
  }

  private unknownExtensionAllowed(url: string): boolean {
    // A relative url names a part of a complex extension, checked (if at all) by its parent's definition.
    if (!url.includes(':')) return true;
    if (CROSS_VERSION_EXT.test(url) || url.startsWith(CORE)) return true;
    if (this.options.exampleUrls !== false && isExampleUrl(url)) return true;
    return (this.options.extensionDomains ?? []).some((d) => url.startsWith(d));
  }

  /** Extensions by URL: the extension definition the server holds (or the slice's profile). */
  private checkExtension(value: Record<string, unknown>, node: ElementNode, loc: string, run: Run): void {
    const url = value.url;
    if (typeof url !== 'string') return;
    const profile = node.sliceName ? extensionUrl(node) : undefined;
    if (profile && profile !== url) {
      this.report(
        run,
        'structure',
        `${loc}: extension url ${url} does not match the slice's ${profile}`,
        loc,
      );
      return;
    }
    if (run.origin === 'profile' && !profile) return; // the base pass did it
    const s = this.structure(url.split('|')[0] ?? url);
    if (!s || s.type !== 'Extension') {
      if (node.name === 'modifierExtension' && !url.startsWith('http://hl7.org/fhir/')) {
        this.report(
          run,
          'structure',
          `${loc}: modifier extension ${url} is not known to this server, so the resource cannot be safely processed`,
          loc,
        );
      } else if (this.options.extensions === 'known' && !this.unknownExtensionAllowed(url)) {
        this.report(
          run,
          'structure',
          `${loc}: the extension ${url} is not known to this server, so it is not allowed here`,
          loc,
        );
      }
      return;
    }
    const root = s.root;
    this.checkObject(value, root.children, 'Extension', loc, run, false);
    this.checkValueRules(value, root, 'Extension', loc, run);
  }
}

/**
 * Contexts the R4 extension definitions omit although R4's own definitions use the extensions
 * there (the reference validator corrects the same ones): the type extensions on
 * ElementDefinition.type, and extensions whose places of use are too many to list.
 */
const CONTEXT_ERRATA: Record<string, ExtensionContext[]> = {
  [`${CORE}structuredefinition-fhir-type`]: [{ type: 'element', expression: 'ElementDefinition.type' }],
  [`${CORE}regex`]: [{ type: 'element', expression: 'ElementDefinition.type' }],
  [`${CORE}structuredefinition-normative-version`]: [{ type: 'element', expression: 'Element' }],
  [`${CORE}capabilitystatement-expectation`]: [{ type: 'element', expression: 'Element' }],
  [`${CORE}capabilitystatement-prohibited`]: [{ type: 'element', expression: 'Element' }],
};

const URI_TYPES = new Set(['uri', 'url', 'canonical']);
const UCUM = 'http://unitsofmeasure.org';
const EXAMPLE_HOST =
  /^[a-z][a-z0-9+.-]*:\/\/(?:[^/?#@]*@)?(?:[^/?#:]*\.)?example\.(?:org|com|net)(?:[:/?#]|$)/i;
/**
 * Extensions defined by rule for other FHIR versions (versions.html#extensions). (HL7's own
 * namespace, CORE, is accepted too: HL7 publishes extensions there after R4, in the extensions pack.)
 */
const CROSS_VERSION_EXT = /^http:\/\/hl7\.org\/fhir\/[0-9.]+\/StructureDefinition\/extension-/;

/** A URL on a host reserved for examples (RFC 2606: example.org, example.com, example.net). */
export function isExampleUrl(url: string): boolean {
  return EXAMPLE_HOST.test(url);
}

function constraintKey(c: Pick<Constraint, 'key' | 'severity' | 'expression'>): string {
  return `${c.key}\u0000${c.severity}\u0000${c.expression ?? ''}`;
}

/** The codes a coded value carries: a code, a Coding or Quantity, or a CodeableConcept's codings. */
function codingsOf(value: unknown, type: string): Array<{ system?: string; code: string }> {
  const codings: Array<{ system?: string; code: string }> = [];
  if (type === 'code' || type === 'string' || type === 'uri') {
    if (typeof value === 'string') codings.push({ code: value });
  } else if (type === 'Coding' || type === 'Quantity') {
    if (isRecord(value) && typeof value.code === 'string') {
      codings.push({ system: typeof value.system === 'string' ? value.system : undefined, code: value.code });
    }
  } else if (type === 'CodeableConcept') {
    if (isRecord(value) && Array.isArray(value.coding)) {
      for (const c of value.coding) {
        if (isRecord(c) && typeof c.code === 'string') {
          codings.push({ system: typeof c.system === 'string' ? c.system : undefined, code: c.code });
        }
      }
    }
  }
  return codings;
}

/**
 * value - bound, in sign (min/maxValue): numbers, date/time strings of the same precision, and
 * Quantities in the same unit or in UCUM units of the same kind. 0 when they cannot be compared.
 */
function compareValues(v: unknown, bound: unknown): number {
  if (typeof v === 'number' && typeof bound === 'number') return v - bound;
  if (typeof v === 'string' && typeof bound === 'string') {
    if (v.length !== bound.length && (v.length <= 10 || bound.length <= 10)) return 0;
    const a = Date.parse(v);
    const b = Date.parse(bound);
    if (!Number.isNaN(a) && !Number.isNaN(b)) return a - b;
    return v < bound ? -1 : v > bound ? 1 : 0;
  }
  if (isRecord(v) && isRecord(bound) && typeof v.value === 'number' && typeof bound.value === 'number') {
    const unit = (q: Record<string, unknown>): unknown => q.code ?? q.unit;
    if (unit(bound) === undefined || unit(v) === unit(bound)) return v.value - bound.value;
    // Different UCUM units of the same kind (g against kg) compare after conversion.
    if (
      v.system === UCUM &&
      bound.system === UCUM &&
      typeof v.code === 'string' &&
      typeof bound.code === 'string'
    ) {
      return ucumDifference({ value: v.value, code: v.code }, { value: bound.value, code: bound.code }) ?? 0;
    }
    return 0;
  }
  return 0;
}

function shownBound(b: unknown): string {
  if (isRecord(b)) return `${String(b.value)} ${String(b.code ?? b.unit ?? '')}`.trim();
  return String(b);
}

function finish(run: Run): ValidationResult {
  const seen = new Set<string>();
  const issues: OperationOutcomeIssue[] = [];
  const errors = { base: 0, profile: 0 };
  for (const i of run.issues) {
    const key = `${i.severity}|${i.code}|${i.diagnostics ?? ''}|${i.expression?.join(',') ?? ''}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const { origin, ...rest } = i;
    if (rest.severity === 'error' || rest.severity === 'fatal') errors[origin]++;
    issues.push(rest);
  }
  return { issues, errors };
}
