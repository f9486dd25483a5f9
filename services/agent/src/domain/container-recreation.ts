import { CONTAINERS_JSON_ENV_LABEL } from './container-record.ts';

/** The parts of a recorded inspect (`/.volback/containers.json`) a recreation reads. */
export interface RecordedInspect {
  readonly Id?: string;
  readonly Name?: string;
  readonly State?: { readonly Running?: boolean } | null;
  readonly Config?: {
    readonly Image?: string;
    readonly Cmd?: readonly string[] | null;
    readonly Entrypoint?: readonly string[] | string | null;
    readonly Env?: readonly string[] | null;
    readonly WorkingDir?: string;
    readonly User?: string;
    readonly Labels?: Readonly<Record<string, string>> | null;
    readonly ExposedPorts?: Readonly<Record<string, object>> | null;
    readonly Healthcheck?: Readonly<Record<string, unknown>> | null;
    readonly StopSignal?: string;
    readonly StopTimeout?: number | null;
    readonly Hostname?: string;
    readonly Domainname?: string;
    readonly Tty?: boolean;
    readonly OpenStdin?: boolean;
  } | null;
  readonly HostConfig?: {
    readonly NetworkMode?: string;
    readonly Privileged?: boolean;
    readonly CapAdd?: readonly string[] | null;
    readonly Devices?: readonly { readonly PathOnHost?: string }[] | null;
    readonly DeviceRequests?: readonly unknown[] | null;
    readonly SecurityOpt?: readonly string[] | null;
    readonly PidMode?: string;
    readonly IpcMode?: string;
    readonly UTSMode?: string;
    readonly UsernsMode?: string;
    readonly CgroupnsMode?: string;
    readonly Sysctls?: Readonly<Record<string, string>> | null;
    readonly [setting: string]: unknown;
    readonly RestartPolicy?: { readonly Name?: string; readonly MaximumRetryCount?: number } | null;
    readonly PortBindings?: Readonly<
      Record<string, readonly { readonly HostIp?: string; readonly HostPort?: string }[] | null>
    > | null;
  } | null;
  readonly Mounts?: readonly {
    readonly Type?: string;
    readonly Name?: string;
    readonly Source?: string;
    readonly Destination?: string;
    readonly RW?: boolean;
  }[];
  readonly NetworkSettings?: { readonly Networks?: Readonly<Record<string, unknown>> | null } | null;
}

/** Labels a recreated container carries besides its own, recording where it came from. */
export const RECREATED_LABELS = {
  container: 'io.volback.restored-from-container',
  restoreId: 'io.volback.restore-id',
} as const;

/**
 * HostConfig settings copied as recorded: resource limits and settings that grant nothing
 * (dropping capabilities, a read-only root, an init, logging, names to resolve).
 */
export const KEPT_HOST_SETTINGS = [
  'Memory',
  'MemoryReservation',
  'MemorySwap',
  'MemorySwappiness',
  'NanoCpus',
  'CpuShares',
  'CpuPeriod',
  'CpuQuota',
  'CpusetCpus',
  'CpusetMems',
  'BlkioWeight',
  'PidsLimit',
  'Ulimits',
  'ShmSize',
  'Tmpfs',
  'ReadonlyRootfs',
  'Init',
  'CapDrop',
  'LogConfig',
  'ExtraHosts',
  'Dns',
  'DnsSearch',
  'DnsOptions',
  'GroupAdd',
] as const;

/** Security options that only restrict a container (anything else may relax its confinement). */
const RESTRICTING_SECURITY_OPT = /^no-new-privileges(?:[:=]true)?$/;

/** What of a recorded HostConfig grants more than a default container has, by name. */
export function privilegesOf(host: NonNullable<RecordedInspect['HostConfig']>): string[] {
  const granted: string[] = [];
  if (host.Privileged) granted.push('privileged');
  for (const cap of host.CapAdd ?? []) granted.push(`cap-add ${cap}`);
  for (const device of host.Devices ?? []) granted.push(`device ${device.PathOnHost ?? '?'}`);
  if ((host.DeviceRequests ?? []).length) granted.push('device requests (GPUs)');
  for (const opt of host.SecurityOpt ?? [])
    if (!RESTRICTING_SECURITY_OPT.test(opt)) granted.push(`security-opt ${opt}`);
  for (const [mode, value] of [
    ['pid', host.PidMode],
    ['ipc', host.IpcMode],
    ['uts', host.UTSMode],
    ['userns', host.UsernsMode],
    ['cgroupns', host.CgroupnsMode],
  ] as const) {
    if (value === 'host') granted.push(`${mode}=host`);
  }
  for (const key of Object.keys(host.Sysctls ?? {})) granted.push(`sysctl ${key}`);
  return granted;
}

/** Labels that make containers one application (a set): a copy under new names gets its own. */
const GROUPING_LABELS = ['com.docker.compose.project', 'volback.group'] as const;

/** Network modes that are not a network's name. */
const BUILT_IN_NETWORK_MODES = new Set(['host', 'none', 'bridge', 'default']);

/** What creating one recorded container again takes, before the engine is asked anything. */
export interface RecreationPlan {
  readonly name: string;
  readonly originalName: string;
  readonly image: string;
  /** Was running when backed up: started after the restore. */
  readonly wasRunning: boolean;
  /** The labels (compose's service and depends_on order the start). */
  readonly labels: Readonly<Record<string, string>>;
  /** Network mode first, then the other networks it was on; built-in modes are not names. */
  readonly networks: readonly string[];
  readonly mounts: readonly string[];
  readonly ports: readonly string[];
  readonly restartPolicy: string;
  readonly envCount: number;
  readonly warnings: readonly string[];
  /** The engine's create body (`POST /containers/create`), network mode as recorded. */
  readonly create: {
    readonly name: string;
    readonly Image: string;
    readonly Cmd?: string[];
    readonly Entrypoint?: string[] | string;
    readonly Env: string[];
    readonly WorkingDir?: string;
    readonly User?: string;
    readonly Labels: Record<string, string>;
    readonly ExposedPorts?: Record<string, object>;
    readonly Healthcheck?: Record<string, unknown>;
    readonly StopSignal?: string;
    readonly StopTimeout?: number;
    readonly Hostname?: string;
    readonly Domainname?: string;
    readonly Tty?: boolean;
    readonly OpenStdin?: boolean;
    readonly HostConfig: {
      [setting: string]: unknown;
      NetworkMode?: string;
      RestartPolicy?: { Name: string; MaximumRetryCount?: number };
      PortBindings?: Record<string, { HostIp?: string; HostPort?: string }[]>;
      Mounts: { Type: 'volume' | 'bind'; Source?: string; Target: string; ReadOnly: boolean }[];
    };
  };
}

/**
 * How to create a recorded container again: its image, command, env, working dir, user, labels,
 * exposed and published ports, restart policy and network mode as recorded; its mounts of the
 * set's volumes pointed at the restored volumes (`volumeMap`: original name → restored name);
 * other volumes by name and bind mounts as recorded (with a warning each: they were not
 * restored). Env values that were excluded at backup (`volback.containers-json.env=exclude`: the
 * names only) are left out, named in a warning. Health check, stop signal and timeout, host
 * name, TTY, resource limits and the settings that only restrict the container
 * ({@link KEPT_HOST_SETTINGS}) are kept too. What grants the container more than a default one
 * (privileged, added capabilities, devices, GPUs, the host's namespaces, relaxed security options,
 * sysctls) is never recreated from a snapshot: each is named in a warning, for the operator to
 * grant again by hand.
 */
export function recreationPlan(
  recorded: RecordedInspect,
  options: { volumeMap: ReadonlyMap<string, string>; suffix: string; restoreId: string },
): RecreationPlan {
  const originalName = (recorded.Name ?? '').replace(/^\//, '');
  if (!originalName) throw new Error('a recorded container without a name');
  const config = recorded.Config ?? {};
  const host = recorded.HostConfig ?? {};
  const image = config.Image ?? '';
  if (!image) throw new Error(`recorded container ${originalName} has no image`);
  const name = `${originalName}${options.suffix}`;
  const warnings: string[] = [];

  const env = [...(config.Env ?? [])];
  const withValues = env.filter((entry) => entry.includes('='));
  const excluded = env.filter((entry) => !entry.includes('='));
  if (excluded.length) {
    warnings.push(
      `env values were excluded at backup (${CONTAINERS_JSON_ENV_LABEL}=exclude): ${excluded.join(', ')} left out; set them and recreate the container`,
    );
  }

  const mounts: RecreationPlan['create']['HostConfig']['Mounts'] = [];
  const mountLines: string[] = [];
  for (const m of recorded.Mounts ?? []) {
    if (!m.Destination) continue;
    const readOnly = m.RW === false;
    const suffix = readOnly ? ':ro' : '';
    if (m.Type === 'volume' && m.Name) {
      const restored = options.volumeMap.get(m.Name);
      if (restored) {
        mounts.push({ Type: 'volume', Source: restored, Target: m.Destination, ReadOnly: readOnly });
        mountLines.push(`${restored}:${m.Destination}${suffix}`);
      } else if (/^[0-9a-f]{64}$/.test(m.Name)) {
        mounts.push({ Type: 'volume', Target: m.Destination, ReadOnly: readOnly });
        mountLines.push(`(new anonymous volume):${m.Destination}${suffix}`);
      } else {
        mounts.push({ Type: 'volume', Source: m.Name, Target: m.Destination, ReadOnly: readOnly });
        mountLines.push(`${m.Name}:${m.Destination}${suffix}`);
        warnings.push(
          `volume ${m.Name} is not in the set: mounted by name, as it is on this engine (empty if new)`,
        );
      }
    } else if (m.Type === 'bind' && m.Source) {
      mounts.push({ Type: 'bind', Source: m.Source, Target: m.Destination, ReadOnly: readOnly });
      mountLines.push(`${m.Source}:${m.Destination}${suffix}`);
      warnings.push(`bind mount ${m.Source} kept as recorded: volback did not restore it`);
    }
  }

  const networkMode = host.NetworkMode ?? 'default';
  const networks = [
    networkMode,
    ...Object.keys(recorded.NetworkSettings?.Networks ?? {}).filter((n) => n !== networkMode),
  ].filter((n) => !n.startsWith('container:'));
  if (networkMode.startsWith('container:')) {
    warnings.push(`network mode ${networkMode} is not recreated: the container gets network mode none`);
  }

  const portBindings: Record<string, { HostIp?: string; HostPort?: string }[]> = {};
  const ports: string[] = [];
  for (const [port, bindings] of Object.entries(host.PortBindings ?? {})) {
    portBindings[port] = (bindings ?? []).map((b) => ({ ...b }));
    for (const b of bindings ?? []) ports.push(`${b.HostIp || '0.0.0.0'}:${b.HostPort ?? ''}->${port}`);
  }
  const restart = host.RestartPolicy?.Name || 'no';
  const retries = host.RestartPolicy?.MaximumRetryCount;

  // A copy under new names is an application of its own: Compose would call it an orphan of the
  // original project (and `up --remove-orphans` remove it), and volback back it up with the set.
  const labels = { ...(config.Labels ?? {}) };
  if (options.suffix) {
    for (const key of GROUPING_LABELS) if (labels[key]) labels[key] = `${labels[key]}${options.suffix}`;
  }

  const kept: Record<string, unknown> = {};
  for (const setting of KEPT_HOST_SETTINGS) {
    const value = host[setting];
    if (value !== undefined && value !== null && value !== '' && value !== 0 && value !== false)
      kept[setting] = structuredClone(value);
  }
  const securityOpt = (host.SecurityOpt ?? []).filter((opt) => RESTRICTING_SECURITY_OPT.test(opt));
  if (securityOpt.length) kept['SecurityOpt'] = securityOpt;
  const privileges = privilegesOf(host);
  if (privileges.length) {
    warnings.push(
      `not recreated from a snapshot (they grant more than a default container): ${privileges.join(', ')}; grant them by hand if the application needs them`,
    );
  }

  return {
    name,
    originalName,
    image,
    wasRunning: recorded.State?.Running === true,
    labels,
    networks,
    mounts: mountLines,
    ports,
    restartPolicy: restart === 'on-failure' && retries ? `${restart}:${retries}` : restart,
    envCount: withValues.length,
    warnings,
    create: {
      name,
      Image: image,
      ...(config.Cmd ? { Cmd: [...config.Cmd] } : {}),
      ...(config.Entrypoint
        ? { Entrypoint: typeof config.Entrypoint === 'string' ? config.Entrypoint : [...config.Entrypoint] }
        : {}),
      Env: withValues,
      ...(config.WorkingDir ? { WorkingDir: config.WorkingDir } : {}),
      ...(config.User ? { User: config.User } : {}),
      Labels: {
        ...labels,
        [RECREATED_LABELS.container]: originalName,
        [RECREATED_LABELS.restoreId]: options.restoreId,
      },
      ...(config.ExposedPorts ? { ExposedPorts: { ...config.ExposedPorts } } : {}),
      ...(config.Healthcheck ? { Healthcheck: structuredClone(config.Healthcheck) } : {}),
      ...(config.StopSignal ? { StopSignal: config.StopSignal } : {}),
      ...(typeof config.StopTimeout === 'number' ? { StopTimeout: config.StopTimeout } : {}),
      // The engine's default host name is the container id's start: a new container gets its own.
      ...(config.Hostname && config.Hostname !== recorded.Id?.slice(0, 12)
        ? { Hostname: config.Hostname }
        : {}),
      ...(config.Domainname ? { Domainname: config.Domainname } : {}),
      ...(config.Tty ? { Tty: true } : {}),
      ...(config.OpenStdin ? { OpenStdin: true } : {}),
      HostConfig: {
        ...kept,
        NetworkMode: networkMode.startsWith('container:') ? 'none' : networkMode,
        RestartPolicy: { Name: restart, ...(retries ? { MaximumRetryCount: retries } : {}) },
        ...(ports.length || Object.keys(portBindings).length ? { PortBindings: portBindings } : {}),
        Mounts: mounts,
      },
    },
  };
}

/** Whether a network name is a mode the engine knows without a network of that name. */
export function isBuiltInNetworkMode(name: string): boolean {
  return BUILT_IN_NETWORK_MODES.has(name);
}

/**
 * The containers of several snapshots' `containers.json` once each (a container that used two of
 * the set's volumes is recorded in both snapshots): by id, else by name.
 */
export function distinctRecorded(lists: readonly (readonly RecordedInspect[])[]): RecordedInspect[] {
  const seen = new Set<string>();
  const out: RecordedInspect[] = [];
  for (const list of lists) {
    for (const c of list) {
      const key = c.Id ?? c.Name ?? '';
      if (!key || seen.has(key)) continue;
      seen.add(key);
      out.push(c);
    }
  }
  return out;
}
