import type { consistency } from '@volback/contracts';
import type { z } from 'zod';
import { ConsistencyLabelError, HookNotAllowedError } from '../errors.ts';
import type { ContainerState } from './inventory.ts';

/** What a `BackupVolume` command asks for (`{ mode: 'none' }` leaves the choice to labels). */
export type CommandConsistency = z.output<typeof consistency>;

/** The container labels that ask for consistency (README, "Consistency labels"). */
export const CONSISTENCY_LABELS = {
  /** `none`, `stop`, `pause` or `hooks`. */
  mode: 'volback.consistency',
  /** Seconds `docker stop` waits before it kills (`stop` mode). */
  stopTimeout: 'volback.stop.timeout',
  /** Shell command run with `sh -c` in the container before the backup. */
  hooksPre: 'volback.hooks.pre',
  /** Shell command run with `sh -c` in the container after the backup, on every path. */
  hooksPost: 'volback.hooks.post',
  /** Seconds each hook may run. */
  hooksTimeout: 'volback.hooks.timeout',
  /** `true`: hooks sent with a command (an API policy) may run in this container. */
  hooksAllow: 'volback.hooks.allow',
} as const;

/** Defaults, the same as the command's (`consistency` in `@volback/contracts`). */
export const CONSISTENCY_DEFAULTS = { stopTimeoutSeconds: 30, hookTimeoutSeconds: 300 } as const;

/** Longest timeout a label may ask for: one day, as in the command. */
const MAX_SECONDS = 86_400;

/** A container that uses the volume, as far as the decision needs it. */
export interface ConsistencyCandidate {
  readonly name: string;
  readonly id?: string;
  readonly labels: Readonly<Record<string, string>>;
  /** When known, a container that is not running is neither stopped, paused nor hooked. */
  readonly state?: ContainerState;
}

/** A container a step acts on: by id when known (names change), named for people. */
export interface ContainerRef {
  readonly name: string;
  readonly id?: string;
}

/** One thing to do to one container around a backup. */
export type ConsistencyStep =
  /** `docker stop` (with this timeout) before; start again after. */
  | { readonly kind: 'stop'; readonly container: ContainerRef; readonly timeoutSeconds: number }
  /** `docker pause` (cgroup freezer) before; unpause after. */
  | { readonly kind: 'pause'; readonly container: ContainerRef }
  /** `sh -c <each pre>` before, in order; `sh -c <each post>` after. */
  | {
      readonly kind: 'hooks';
      readonly container: ContainerRef;
      readonly pre: readonly string[];
      readonly post: readonly string[];
      /** For each command. */
      readonly timeoutSeconds: number;
    };

/**
 * How a backup keeps its volume consistent. Hooks come first (a dump needs its database
 * running), then stops and pauses; resuming goes the other way.
 */
export interface ConsistencyPlan {
  /** The command's mode, or what the labels asked for (`mixed` when containers disagree). */
  readonly mode: 'none' | 'stop' | 'pause' | 'hooks' | 'mixed';
  /** `command` when the command chose a mode other than `none`; `labels` otherwise. */
  readonly source: 'command' | 'labels';
  readonly steps: readonly ConsistencyStep[];
  /** What was left out and why (a container not running, a label of another mode). */
  readonly warnings: readonly string[];
}

/**
 * Where hooks sent with a command may run: only in a container that mounts the volume and that
 * opted in, by its own label `volback.hooks.allow=true` or by the agent's allow-list. Hooks a
 * container's own labels define need no more: whoever sets a container's labels runs it.
 */
export interface HookPermissions {
  /** The volume being backed up, named in a refusal. */
  readonly volumeName: string;
  /** `VOLBACK_AGENT_HOOK_CONTAINERS`: container names, or ids (a prefix of 12 digits or more). */
  readonly allowed: readonly string[];
}

const TRUE_VALUES = new Set(['true', 'yes', '1', 'on']);
const FALSE_VALUES = new Set(['false', 'no', '0', 'off']);

function isListed(container: ConsistencyCandidate, allowed: readonly string[]): boolean {
  return allowed.some(
    (entry) =>
      entry === container.name ||
      (container.id !== undefined && /^[0-9a-f]{12,64}$/.test(entry) && container.id.startsWith(entry)),
  );
}

/** Whether hooks sent with a command may run in this container; a bad label value throws. */
function acceptsCommandHooks(container: ConsistencyCandidate, allowed: readonly string[]): boolean {
  const raw = container.labels[CONSISTENCY_LABELS.hooksAllow];
  const value = raw?.trim().toLowerCase();
  if (value !== undefined && !TRUE_VALUES.has(value) && !FALSE_VALUES.has(value)) {
    throw new ConsistencyLabelError(
      container.name,
      CONSISTENCY_LABELS.hooksAllow,
      `is ${JSON.stringify(raw)}: expected true or false`,
    );
  }
  return (value !== undefined && TRUE_VALUES.has(value)) || isListed(container, allowed);
}

/** The container a command's hooks name, once it is known to be allowed; else throws. */
function commandHookContainer(
  named: string,
  containers: readonly ConsistencyCandidate[],
  permissions: HookPermissions,
): ConsistencyCandidate {
  const known = containers.find((c) => c.name === named || (c.id !== undefined && c.id === named));
  if (!known) {
    throw new HookNotAllowedError(
      named,
      `does not mount volume ${permissions.volumeName}: hooks run only in a container that mounts the volume being backed up`,
    );
  }
  if (!acceptsCommandHooks(known, permissions.allowed)) {
    throw new HookNotAllowedError(
      known.name,
      `has not opted in to hooks sent with a command: label it ${CONSISTENCY_LABELS.hooksAllow}=true, ` +
        'or list it in VOLBACK_AGENT_HOOK_CONTAINERS on the agent',
    );
  }
  return known;
}

function refOf(container: ConsistencyCandidate): ContainerRef {
  return container.id ? { name: container.name, id: container.id } : { name: container.name };
}

function isRunning(container: ConsistencyCandidate): boolean {
  return container.state === undefined || container.state === 'running';
}

function seconds(container: string, label: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const value = raw.trim();
  const parsed = Number(value);
  if (!/^\d+$/.test(value) || parsed < 1 || parsed > MAX_SECONDS) {
    throw new ConsistencyLabelError(
      container,
      label,
      `is ${JSON.stringify(raw)}: not a whole number of seconds from 1 to ${MAX_SECONDS}`,
    );
  }
  return parsed;
}

function hookCommand(container: string, label: string, raw: string | undefined): string[] {
  if (raw === undefined) return [];
  if (raw.trim() === '') throw new ConsistencyLabelError(container, label, 'is empty: give a shell command');
  return [raw];
}

/** What one container's labels ask for; throws {@link ConsistencyLabelError} on a bad value. */
function stepFromLabels(container: ConsistencyCandidate, warnings: string[]): ConsistencyStep | undefined {
  const L = CONSISTENCY_LABELS;
  const labels = container.labels;
  const name = container.name;
  // `volback.hooks.allow` is about hooks sent with a command; alone it asks for nothing here.
  const hookLabelsSet = [L.hooksPre, L.hooksPost, L.hooksTimeout].filter((l) => labels[l] !== undefined);
  const rawMode = labels[L.mode];
  // Hook labels alone ask for hooks: nobody writes a pre hook to have it ignored.
  const mode = rawMode === undefined ? (hookLabelsSet.length > 0 ? 'hooks' : 'none') : rawMode.trim();
  if (mode !== 'none' && mode !== 'stop' && mode !== 'pause' && mode !== 'hooks') {
    throw new ConsistencyLabelError(
      name,
      L.mode,
      `is ${JSON.stringify(rawMode)}: expected none, stop, pause or hooks`,
    );
  }
  const ignored = [
    ...(mode !== 'stop' && labels[L.stopTimeout] !== undefined ? [L.stopTimeout] : []),
    ...(mode !== 'hooks' ? hookLabelsSet : []),
  ];
  if (ignored.length > 0) warnings.push(`${name}: ${ignored.join(', ')} ignored (${L.mode} is ${mode})`);

  switch (mode) {
    case 'none':
      return undefined;
    case 'stop': {
      const timeoutSeconds = seconds(
        name,
        L.stopTimeout,
        labels[L.stopTimeout],
        CONSISTENCY_DEFAULTS.stopTimeoutSeconds,
      );
      if (!isRunning(container)) {
        warnings.push(`${name}: not stopped, it is ${container.state}`);
        return undefined;
      }
      return { kind: 'stop', container: refOf(container), timeoutSeconds };
    }
    case 'pause':
      if (!isRunning(container)) {
        warnings.push(`${name}: not paused, it is ${container.state}`);
        return undefined;
      }
      return { kind: 'pause', container: refOf(container) };
    case 'hooks': {
      const pre = hookCommand(name, L.hooksPre, labels[L.hooksPre]);
      const post = hookCommand(name, L.hooksPost, labels[L.hooksPost]);
      const timeoutSeconds = seconds(
        name,
        L.hooksTimeout,
        labels[L.hooksTimeout],
        CONSISTENCY_DEFAULTS.hookTimeoutSeconds,
      );
      if (pre.length === 0 && post.length === 0) {
        throw new ConsistencyLabelError(
          name,
          L.mode,
          `is hooks but neither ${L.hooksPre} nor ${L.hooksPost} is set`,
        );
      }
      if (!isRunning(container)) {
        // A container that is not running has its files at rest; there is nothing to exec into.
        warnings.push(`${name}: hooks not run, it is ${container.state}`);
        return undefined;
      }
      return { kind: 'hooks', container: refOf(container), pre, post, timeoutSeconds };
    }
  }
}

function summaryMode(steps: readonly ConsistencyStep[]): ConsistencyPlan['mode'] {
  const kinds = new Set(steps.map((s) => s.kind));
  if (kinds.size === 0) return 'none';
  return kinds.size === 1 ? [...kinds][0]! : 'mixed';
}

/**
 * Decides how to keep a volume consistent during its backup. `containers` are those that mount
 * the volume, and nothing is done to any other. The command's `consistency` wins unless it is
 * `{ mode: 'none' }`; then the `volback.*` labels of the containers decide, each for itself.
 * Hooks sent with a command run only where {@link HookPermissions} allow, else
 * {@link HookNotAllowedError}. Only running containers are stopped, paused or hooked (when their
 * state is given; the quiescer checks again when it acts). A bad label value throws
 * {@link ConsistencyLabelError} naming the container, the label and why.
 */
export function resolveConsistency(
  command: CommandConsistency,
  containers: readonly ConsistencyCandidate[],
  permissions: HookPermissions,
): ConsistencyPlan {
  const warnings: string[] = [];
  if (command.mode !== 'none') {
    const steps: ConsistencyStep[] = [];
    if (command.mode === 'hooks') {
      const known = commandHookContainer(command.container, containers, permissions);
      steps.push({
        kind: 'hooks',
        container: refOf(known),
        pre: command.pre ?? [],
        post: command.post ?? [],
        timeoutSeconds: command.timeoutSeconds,
      });
    } else {
      for (const container of containers) {
        if (!isRunning(container)) {
          warnings.push(
            `${container.name}: not ${command.mode === 'stop' ? 'stopped' : 'paused'}, it is ${container.state}`,
          );
          continue;
        }
        steps.push(
          command.mode === 'stop'
            ? { kind: 'stop', container: refOf(container), timeoutSeconds: command.timeoutSeconds }
            : { kind: 'pause', container: refOf(container) },
        );
      }
    }
    return { mode: command.mode, source: 'command', steps, warnings };
  }

  const steps: ConsistencyStep[] = [];
  // Sorted by name, so the same containers give the same plan whatever order the engine lists them.
  for (const container of [...containers].sort((a, b) => a.name.localeCompare(b.name))) {
    const step = stepFromLabels(container, warnings);
    if (step) steps.push(step);
  }
  const ordered = [...steps.filter((s) => s.kind === 'hooks'), ...steps.filter((s) => s.kind !== 'hooks')];
  return { mode: summaryMode(ordered), source: 'labels', steps: ordered, warnings };
}

/**
 * A plan that stops these containers and starts them again after (a restore into a volume they
 * use, `stopContainers`); a container's own `timeoutSeconds` wins over the common one.
 */
export function stopPlan(
  containers: readonly (ContainerRef & { readonly timeoutSeconds?: number })[],
  timeoutSeconds: number = CONSISTENCY_DEFAULTS.stopTimeoutSeconds,
): ConsistencyPlan {
  return {
    mode: containers.length > 0 ? 'stop' : 'none',
    source: 'command',
    steps: containers.map(({ timeoutSeconds: own, ...container }) => ({
      kind: 'stop',
      container,
      timeoutSeconds: own ?? timeoutSeconds,
    })),
    warnings: [],
  };
}
