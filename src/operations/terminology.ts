import type { Request, Response } from 'express';
import type { Coding, Parameters, ParametersParameter, ValueSet, ValueSetExpansionContains } from 'fhir/r4';
import { noteAccess } from '../audit/note';
import { accessOf } from '../auth/policy';
import { FhirError, badRequest, issue, notFound } from '../fhir/errors';
import { checkId } from '../fhir/resource';
import { sendJson } from '../http/respond';
import type { AppContext } from '../interactions/context';
import {
  type Expansion,
  membershipIn,
  terminologyOf,
  type TerminologyService,
} from '../validation/terminology';
import { operationInput, paramInt, paramString } from './params';

/** Terminology operations over the ValueSets and CodeSystems the server holds (terminology-service.html). */

const MAX_EXPANSION = 10_000;

function terminology(ctx: AppContext): TerminologyService {
  return terminologyOf(ctx.registry);
}

function notSupported422(msg: string): FhirError {
  return new FhirError(422, [issue('not-supported', msg)]);
}

/** The ValueSet an operation names: by id (instance level, from the store), url, or inline resource. */
async function targetValueSet(
  ctx: AppContext,
  req: Request,
  res: Response,
  params: ParametersParameter[],
): Promise<{ vs: ValueSet; expansion: Expansion }> {
  const t = terminology(ctx);
  if (req.params.id !== undefined) {
    const id = checkId(req.params.id as string);
    const doc = await ctx.store.read('ValueSet', id);
    if (!doc || doc.deleted || !doc.resource || !accessOf(res).canSee(doc.resource, 'r'))
      throw notFound(`ValueSet/${id} does not exist`);
    const vs = doc.resource as ValueSet;
    return { vs, expansion: t.expandValueSet(vs) };
  }
  const inline = params.find((p) => p.name === 'valueSet')?.resource;
  if (inline) {
    if (inline.resourceType !== 'ValueSet') throw badRequest('Parameter valueSet must be a ValueSet');
    const vs = inline as ValueSet;
    return { vs, expansion: t.expandValueSet(vs) };
  }
  const url = paramString(params, 'url');
  if (!url)
    throw badRequest('Name the ValueSet: ValueSet/[id]/$..., a url parameter, or a valueSet resource');
  const vs = ctx.registry.valueSet(url);
  const expansion = t.expand(url);
  if (!vs || !expansion) throw notFound(`ValueSet ${url} is not known to this server`);
  return { vs, expansion };
}

/** ValueSet/$expand with filter, offset and count. */
export async function expand(ctx: AppContext, req: Request, res: Response): Promise<void> {
  noteAccess(res, { interaction: 'operation', operation: 'expand', resourceType: 'ValueSet' });
  accessOf(res).require('ValueSet', 'r');
  const { params } = await operationInput(ctx, req, false);
  const { vs, expansion } = await targetValueSet(ctx, req, res, params);
  if (expansion.open)
    throw notSupported422(
      `ValueSet ${vs.url ?? ''} includes a ValueSet this server does not hold; it cannot be expanded`,
    );
  if (expansion.openSystems.size > 0) {
    throw notSupported422(
      `ValueSet ${vs.url ?? ''} includes all or part of ${[...expansion.openSystems].join(', ')}, which this server does not hold in full; it cannot be expanded`,
    );
  }
  const filter = paramString(params, 'filter')?.toLowerCase();
  const offset = paramInt(params, 'offset') ?? 0;
  const count = paramInt(params, 'count');
  const all: ValueSetExpansionContains[] = [];
  for (const codes of expansion.codes.values()) {
    for (const c of codes.values()) {
      if (
        filter &&
        !c.code.toLowerCase().includes(filter) &&
        !(c.display ?? '').toLowerCase().includes(filter)
      )
        continue;
      const item: ValueSetExpansionContains = { system: c.system, code: c.code };
      if (c.display) item.display = c.display;
      all.push(item);
    }
  }
  if (count === undefined && all.length - offset > MAX_EXPANSION) {
    throw new FhirError(422, [
      issue('too-costly', `The expansion has ${all.length} codes; page it with count and offset`),
    ]);
  }
  const page = all.slice(offset, count === undefined ? undefined : offset + count);
  const parameter: NonNullable<ValueSet['expansion']>['parameter'] = [
    { name: 'offset', valueInteger: offset },
  ];
  if (count !== undefined) parameter.push({ name: 'count', valueInteger: count });
  if (filter) parameter.push({ name: 'filter', valueString: filter });
  const out: ValueSet = {
    resourceType: 'ValueSet',
    status: vs.status,
    expansion: {
      timestamp: new Date().toISOString(),
      total: all.length,
      offset,
      parameter,
      contains: page,
    },
  };
  if (vs.id) out.id = vs.id;
  if (vs.url) out.url = vs.url;
  if (vs.version) out.version = vs.version;
  if (vs.name) out.name = vs.name;
  sendJson(req, res, 200, out);
}

/** The codings a $validate-code call names: code+system, coding, or codeableConcept. */
function codingsOf(params: ParametersParameter[], defaultSystem?: string): Coding[] {
  const code = paramString(params, 'code');
  const out: Coding[] = [];
  if (code !== undefined) {
    const c: Coding = { code };
    const system = paramString(params, 'system') ?? defaultSystem;
    if (system) c.system = system;
    const display = paramString(params, 'display');
    if (display) c.display = display;
    out.push(c);
  }
  const coding = params.find((p) => p.name === 'coding')?.valueCoding;
  if (coding) out.push(coding);
  const cc = params.find((p) => p.name === 'codeableConcept')?.valueCodeableConcept;
  if (cc) out.push(...(cc.coding ?? []));
  if (out.length === 0) throw badRequest('Name a code (code and system), a coding, or a codeableConcept');
  return out;
}

function result(ok: boolean, message?: string, display?: string): Parameters {
  const parameter: ParametersParameter[] = [{ name: 'result', valueBoolean: ok }];
  if (message) parameter.push({ name: 'message', valueString: message });
  if (display) parameter.push({ name: 'display', valueString: display });
  return { resourceType: 'Parameters', parameter };
}

/** ValueSet/$validate-code. Codes the server cannot judge (systems it does not hold) give 422. */
export async function valueSetValidateCode(ctx: AppContext, req: Request, res: Response): Promise<void> {
  noteAccess(res, { interaction: 'operation', operation: 'validate-code', resourceType: 'ValueSet' });
  accessOf(res).require('ValueSet', 'r');
  const { params } = await operationInput(ctx, req, false);
  const { vs, expansion } = await targetValueSet(ctx, req, res, params);
  const codings = codingsOf(params);
  let unknown: Coding | undefined;
  for (const c of codings) {
    const code = c.code ?? '';
    const m = membershipIn(expansion, c.system || undefined, code);
    if (m === 'member') {
      const display = c.system ? expansion.codes.get(c.system)?.get(code)?.display : undefined;
      if (c.display && display && c.display !== display) {
        sendJson(
          req,
          res,
          200,
          result(true, `The display "${c.display}" differs from "${display}"`, display),
        );
      } else sendJson(req, res, 200, result(true, undefined, display));
      return;
    }
    if (m === 'unknown') unknown = c;
  }
  if (unknown) {
    throw notSupported422(
      `This server cannot tell whether ${unknown.system ?? ''}#${unknown.code ?? ''} is in ${vs.url ?? 'the ValueSet'} (it does not hold that code system in full)`,
    );
  }
  const shown = codings.map((c) => `${c.system ?? ''}#${c.code ?? ''}`).join(', ');
  sendJson(req, res, 200, result(false, `${shown} is not in the value set ${vs.url ?? ''}`));
}

function heldSystem(ctx: AppContext, params: ParametersParameter[], name: 'system' | 'url') {
  const url = paramString(params, name) ?? paramString(params, name === 'system' ? 'url' : 'system');
  if (!url) throw badRequest(`Parameter ${name} is required`);
  const cs = terminology(ctx).codeSystem(url);
  if (!cs) throw notFound(`CodeSystem ${url} is not known to this server`);
  return cs;
}

/** CodeSystem/$validate-code against a CodeSystem held in full. */
export async function codeSystemValidateCode(ctx: AppContext, req: Request, res: Response): Promise<void> {
  noteAccess(res, { interaction: 'operation', operation: 'validate-code', resourceType: 'CodeSystem' });
  accessOf(res).require('CodeSystem', 'r');
  const { params } = await operationInput(ctx, req, false);
  const cs = heldSystem(ctx, params, 'url');
  const codings = codingsOf(params, cs.url);
  for (const c of codings) {
    if (c.system && c.system !== cs.url) continue;
    const hit = cs.concepts.get(c.code ?? '');
    if (hit) {
      sendJson(req, res, 200, result(true, undefined, hit.display));
      return;
    }
  }
  if (!cs.complete)
    throw notSupported422(`CodeSystem ${cs.url} is not held in full here (content is not complete)`);
  sendJson(
    req,
    res,
    200,
    result(false, `${codings.map((c) => c.code).join(', ')} is not a code of ${cs.url}`),
  );
}

/** CodeSystem/$lookup: display, definition, parents and children of a code. */
export async function lookup(ctx: AppContext, req: Request, res: Response): Promise<void> {
  noteAccess(res, { interaction: 'operation', operation: 'lookup', resourceType: 'CodeSystem' });
  accessOf(res).require('CodeSystem', 'r');
  const { params } = await operationInput(ctx, req, false);
  const coding = params.find((p) => p.name === 'coding')?.valueCoding;
  const system = coding?.system ?? paramString(params, 'system');
  const code = coding?.code ?? paramString(params, 'code');
  if (!system || !code) throw badRequest('Parameters system and code (or coding) are required');
  const cs = ctx.registry.codeSystem(system);
  const found = terminology(ctx).lookup(system, code);
  if (!cs || !found)
    throw notFound(
      cs ? `${code} is not a code of ${system}` : `CodeSystem ${system} is not known to this server`,
    );
  const parameter: ParametersParameter[] = [{ name: 'name', valueString: cs.name ?? cs.title ?? system }];
  if (cs.version) parameter.push({ name: 'version', valueString: cs.version });
  parameter.push({ name: 'display', valueString: found.display ?? code });
  if (found.definition) parameter.push({ name: 'definition', valueString: found.definition });
  const related = [
    ...found.parents.map((p) => ['parent', p] as const),
    ...found.children.map((c) => ['child', c] as const),
  ];
  for (const [property, value] of related)
    parameter.push({
      name: 'property',
      part: [
        { name: 'code', valueCode: property },
        { name: 'value', valueCode: value },
      ],
    });
  sendJson(req, res, 200, { resourceType: 'Parameters', parameter } satisfies Parameters);
}

/** CodeSystem/$subsumes: equivalent, subsumes, subsumed-by or not-subsumed. */
export async function subsumes(ctx: AppContext, req: Request, res: Response): Promise<void> {
  noteAccess(res, { interaction: 'operation', operation: 'subsumes', resourceType: 'CodeSystem' });
  accessOf(res).require('CodeSystem', 'r');
  const { params } = await operationInput(ctx, req, false);
  const a = params.find((p) => p.name === 'codingA')?.valueCoding;
  const b = params.find((p) => p.name === 'codingB')?.valueCoding;
  const system = paramString(params, 'system') ?? a?.system ?? b?.system;
  const codeA = a?.code ?? paramString(params, 'codeA');
  const codeB = b?.code ?? paramString(params, 'codeB');
  if (!system || !codeA || !codeB)
    throw badRequest('Parameters system, codeA and codeB (or codingA and codingB) are required');
  if ((a?.system && a.system !== system) || (b?.system && b.system !== system)) {
    throw badRequest('codingA and codingB must be from the same system');
  }
  if (!terminology(ctx).codeSystem(system))
    throw notFound(`CodeSystem ${system} is not known to this server`);
  const outcome = terminology(ctx).subsumes(system, codeA, codeB);
  if (!outcome) throw notFound(`${codeA} or ${codeB} is not a code of ${system}`);
  sendJson(req, res, 200, {
    resourceType: 'Parameters',
    parameter: [{ name: 'outcome', valueCode: outcome }],
  } satisfies Parameters);
}
