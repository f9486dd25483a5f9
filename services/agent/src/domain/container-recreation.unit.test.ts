import { describe, expect, it } from 'vitest';
import { distinctRecorded, recreationPlan, type RecordedInspect } from './container-recreation.ts';

const recorded: RecordedInspect = {
  Id: 'a'.repeat(64),
  Name: '/shop-db-1',
  State: { Running: true },
  Config: {
    Image: 'postgres:17',
    Cmd: ['postgres', '-c', 'fsync=on'],
    Env: ['POSTGRES_USER=shop', 'POSTGRES_PASSWORD'],
    WorkingDir: '/srv',
    Labels: { 'com.docker.compose.project': 'shop' },
    ExposedPorts: { '5432/tcp': {} },
  },
  HostConfig: {
    NetworkMode: 'shop_default',
    RestartPolicy: { Name: 'on-failure', MaximumRetryCount: 3 },
    PortBindings: { '5432/tcp': [{ HostIp: '127.0.0.1', HostPort: '15432' }] },
  },
  Mounts: [
    { Type: 'volume', Name: 'shop_db', Destination: '/var/lib/postgresql/data', RW: true },
    { Type: 'volume', Name: 'shared_conf', Destination: '/conf', RW: false },
    { Type: 'volume', Name: 'b'.repeat(64), Destination: '/tmp/anon', RW: true },
    { Type: 'bind', Source: '/etc/ssl/shop', Destination: '/ssl', RW: false },
  ],
  NetworkSettings: { Networks: { shop_default: {}, monitoring: {} } },
};

describe('recreating a recorded container', () => {
  const plan = recreationPlan(recorded, {
    volumeMap: new Map([['shop_db', 'shop_db-restored']]),
    suffix: '-copy',
    restoreId: 'restore-set-1',
  });

  it("points the set's volume mounts at the restored volumes and keeps the others, with warnings", () => {
    expect(plan.mounts).toEqual([
      'shop_db-restored:/var/lib/postgresql/data',
      'shared_conf:/conf:ro',
      '(new anonymous volume):/tmp/anon',
      '/etc/ssl/shop:/ssl:ro',
    ]);
    expect(plan.create.HostConfig.Mounts[0]).toEqual({
      Type: 'volume',
      Source: 'shop_db-restored',
      Target: '/var/lib/postgresql/data',
      ReadOnly: false,
    });
    expect(plan.warnings.join('\n')).toContain('volume shared_conf is not in the set');
    expect(plan.warnings.join('\n')).toContain('bind mount /etc/ssl/shop kept as recorded');
  });

  it('keeps image, command, env values, labels, ports, restart policy and networks; names get the suffix', () => {
    expect(plan.name).toBe('shop-db-1-copy');
    expect(plan.create).toMatchObject({
      name: 'shop-db-1-copy',
      Image: 'postgres:17',
      Cmd: ['postgres', '-c', 'fsync=on'],
      Env: ['POSTGRES_USER=shop'],
      WorkingDir: '/srv',
      ExposedPorts: { '5432/tcp': {} },
      Labels: {
        'com.docker.compose.project': 'shop-copy',
        'io.volback.restored-from-container': 'shop-db-1',
        'io.volback.restore-id': 'restore-set-1',
      },
      HostConfig: {
        NetworkMode: 'shop_default',
        RestartPolicy: { Name: 'on-failure', MaximumRetryCount: 3 },
        PortBindings: { '5432/tcp': [{ HostIp: '127.0.0.1', HostPort: '15432' }] },
      },
    });
    expect(plan.networks).toEqual(['shop_default', 'monitoring']);
    expect(plan.ports).toEqual(['127.0.0.1:15432->5432/tcp']);
    expect(plan.restartPolicy).toBe('on-failure:3');
    expect(plan.wasRunning).toBe(true);
  });

  it('leaves out env variables whose values were excluded at backup, and names them', () => {
    expect(plan.envCount).toBe(1);
    expect(plan.warnings.join('\n')).toContain('POSTGRES_PASSWORD left out');
  });

  it('given a container in two member snapshots, it is recreated once', () => {
    expect(distinctRecorded([[recorded], [recorded, { ...recorded, Id: 'c'.repeat(64) }]])).toHaveLength(2);
  });

  it('given new names, the copy is an application of its own; under the same names it stays in its project', () => {
    expect(plan.labels['com.docker.compose.project']).toBe('shop-copy');
    const same = recreationPlan(
      { ...recorded, Config: { ...recorded.Config, Labels: { 'volback.group': 'shop', x: 'y' } } },
      { volumeMap: new Map(), suffix: '', restoreId: 'r' },
    );
    expect(same.create.Labels).toMatchObject({ 'volback.group': 'shop', x: 'y' });
  });

  it('keeps the health check, stop settings, host name and every limit; grants no privilege, naming each', () => {
    const limited = recreationPlan(
      {
        ...recorded,
        Config: {
          ...recorded.Config,
          Healthcheck: { Test: ['CMD', 'pg_isready'], Interval: 5_000_000_000 },
          StopSignal: 'SIGINT',
          StopTimeout: 60,
          Hostname: 'db',
        },
        HostConfig: {
          ...recorded.HostConfig,
          Memory: 536_870_912,
          NanoCpus: 1_500_000_000,
          PidsLimit: 200,
          Ulimits: [{ Name: 'nofile', Soft: 1024, Hard: 2048 }],
          ReadonlyRootfs: true,
          CapDrop: ['NET_RAW'],
          CpuShares: 0,
          SecurityOpt: ['no-new-privileges:true', 'seccomp=unconfined'],
          Privileged: true,
          CapAdd: ['SYS_ADMIN'],
          Devices: [{ PathOnHost: '/dev/fuse' }],
          PidMode: 'host',
          Sysctls: { 'net.core.somaxconn': '1024' },
        },
      },
      { volumeMap: new Map(), suffix: '', restoreId: 'r' },
    );
    expect(limited.create).toMatchObject({
      Healthcheck: { Test: ['CMD', 'pg_isready'], Interval: 5_000_000_000 },
      StopSignal: 'SIGINT',
      StopTimeout: 60,
      Hostname: 'db',
    });
    const host = limited.create.HostConfig;
    expect(host).toMatchObject({
      Memory: 536_870_912,
      NanoCpus: 1_500_000_000,
      PidsLimit: 200,
      Ulimits: [{ Name: 'nofile', Soft: 1024, Hard: 2048 }],
      ReadonlyRootfs: true,
      CapDrop: ['NET_RAW'],
      SecurityOpt: ['no-new-privileges:true'],
    });
    for (const granted of ['Privileged', 'CapAdd', 'Devices', 'PidMode', 'Sysctls', 'CpuShares'])
      expect(host).not.toHaveProperty(granted);
    expect(limited.warnings.join('\n')).toContain(
      'privileged, cap-add SYS_ADMIN, device /dev/fuse, security-opt seccomp=unconfined, pid=host, sysctl net.core.somaxconn',
    );
  });

  it("does not copy the engine's default host name (the container id's start)", () => {
    const plain = recreationPlan(
      { ...recorded, Config: { ...recorded.Config, Hostname: 'a'.repeat(12) } },
      { volumeMap: new Map(), suffix: '', restoreId: 'r' },
    );
    expect(plain.create).not.toHaveProperty('Hostname');
  });

  it('given a record without an image, it refuses clearly', () => {
    expect(() =>
      recreationPlan({ Name: '/x', Config: {} }, { volumeMap: new Map(), suffix: '', restoreId: 'r' }),
    ).toThrow('recorded container x has no image');
  });
});
