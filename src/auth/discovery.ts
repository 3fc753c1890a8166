import type { CapabilityStatementRestSecurity } from 'fhir/r4';
import type { SmartConfig } from './config';

/**
 * GET [base]/.well-known/smart-configuration (SMART App Launch 2.0, conformance.html): the
 * authorization server's endpoints as configured, and what this resource server enforces. The
 * capabilities listed are the ones the resource server implements itself (scopes v1 and v2,
 * patient and user level); the authorization server's own features are its to advertise.
 */
export function smartConfiguration(smart: SmartConfig): Record<string, unknown> {
  const doc: Record<string, unknown> = { issuer: smart.issuer };
  if (smart.jwksUri) doc.jwks_uri = smart.jwksUri;
  if (smart.authorizeUrl) doc.authorization_endpoint = smart.authorizeUrl;
  doc.token_endpoint = smart.tokenUrl;
  doc.grant_types_supported = smart.authorizeUrl
    ? ['authorization_code', 'client_credentials']
    : ['client_credentials'];
  doc.scopes_supported = [
    'openid',
    'fhirUser',
    'launch',
    'launch/patient',
    'offline_access',
    'patient/*.rs',
    'patient/*.cruds',
    'user/*.rs',
    'user/*.cruds',
    'system/*.rs',
    'system/*.cruds',
  ];
  if (smart.authorizeUrl) {
    doc.response_types_supported = ['code'];
    doc.code_challenge_methods_supported = ['S256'];
  }
  doc.capabilities = [
    ...(smart.authorizeUrl ? ['launch-standalone', 'context-standalone-patient'] : []),
    'permission-patient',
    'permission-user',
    'permission-v1',
    'permission-v2',
  ];
  return doc;
}

/** CapabilityStatement.rest.security for AUTH=smart (the SMART-on-FHIR service and oauth-uris). */
export function restSecurity(smart: SmartConfig): CapabilityStatementRestSecurity {
  const uris = [{ url: 'token', valueUri: smart.tokenUrl }];
  if (smart.authorizeUrl) uris.unshift({ url: 'authorize', valueUri: smart.authorizeUrl });
  return {
    cors: true,
    service: [
      {
        coding: [
          { system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'SMART-on-FHIR' },
        ],
        text: 'OAuth2 bearer tokens, SMART App Launch 2.0 (scopes v1 and v2)',
      },
    ],
    extension: [
      { url: 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris', extension: uris },
    ],
    description: 'Every request except metadata and .well-known/smart-configuration needs a bearer token.',
  };
}
