import type { ElementDefinition, StructureDefinition } from 'fhir/r4';

/** One type an element may take, with the profiles it must meet (elementdefinition.html#ElementDefinition.type). */
export interface TypeRef {
  code: string;
  profiles: string[];
  targetProfiles: string[];
}

export interface Discriminator {
  type: 'value' | 'exists' | 'pattern' | 'type' | 'profile';
  path: string;
}

export interface Constraint {
  key: string;
  severity: 'error' | 'warning';
  human: string;
  expression?: string;
}

/**
 * An element of a StructureDefinition snapshot, as a tree: children by JSON name (choice elements
 * without their [x]), slices of a sliced element under it. Built once per StructureDefinition.
 */
export interface ElementNode {
  id: string;
  path: string;
  /** Name of the element in JSON (without [x]). */
  name: string;
  choice: boolean;
  min: number;
  max: number;
  /** The base definition allows more than one: the JSON value is an array. */
  array: boolean;
  types: TypeRef[];
  children: Map<string, ElementNode>;
  sliceName?: string;
  slicing?: { discriminators: Discriminator[]; rules: 'open' | 'closed' | 'openAtEnd' };
  slices: ElementNode[];
  fixed?: unknown;
  pattern?: unknown;
  binding?: { strength: string; valueSet?: string; additional?: AdditionalBinding[] };
  constraints: Constraint[];
  maxLength?: number;
  /** minValue[x] / maxValue[x]: a number, a date/time string, or a Quantity. */
  minValue?: unknown;
  maxValue?: unknown;
  contentReference?: string;
  /** The path of the element a resolved contentReference named (Questionnaire.item for item.item). */
  sameAs?: string;
}

/**
 * An R5 additional binding (ElementDefinition.binding.additional, carried in R4 by its
 * cross-version extension): a ValueSet with a purpose (required, maximum, extensible, current...).
 */
export interface AdditionalBinding {
  purpose: string;
  valueSet: string;
}

const ADDITIONAL_BINDING = [
  'http://hl7.org/fhir/5.0/StructureDefinition/extension-ElementDefinition.binding.additional',
  'http://hl7.org/fhir/tools/StructureDefinition/additional-binding',
];

/** Additional bindings without a usage context (those with one apply only where it matches: not checked). */
function additionalBindings(binding: NonNullable<ElementDefinition['binding']>): AdditionalBinding[] {
  const out: AdditionalBinding[] = [];
  for (const e of binding.extension ?? []) {
    if (!ADDITIONAL_BINDING.includes(e.url)) continue;
    const part = (name: string): NonNullable<typeof e.extension>[number] | undefined =>
      e.extension?.find((x) => x.url === name);
    const purpose = part('purpose')?.valueCode;
    const valueSet = part('valueSet')?.valueCanonical;
    if (purpose && valueSet && !part('usage')) out.push({ purpose, valueSet });
  }
  return out;
}

/** Where an extension may be used (StructureDefinition.context). */
export interface ExtensionContext {
  type: 'element' | 'extension' | 'fhirpath';
  expression: string;
}

export interface CompiledStructure {
  url: string;
  /** Extension definitions: the contexts the extension may be used in (empty: anywhere). */
  contexts: readonly ExtensionContext[];
  /** The type the structure constrains (Observation, Extension, HumanName...). */
  type: string;
  kind: string;
  root: ElementNode;
  /** Elements by id. */
  byId: ReadonlyMap<string, ElementNode>;
}

const FHIR_TYPE_EXT = 'http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type';

function typeCode(t: NonNullable<ElementDefinition['type']>[number]): string {
  if (!t.code.startsWith('http://hl7.org/fhirpath/System.')) return t.code;
  const ext = t.extension?.find((e) => e.url === FHIR_TYPE_EXT);
  if (ext?.valueUrl) return ext.valueUrl;
  if (ext?.valueUri) return ext.valueUri;
  const sys = t.code.slice('http://hl7.org/fhirpath/System.'.length);
  return (
    { String: 'string', Boolean: 'boolean', Integer: 'integer', Decimal: 'decimal', Date: 'date' }[sys] ??
    'string'
  );
}

/** The fixed[x] / pattern[x] value of an element, whatever its type suffix. */
function prefixed(el: ElementDefinition, prefix: 'fixed' | 'pattern' | 'minValue' | 'maxValue'): unknown {
  for (const [k, v] of Object.entries(el)) {
    if (k.startsWith(prefix) && k.length > prefix.length && /[A-Z]/.test(k[prefix.length] ?? '')) return v;
  }
  return undefined;
}

function newNode(el: ElementDefinition, rootId: boolean): ElementNode {
  const segs = el.path.split('.');
  const last = segs[segs.length - 1] ?? el.path;
  const choice = last.endsWith('[x]');
  const baseMax = el.base?.max ?? el.max ?? '1';
  const node: ElementNode = {
    id: el.id ?? el.path,
    path: el.path,
    name: choice ? last.slice(0, -3) : last,
    choice,
    min: el.min ?? 0,
    max: el.max === undefined || el.max === '*' ? Infinity : Number(el.max),
    array: baseMax !== '1' && baseMax !== '0',
    types: (el.type ?? []).map((t) => ({
      code: rootId && last === 'id' && segs.length === 2 ? 'id' : typeCode(t),
      profiles: t.profile ?? [],
      targetProfiles: t.targetProfile ?? [],
    })),
    children: new Map(),
    slices: [],
    constraints: (el.constraint ?? [])
      .filter((c) => c.key !== 'ele-1')
      .map((c) => ({
        key: c.key,
        severity: c.severity === 'error' ? 'error' : 'warning',
        human: c.human,
        expression: c.expression,
      })),
  };
  if (el.sliceName) node.sliceName = el.sliceName;
  if (el.slicing) {
    node.slicing = {
      discriminators: (el.slicing.discriminator ?? []).map((d) => ({
        type: d.type as Discriminator['type'],
        path: d.path,
      })),
      rules: el.slicing.rules,
    };
  }
  const fixed = prefixed(el, 'fixed');
  if (fixed !== undefined) node.fixed = fixed;
  const pattern = prefixed(el, 'pattern');
  if (pattern !== undefined) node.pattern = pattern;
  const minValue = prefixed(el, 'minValue');
  if (minValue !== undefined) node.minValue = minValue;
  const maxValue = prefixed(el, 'maxValue');
  if (maxValue !== undefined) node.maxValue = maxValue;
  if (el.maxLength !== undefined) node.maxLength = el.maxLength;
  if (el.binding) {
    node.binding = { strength: el.binding.strength };
    if (el.binding.valueSet) node.binding.valueSet = el.binding.valueSet;
    const additional = additionalBindings(el.binding);
    if (additional.length > 0) node.binding.additional = additional;
  }
  if (el.contentReference) node.contentReference = el.contentReference;
  return node;
}

/** Element id segments (element names never contain dots; slice names in practice do not either). */
function idSegments(id: string): string[] {
  return id.split('.');
}

/** Compiles a StructureDefinition's snapshot into an element tree. Undefined without a snapshot. */
export function compileStructure(sd: StructureDefinition): CompiledStructure | undefined {
  const elements = sd.snapshot?.element;
  if (!elements || elements.length === 0) return undefined;
  const resourceRoot = sd.kind === 'resource';
  const byId = new Map<string, ElementNode>();
  let root: ElementNode | undefined;
  for (const el of elements) {
    const id = el.id ?? el.path;
    const node = newNode(el, resourceRoot);
    const segs = idSegments(id);
    if (segs.length === 1) {
      if (segs[0]?.includes(':') && root) {
        root.slices.push(node);
      } else {
        root = node;
      }
      byId.set(id, node);
      continue;
    }
    const last = segs[segs.length - 1] ?? '';
    const parentId = segs.slice(0, -1).join('.');
    const parent = byId.get(parentId);
    byId.set(id, node);
    if (!parent) continue;
    const colon = last.indexOf(':');
    if (colon >= 0) {
      const baseName = last.slice(0, colon).replace('[x]', '');
      const sliceName = last.slice(colon + 1);
      let sliced = parent.children.get(baseName);
      // Re-slicing (a/b): attach to the base element; matching uses the full slice name.
      if (sliced && sliceName.includes('/'))
        sliced = sliced.slices.find((s) => s.sliceName === sliceName.split('/')[0]) ?? sliced;
      if (sliced) sliced.slices.push(node);
      continue;
    }
    // Old-style profiles constrain a choice by naming the typed element (Observation.valueQuantity).
    if (!parent.children.has(node.name)) {
      for (const c of parent.children.values()) {
        if (c.choice && node.name.startsWith(c.name) && node.name.length > c.name.length) {
          node.sliceName = node.name;
          node.name = c.name;
          node.choice = true;
          c.slices.push(node);
          if (!c.slicing) c.slicing = { discriminators: [{ type: 'type', path: '$this' }], rules: 'open' };
          break;
        }
      }
      if (node.sliceName) continue;
    }
    parent.children.set(node.name, node);
  }
  if (!root) return undefined;
  // contentReference (#Questionnaire.item): share the referenced element's children and types.
  const constraint = sd.derivation === 'constraint';
  const seen = new Set<ElementNode>();
  const resolveRefs = (n: ElementNode): void => {
    if (seen.has(n)) return;
    seen.add(n);
    // In a profile, a contentReference (Parameters.parameter.part -> #Parameters.parameter) means
    // the base definition's element: the validator resolves it there, unless the profile gave the
    // element children of its own.
    if (n.contentReference && !(constraint && n.children.size === 0)) {
      const target = byId.get(n.contentReference.replace(/^.*#/, ''));
      if (target) {
        n.sameAs = target.path;
        n.children = target.children;
        n.types = target.types;
        n.contentReference = undefined;
        if (!n.constraints.length) n.constraints = target.constraints;
      }
    }
    for (const c of n.children.values()) resolveRefs(c);
    for (const s of n.slices) resolveRefs(s);
  };
  resolveRefs(root);
  return {
    url: sd.url,
    contexts: (sd.context ?? []).map((c) => ({ type: c.type, expression: c.expression })),
    type: sd.type,
    kind: sd.kind,
    root,
    byId,
  };
}
