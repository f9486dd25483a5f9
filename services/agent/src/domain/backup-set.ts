import { setIdOf } from '@volback/contracts';
import {
  resolveConsistency,
  type ConsistencyCandidate,
  type ConsistencyPlan,
  type ConsistencyStep,
  type HookPermissions,
} from './consistency.ts';

/** Labels that order a set's containers (README, "Backup sets"). */
export const SET_ORDER_LABELS = {
  /** A whole number; lower stops earlier and starts later. Default 0. */
  order: 'volback.set.order',
  /** Compose's own: `db:service_started:false,cache:service_healthy:true`. */
  dependsOn: 'com.docker.compose.depends_on',
  /** Compose's own: the service a container runs. */
  service: 'com.docker.compose.service',
} as const;

/** A container of a set, with the volumes it mounts. */
export interface SetContainer extends ConsistencyCandidate {
  readonly volumes: readonly string[];
}

/** What a set holds on this host now. */
export interface SetMembers {
  readonly containers: readonly SetContainer[];
  /** Sorted by name. */
  readonly volumes: readonly string[];
}

/**
 * The members of `setId` among the host's containers and volumes: the containers labelled into
 * the set, every volume they mount, and the volumes labelled into it that no container uses.
 */
export function setMembers(
  setId: string,
  containers: readonly SetContainer[],
  volumes: readonly { readonly name: string; readonly labels: Readonly<Record<string, string>> }[],
): SetMembers {
  const inSet = containers.filter((c) => setIdOf(c.labels) === setId);
  const names = new Set(inSet.flatMap((c) => c.volumes));
  for (const volume of volumes) if (setIdOf(volume.labels) === setId) names.add(volume.name);
  return { containers: inSet, volumes: [...names].sort() };
}

/** The services a container's compose `depends_on` label names. */
function dependencies(labels: Readonly<Record<string, string>>): string[] {
  const raw = labels[SET_ORDER_LABELS.dependsOn] ?? '';
  return raw
    .split(',')
    .map((entry) => entry.split(':', 1)[0]!.trim())
    .filter(Boolean);
}

function explicitOrder(labels: Readonly<Record<string, string>>): number {
  const raw = labels[SET_ORDER_LABELS.order]?.trim();
  return raw && /^-?\d{1,6}$/.test(raw) ? Number(raw) : 0;
}

/**
 * The order a set's containers stop in: dependents first, what they depend on (databases) last;
 * they start again in the reverse order. A container's depth is 0 when no container of the set
 * depends on it (compose `depends_on`), else one more than the deepest of those that do. Sorted by
 * `volback.set.order` (lower first), then depth, then name.
 */
export function stopOrder<C extends ConsistencyCandidate>(containers: readonly C[]): C[] {
  const byService = new Map<string, C[]>();
  for (const c of containers) {
    const service = c.labels[SET_ORDER_LABELS.service];
    if (service) byService.set(service, [...(byService.get(service) ?? []), c]);
  }
  const dependents = new Map<C, C[]>(containers.map((c) => [c, []]));
  for (const c of containers) {
    for (const service of dependencies(c.labels)) {
      for (const target of byService.get(service) ?? []) if (target !== c) dependents.get(target)!.push(c);
    }
  }
  const depth = new Map<C, number>();
  const depthOf = (c: C, seen: ReadonlySet<C>): number => {
    const known = depth.get(c);
    if (known !== undefined) return known;
    // A cycle counts as no dependency, so every container gets a depth.
    const above = dependents.get(c)!.filter((d) => !seen.has(d));
    const value = above.length ? 1 + Math.max(...above.map((d) => depthOf(d, new Set([...seen, c])))) : 0;
    depth.set(c, value);
    return value;
  };
  return [...containers].sort(
    (a, b) =>
      explicitOrder(a.labels) - explicitOrder(b.labels) ||
      depthOf(a, new Set()) - depthOf(b, new Set()) ||
      a.name.localeCompare(b.name),
  );
}

/**
 * One plan for the whole set: each container's own labels decide what is done to it (as for a
 * single volume), in {@link stopOrder}; hooks run first, then stops and pauses. A bad label
 * throws, naming the container.
 */
export function setConsistencyPlan(
  containers: readonly SetContainer[],
  permissions: HookPermissions,
): ConsistencyPlan {
  const steps: ConsistencyStep[] = [];
  const warnings: string[] = [];
  for (const container of stopOrder(containers)) {
    const own = resolveConsistency({ mode: 'none' }, [container], permissions);
    steps.push(...own.steps);
    warnings.push(...own.warnings);
  }
  const ordered = [...steps.filter((s) => s.kind === 'hooks'), ...steps.filter((s) => s.kind !== 'hooks')];
  const kinds = new Set(ordered.map((s) => s.kind));
  const mode = kinds.size === 0 ? 'none' : kinds.size === 1 ? [...kinds][0]! : 'mixed';
  return { mode, source: 'labels', steps: ordered, warnings };
}
