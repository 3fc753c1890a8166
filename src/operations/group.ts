import type { Group } from 'fhir/r4';
import { restrict, type AccessPolicy } from '../auth/policy';
import { badRequest, notFound } from '../fhir/errors';
import { ID_PATTERN } from '../fhir/resource';
import type { AppContext } from '../interactions/context';

/**
 * The logical ids of the Patients a Group lists as members (Group.member.entity), for group-level
 * bulk and view exports. `ref` is `Group/id`, `id`, or this server's absolute URL of the Group;
 * members are `Patient/id` references, relative or on this server. Reading the Group takes read
 * access to it: a Group the caller cannot see answers 404, like one that does not exist.
 */
export async function groupMembers(ctx: AppContext, policy: AccessPolicy, ref: string): Promise<string[]> {
  const base = `${ctx.config.baseUrl}/`;
  const local = (r: string): string => (r.startsWith(base) ? r.slice(base.length) : r);
  const id = local(ref).replace(/^Group\//, '');
  if (!ID_PATTERN.test(id)) throw badRequest(`group ${ref.slice(0, 80)} is not a Group of this server`);
  policy.require('Group', 'r');
  const filter = restrict({ _id: id, deleted: false }, policy, 'Group', 'r');
  const [doc] = filter ? await ctx.store.find('Group', filter, { limit: 1 }) : [];
  if (!doc?.resource) throw notFound(`Group/${id} does not exist`);
  const out = new Set<string>();
  for (const m of (doc.resource as Group).member ?? []) {
    const hit = /^Patient\/([A-Za-z0-9\-.]{1,64})$/.exec(local(m.entity?.reference ?? ''));
    if (hit) out.add(hit[1] as string);
  }
  return [...out];
}
