import type { Request, Response } from 'express';
import type {
  CapabilityStatement,
  CapabilityStatementRestResource,
  CapabilityStatementRestResourceSearchParam,
} from 'fhir/r4';
import { restSecurity } from '../auth/discovery';
import type { DefinitionsRegistry } from '../fhir/definitions';
import { sendJson } from '../http/respond';
import type { AppContext } from './context';
import { resourceOperations, systemOperations } from '../operations/export-capability';
import { validationOperations } from '../operations/validate';
import { viewOperations } from '../operations/view-run';
import { auditOperations, restrictAuditResource } from '../audit/capability';

export const SERVER_NAME = 'fhir-r4-server';
export const SERVER_VERSION = '0.1.0';

/** What the server implements beyond the single-resource interactions; the statement never claims more. */
export interface Features {
  /** Search parameter types the search module implements. */
  searchParamTypes: ReadonlySet<string>;
  include: boolean;
  systemSearch: boolean;
}

function searchParams(
  registry: DefinitionsRegistry,
  type: string,
  features: Features,
): CapabilityStatementRestResourceSearchParam[] {
  const out: CapabilityStatementRestResourceSearchParam[] = [];
  for (const p of registry.searchParametersFor(type).values()) {
    if (!features.searchParamTypes.has(p.type)) continue;
    const sp: CapabilityStatementRestResourceSearchParam = { name: p.code, type: p.type };
    if (p.url) sp.definition = p.url;
    if (p.description) sp.documentation = p.description.split('\n')[0];
    out.push(sp);
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : 1));
}

/** The CapabilityStatement (capabilitystatement.html), generated from what is loaded and implemented. */
export function capabilityStatement(
  ctx: AppContext,
  features: Features,
  startedAt: string,
): CapabilityStatement {
  const resources: CapabilityStatementRestResource[] = ctx.registry.resourceTypes.map((type) => {
    const r: CapabilityStatementRestResource = {
      type: type as CapabilityStatementRestResource['type'],
      // A type the server adds to R4 (ViewDefinition) names its IG's logical model.
      profile: ctx.registry.logicalType(type)?.profile ?? `http://hl7.org/fhir/StructureDefinition/${type}`,
      interaction: [
        { code: 'read' },
        { code: 'vread' },
        { code: 'update' },
        { code: 'patch' },
        { code: 'delete' },
        { code: 'history-instance' },
        { code: 'history-type' },
        { code: 'create' },
        { code: 'search-type' },
      ],
      versioning: 'versioned-update',
      readHistory: true,
      updateCreate: true,
      conditionalCreate: true,
      conditionalRead: 'full-support',
      conditionalUpdate: true,
      conditionalDelete: 'single',
      searchParam: searchParams(ctx.registry, type, features),
    };
    // The profiles $validate can check against (core ones such as vital signs, and PROFILES_DIR).
    const profiles = ctx.registry.profilesOf(type);
    if (profiles.length > 0) r.supportedProfile = profiles;
    if (features.include) {
      const refs = [...ctx.registry.searchParametersFor(type).values()].filter((p) => p.type === 'reference');
      r.searchInclude = ['*', ...refs.map((p) => `${type}:${p.code}`)];
    }
    const operations = [
      ...resourceOperations(type),
      ...validationOperations(type),
      ...auditOperations(type),
      ...viewOperations(type),
    ];
    if (operations.length > 0) r.operation = operations;
    return restrictAuditResource(r);
  });
  const systemInteractions: Array<{ code: 'history-system' | 'search-system' | 'batch' | 'transaction' }> = [
    { code: 'history-system' },
  ];
  if (features.systemSearch) systemInteractions.push({ code: 'search-system' });
  // POST [base] (interactions/bundle.ts); transactions only where the store can commit atomically.
  systemInteractions.push({ code: 'batch' });
  if (ctx.store.backend.supportsTransactions) systemInteractions.push({ code: 'transaction' });
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: startedAt,
    kind: 'instance',
    software: { name: SERVER_NAME, version: SERVER_VERSION },
    implementation: {
      description: `FHIR R4 server (${ctx.store.backend.kind} store)`,
      url: ctx.config.baseUrl,
    },
    fhirVersion: '4.0.1',
    format: ['application/fhir+json', 'application/json'],
    patchFormat: ['application/json-patch+json'],
    rest: [
      {
        mode: 'server',
        ...(ctx.config.auth.smart ? { security: restSecurity(ctx.config.auth.smart) } : {}),
        resource: resources,
        interaction: systemInteractions,
        operation: systemOperations(),
      },
    ],
  };
}

export function metadataHandler(ctx: AppContext, features: Features) {
  const startedAt = new Date().toISOString();
  let cached: CapabilityStatement | undefined;
  return (req: Request, res: Response): void => {
    cached ??= capabilityStatement(ctx, features, startedAt);
    sendJson(req, res, 200, cached);
  };
}
