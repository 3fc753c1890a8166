import type { CodeSystem, CodeSystemConcept, ValueSet, ValueSetComposeInclude } from 'fhir/r4';
import type { DefinitionsRegistry } from '../fhir/definitions';

/** A held CodeSystem, indexed: concepts by code with their parents (hierarchy from nesting and `parent`). */
export interface CodeSystemIndex {
  url: string;
  /** content = complete: a code not listed is not in the system. */
  complete: boolean;
  concepts: Map<
    string,
    { display?: string; definition?: string; parents: Set<string>; concept: CodeSystemConcept }
  >;
  caseSensitive: boolean;
}

export interface ExpandedCode {
  system: string;
  code: string;
  display?: string;
}

/**
 * A ValueSet expanded as far as the server can: `codes` are known members; `openSystems` are systems
 * the ValueSet includes in a way the server cannot enumerate (a system it does not hold, a filter it
 * cannot evaluate), so any code of them is accepted; `open` means the whole set could not be expanded
 * (an included ValueSet the server does not hold).
 */
export interface Expansion {
  url: string;
  codes: Map<string, Map<string, ExpandedCode>>;
  openSystems: Set<string>;
  open: boolean;
}

export type Membership = 'member' | 'not-member' | 'unknown';

const services = new WeakMap<DefinitionsRegistry, TerminologyService>();

/** The one TerminologyService of a registry (validation, search's :in/:below, $expand share its caches). */
export function terminologyOf(registry: DefinitionsRegistry): TerminologyService {
  let t = services.get(registry);
  if (!t) {
    t = new TerminologyService(registry);
    services.set(registry, t);
  }
  return t;
}

/** Terminology over what the server holds: ValueSet expansion, membership, lookup, subsumption. */
export class TerminologyService {
  private readonly systems = new Map<string, CodeSystemIndex | null>();
  private readonly expansions = new Map<string, Expansion | null>();

  constructor(private readonly registry: DefinitionsRegistry) {}

  codeSystem(url: string): CodeSystemIndex | undefined {
    const key = url.split('|')[0] ?? url;
    let idx = this.systems.get(key);
    if (idx === undefined) {
      const cs = this.registry.codeSystem(key);
      idx = cs ? indexCodeSystem(cs) : null;
      this.systems.set(key, idx);
    }
    return idx ?? undefined;
  }

  /** The expansion of a held ValueSet, cached; undefined when the ValueSet is not held. */
  expand(url: string): Expansion | undefined {
    const key = url.split('|')[0] ?? url;
    let exp = this.expansions.get(key);
    if (exp === undefined) {
      const vs = this.registry.valueSet(key);
      // Mark in progress to cut include cycles (a cycle expands as open).
      this.expansions.set(key, null);
      exp = vs ? this.expandValueSet(vs, new Set([key])) : null;
      this.expansions.set(key, exp);
    }
    return exp ?? undefined;
  }

  expandValueSet(vs: ValueSet, seen: Set<string> = new Set()): Expansion {
    const exp: Expansion = { url: vs.url ?? '', codes: new Map(), openSystems: new Set(), open: false };
    if (!vs.compose && vs.expansion?.contains) {
      const addContains = (items: NonNullable<NonNullable<ValueSet['expansion']>['contains']>): void => {
        for (const c of items) {
          if (c.system && c.code) add(exp, { system: c.system, code: c.code, display: c.display });
          if (c.contains) addContains(c.contains);
        }
      };
      addContains(vs.expansion.contains);
      return exp;
    }
    if (!vs.compose) {
      exp.open = true;
      return exp;
    }
    for (const inc of vs.compose.include) this.include(exp, inc, seen);
    for (const exc of vs.compose.exclude ?? []) {
      const removed: Expansion = { url: '', codes: new Map(), openSystems: new Set(), open: false };
      this.include(removed, exc, seen);
      for (const [system, codes] of removed.codes) {
        const mine = exp.codes.get(system);
        if (mine) for (const code of codes.keys()) mine.delete(code);
      }
    }
    return exp;
  }

  private include(exp: Expansion, inc: ValueSetComposeInclude, seen: Set<string>): void {
    // Codes from a system (all, listed, or filtered), intersected with any ValueSets named.
    let fromSystem: Expansion | undefined;
    if (inc.system) {
      fromSystem = { url: '', codes: new Map(), openSystems: new Set(), open: false };
      const cs = this.codeSystem(inc.system);
      if (inc.concept) {
        for (const c of inc.concept) {
          const known = cs?.concepts.get(c.code);
          if (cs?.complete && !known) continue;
          add(fromSystem, { system: inc.system, code: c.code, display: c.display ?? known?.display });
        }
      } else if (!cs || !cs.complete) {
        fromSystem.openSystems.add(inc.system);
      } else if (inc.filter && inc.filter.length > 0) {
        let codes: Set<string> | undefined;
        for (const f of inc.filter) {
          const matched = filterCodes(cs, f.property, f.op, f.value);
          if (!matched) {
            codes = undefined;
            fromSystem.openSystems.add(inc.system);
            break;
          }
          codes = codes ? new Set([...codes].filter((c) => matched.has(c))) : matched;
        }
        for (const code of codes ?? []) {
          add(fromSystem, { system: inc.system, code, display: cs.concepts.get(code)?.display });
        }
      } else {
        for (const [code, c] of cs.concepts)
          add(fromSystem, { system: inc.system, code, display: c.display });
      }
    }
    let result = fromSystem;
    for (const vsUrl of inc.valueSet ?? []) {
      const key = vsUrl.split('|')[0] ?? vsUrl;
      const other = seen.has(key) ? undefined : this.expand(key);
      if (!other || other.open) {
        exp.open = true;
        return;
      }
      result = result ? intersect(result, other) : other;
    }
    if (!result) return;
    for (const codes of result.codes.values()) for (const c of codes.values()) add(exp, c);
    for (const s of result.openSystems) exp.openSystems.add(s);
    if (result.open) exp.open = true;
  }

  /** Whether system|code is in the ValueSet; `unknown` when the server cannot tell. */
  membership(valueSetUrl: string, system: string | undefined, code: string): Membership {
    const exp = this.expand(valueSetUrl);
    return exp ? membershipIn(exp, system, code) : 'unknown';
  }

  /** Looks a code up in a held CodeSystem. */
  lookup(
    system: string,
    code: string,
  ): { display?: string; definition?: string; parents: string[]; children: string[] } | undefined {
    const cs = this.codeSystem(system);
    const c = cs?.concepts.get(code);
    if (!cs || !c) return undefined;
    const children: string[] = [];
    for (const [k, v] of cs.concepts) if (v.parents.has(code)) children.push(k);
    return { display: c.display, definition: c.definition, parents: [...c.parents], children };
  }

  /** $subsumes: how codeA relates to codeB in a held CodeSystem's hierarchy. */
  subsumes(
    system: string,
    codeA: string,
    codeB: string,
  ): 'equivalent' | 'subsumes' | 'subsumed-by' | 'not-subsumed' | undefined {
    const cs = this.codeSystem(system);
    if (!cs || !cs.concepts.has(codeA) || !cs.concepts.has(codeB)) return undefined;
    if (codeA === codeB) return 'equivalent';
    if (ancestors(cs, codeB).has(codeA)) return 'subsumes';
    if (ancestors(cs, codeA).has(codeB)) return 'subsumed-by';
    return 'not-subsumed';
  }
}

/** Whether system|code is in an expansion; `unknown` when the expansion is open for it. */
export function membershipIn(exp: Expansion, system: string | undefined, code: string): Membership {
  if (system === undefined) {
    for (const codes of exp.codes.values()) if (codes.has(code)) return 'member';
    return exp.open || exp.openSystems.size > 0 ? 'unknown' : 'not-member';
  }
  if (exp.codes.get(system)?.has(code)) return 'member';
  if (exp.openSystems.has(system)) return 'unknown';
  if (exp.open) return 'unknown';
  return 'not-member';
}

function add(exp: Expansion, c: ExpandedCode): void {
  let m = exp.codes.get(c.system);
  if (!m) {
    m = new Map();
    exp.codes.set(c.system, m);
  }
  if (!m.has(c.code)) m.set(c.code, c.display === undefined ? { system: c.system, code: c.code } : c);
}

function intersect(a: Expansion, b: Expansion): Expansion {
  const out: Expansion = { url: '', codes: new Map(), openSystems: new Set(), open: a.open && b.open };
  for (const [system, codes] of a.codes) {
    for (const c of codes.values()) {
      if (b.codes.get(system)?.has(c.code) || b.openSystems.has(system) || b.open) add(out, c);
    }
  }
  for (const [system, codes] of b.codes) {
    if (a.openSystems.has(system)) for (const c of codes.values()) add(out, c);
  }
  for (const s of a.openSystems) if (b.openSystems.has(s)) out.openSystems.add(s);
  return out;
}

export function indexCodeSystem(cs: CodeSystem): CodeSystemIndex {
  const concepts: CodeSystemIndex['concepts'] = new Map();
  const walk = (list: CodeSystemConcept[] | undefined, parent: string | undefined): void => {
    for (const c of list ?? []) {
      let entry = concepts.get(c.code);
      if (!entry) {
        entry = { display: c.display, definition: c.definition, parents: new Set(), concept: c };
        concepts.set(c.code, entry);
      }
      if (parent) entry.parents.add(parent);
      for (const p of c.property ?? []) {
        if ((p.code === 'parent' || p.code === 'subsumedBy') && p.valueCode) entry.parents.add(p.valueCode);
      }
      walk(c.concept, c.code);
    }
  };
  walk(cs.concept, undefined);
  return {
    url: cs.url ?? '',
    complete: cs.content === 'complete',
    concepts,
    caseSensitive: cs.caseSensitive !== false,
  };
}

export function ancestors(cs: CodeSystemIndex, code: string): Set<string> {
  const out = new Set<string>();
  const stack = [...(cs.concepts.get(code)?.parents ?? [])];
  while (stack.length > 0) {
    const p = stack.pop() as string;
    if (out.has(p)) continue;
    out.add(p);
    for (const q of cs.concepts.get(p)?.parents ?? []) stack.push(q);
  }
  return out;
}

export function descendants(cs: CodeSystemIndex, code: string, self: boolean): Set<string> {
  const out = new Set<string>();
  for (const c of cs.concepts.keys()) {
    if (c === code ? self : ancestors(cs, c).has(code)) out.add(c);
  }
  return out;
}

/** Codes of a held CodeSystem matching one compose filter; undefined when the filter is not supported. */
function filterCodes(
  cs: CodeSystemIndex,
  property: string,
  op: string,
  value: string,
): Set<string> | undefined {
  if (property === 'concept' || property === 'code') {
    if (op === 'is-a') return descendants(cs, value, true);
    if (op === 'descendent-of') return descendants(cs, value, false);
    if (op === 'is-not-a') {
      const below = descendants(cs, value, true);
      return new Set([...cs.concepts.keys()].filter((c) => !below.has(c)));
    }
    if (op === 'in') return new Set(value.split(',').filter((c) => cs.concepts.has(c)));
    if (op === 'regex') {
      const re = new RegExp(`^(?:${value})$`);
      return new Set([...cs.concepts.keys()].filter((c) => re.test(c)));
    }
    if (op === '=') return new Set(cs.concepts.has(value) ? [value] : []);
    return undefined;
  }
  if (op === '=' || op === 'in') {
    const values = new Set(op === 'in' ? value.split(',') : [value]);
    const out = new Set<string>();
    for (const [code, c] of cs.concepts) {
      for (const p of c.concept.property ?? []) {
        if (p.code !== property) continue;
        const v =
          p.valueCode ?? p.valueString ?? (p.valueBoolean === undefined ? undefined : String(p.valueBoolean));
        if (v !== undefined && values.has(v)) out.add(code);
      }
    }
    return out;
  }
  return undefined;
}
