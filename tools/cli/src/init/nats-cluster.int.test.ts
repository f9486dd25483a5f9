// A real 3-node NATS cluster run with the configurations `volback init --nats-cluster` writes:
// the nodes route to each other over mutual TLS, streams replicate at R3, every node enforces the
// same identities, and a server without a certificate of the set-up's CA cannot join.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { createUser } from '@nats-io/nkeys';
import {
  createEvent,
  HostSeen,
  inboxPrefix,
  STREAMS,
  subscriberDurableName,
  type Identity,
} from '@volback/contracts';
import { connectNats, ensureStreams, MessagePublisher, type NatsConnection } from '@volback/messaging';
import { freePort, runToEnd, startNatsServer, waitFor, type NatsServer } from '@volback/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCertificateAuthority, createServerCertificate } from './certificates.ts';

const CLI = new URL('../main.ts', import.meta.url).pathname;
const NODES = ['n1', 'n2', 'n3'] as const;

const volback = (args: string[]) => runToEnd(process.execPath, [CLI, ...args]);

let root: string;
let dir: string;
let routePorts: number[];
let nodes: NatsServer[] = [];
const open: NatsConnection[] = [];

const ids = (name: string) => join(dir, 'identities', name);
const caFile = () => join(dir, 'ca/ca.crt');

async function connectAs(
  server: NatsServer,
  identity: Identity,
  seedFile: string,
  name = 'cluster-test',
): Promise<NatsConnection> {
  const nc = await connectNats({
    servers: server.url,
    name,
    nkeyFile: seedFile,
    caFile: caFile(),
    inboxPrefix: inboxPrefix(identity),
    connectTimeoutMs: 3_000,
  });
  open.push(nc);
  return nc;
}

interface Routez {
  server_name: string;
  num_routes: number;
  routes: { remote_name?: string; ip: string; port: number }[];
}

async function routez(server: NatsServer): Promise<Routez> {
  return (await (await fetch(`${server.monitorUrl}/routez`)).json()) as Routez;
}

/** The names of the servers a node has routes with. */
async function peers(server: NatsServer): Promise<string[]> {
  return [...new Set((await routez(server)).routes.map((r) => r.remote_name ?? '?'))].sort();
}

const hostSeen = (hostId: string) =>
  createEvent(
    HostSeen,
    {
      hostId,
      seenAt: new Date().toISOString(),
      intervalSeconds: 30,
      containers: 0,
      volumes: 0,
      backupsRunning: 0,
    },
    { source: `volback://agent/${hostId}` },
  );

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'volback-nats-cluster-'));
  dir = join(root, 'secrets');
  routePorts = await Promise.all(NODES.map(() => freePort()));
  const clientPorts = await Promise.all(NODES.map(() => freePort()));
  const init = await volback([
    'init',
    '--dir',
    dir,
    '--nats-store-dir',
    join(root, 'jetstream'),
    '--nats-cluster',
    NODES.map((node, i) => `${node}=127.0.0.1:${routePorts[i]}`).join(','),
    ...NODES.flatMap((node, i) => ['--nats-listen', `${node}=127.0.0.1:${clientPorts[i]}`]),
  ]);
  expect(init.code, init.output).toBe(0);
  const agent = await volback(['init', 'agent', 'box-a', '--host-id', 'host-a', '--dir', dir]);
  expect(agent.code, agent.output).toBe(0);
  const subscriber = await volback(['init', 'subscriber', 'ext', '--dir', dir]);
  expect(subscriber.code, subscriber.output).toBe(0);
  // Each node from its own configuration, its log in a folder of its own; started together, as
  // a node waits for its peers' routes.
  nodes = await Promise.all(
    NODES.map((node, i) =>
      startNatsServer({
        configFile: join(dir, `nats/nats-server-${node}.conf`),
        dataDir: join(root, node),
        port: clientPorts[i]!,
      }),
    ),
  );
}, 60_000);

afterAll(async () => {
  for (const nc of open) await nc.close().catch(() => undefined);
  await Promise.all(nodes.map((node) => node.stop()));
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('a NATS cluster with the configurations volback init writes', () => {
  it('writes one configuration per node: its own certificate, its routes over mutual TLS', () => {
    for (const [i, node] of NODES.entries()) {
      const config = readFileSync(join(dir, `nats/nats-server-${node}.conf`), 'utf8');
      expect(config).toContain(`server_name: "${node}"`);
      expect(config).toContain(join(dir, `tls/nats-${node}.crt`));
      expect(config).toContain(`listen: "127.0.0.1:${routePorts[i]}"`);
      for (const [j, other] of routePorts.entries())
        expect(config.includes(`nats-route://127.0.0.1:${other}`), `${node} routes to ${NODES[j]}`).toBe(
          i !== j,
        );

      expect(config).toMatch(/tls \{[^}]*ca_file: [^}]*verify: true/);
      expect(config).toContain(`store_dir: "${join(root, 'jetstream', node)}"`);
      expect(config).toContain('# agent-host-a');
    }
  });

  it('forms a cluster: every node routes to the two others and JetStream elects a meta leader', async () => {
    for (const [i, node] of nodes.entries()) {
      const others = NODES.filter((_, j) => j !== i);
      await waitFor(
        `${NODES[i]} routes to ${others.join(', ')}`,
        async () => JSON.stringify(await peers(node)) === JSON.stringify(others),
        30_000,
      );
    }
    // The leader may be elected before the third peer has joined the meta group: wait for both.
    const meta = await waitFor(
      'a JetStream meta leader with all three peers',
      async () => {
        const jsz = (await (await fetch(`${nodes[0]!.monitorUrl}/jsz`)).json()) as {
          meta_cluster?: { leader?: string; cluster_size?: number };
        };
        return jsz.meta_cluster?.leader && jsz.meta_cluster.cluster_size === 3 ? jsz.meta_cluster : undefined;
      },
      30_000,
    );
    expect(meta.cluster_size).toBe(3);
    expect(NODES).toContain(meta.leader);
  });

  it('the admin creates the streams at R3; identities publish and read through any node', async () => {
    const admin = await connectAs(nodes[0]!, { kind: 'admin' }, ids('admin.nk'), 'admin');
    const adminJsm = await jetstreamManager(admin, { timeout: 10_000 });
    await waitFor(
      'the streams at R3',
      () => ensureStreams(adminJsm, { replicas: 3 }).catch(() => undefined),
      30_000,
    );
    const info = await adminJsm.streams.info(STREAMS.events.name);
    expect(info.config.num_replicas).toBe(3);
    await waitFor(
      'a leader and two current replicas of the event stream',
      async () => {
        const cluster = (await adminJsm.streams.info(STREAMS.events.name)).cluster;
        return cluster?.leader && cluster.replicas?.filter((r) => r.current).length === 2;
      },
      30_000,
    );

    const durable = subscriberDurableName('ext');
    const subscriberOn = await connectAs(
      nodes[2]!,
      { kind: 'subscriber', name: 'ext' },
      ids('subscriber-ext.nk'),
    );
    await (
      await jetstreamManager(subscriberOn, { timeout: 10_000 })
    ).consumers.add(STREAMS.events.name, {
      durable_name: durable,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.New,
    });
    for (let i = 0; i < NODES.length; i++) {
      // The agent publishes through node i, the catalog reads it back through the next node, and
      // the subscriber's durable consumer delivers it through the one after.
      const agent = await connectAs(nodes[i]!, { kind: 'agent', hostId: 'host-a' }, ids('agent-host-a.nk'));
      const event = hostSeen('host-a');
      await new MessagePublisher(agent).publish(event);

      const catalog = await connectAs(
        nodes[(i + 1) % 3]!,
        { kind: 'service', service: 'catalog' },
        ids('catalog.nk'),
      );
      const stored = await (
        await jetstreamManager(catalog, { timeout: 10_000 })
      ).direct.getMessage(STREAMS.events.name, { last_by_subj: event.subject });
      expect(stored?.json<{ id: string }>().id).toBe(event.envelope.id);

      const subscriber = await connectAs(
        nodes[(i + 2) % 3]!,
        { kind: 'subscriber', name: 'ext' },
        ids('subscriber-ext.nk'),
      );
      const consumer = await jetstream(subscriber).consumers.get(STREAMS.events.name, durable);
      const delivered = await consumer.next({ expires: 10_000 });
      expect(delivered?.json<{ id: string }>().id).toBe(event.envelope.id);
      delivered!.ack();
    }
  });

  it('refuses, on every node, clients without the CA, without an nkey, or with an unknown one', async () => {
    const stranger = join(root, 'stranger.nk');
    writeFileSync(stranger, new TextDecoder().decode(createUser().getSeed()), { mode: 0o600 });
    for (const node of nodes) {
      await expect(connectNats({ servers: node.url, name: 'anon', connectTimeoutMs: 500 })).rejects.toThrow(
        /certificate/,
      );
      await expect(
        connectNats({ servers: node.url, name: 'anon', caFile: caFile(), connectTimeoutMs: 500 }),
      ).rejects.toThrow(/Authorization Violation/i);
      await expect(
        connectNats({
          servers: node.url,
          name: 'stranger',
          caFile: caFile(),
          nkeyFile: stranger,
          connectTimeoutMs: 500,
        }),
      ).rejects.toThrow(/Authorization Violation/i);
    }
  });

  describe('a fourth server trying to join', () => {
    /** Where each node's log stood before the intruder started: only what follows is its. */
    let logOffsets: number[] = [];
    const newLog = (node: NatsServer, i: number) => readFileSync(node.logFile, 'utf8').slice(logOffsets[i]);

    /** Starts a server that dials the nodes' route ports with the given cluster TLS block. */
    async function intruder(name: string, tls: string[]): Promise<NatsServer> {
      logOffsets = nodes.map((node) => readFileSync(node.logFile, 'utf8').length);
      const folder = join(root, name);
      const config = join(root, `${name}.conf`);
      writeFileSync(
        config,
        [
          `server_name: ${JSON.stringify(name)}`,
          `jetstream { store_dir: ${JSON.stringify(join(folder, 'jetstream'))} }`,
          'cluster {',
          '  name: "volback"',
          `  listen: "127.0.0.1:${await freePort()}"`,
          `  routes: [${routePorts.map((port) => `"nats-route://127.0.0.1:${port}"`).join(', ')}]`,
          ...tls,
          '}',
          '',
        ].join('\n'),
      );
      return startNatsServer({ configFile: config, dataDir: folder });
    }

    /** Waits until every node has turned the intruder away (or it joined); no route formed. */
    async function expectRefused(server: NatsServer, logLine: RegExp): Promise<void> {
      try {
        const outcome = await waitFor(
          `${server.logFile} joins, or every node refuses its routes`,
          async () => {
            if ((await routez(server)).num_routes > 0) return 'joined';
            return nodes.every((node, i) => logLine.test(newLog(node, i))) ? 'refused' : undefined;
          },
          30_000,
        );
        expect(outcome).toBe('refused');
        expect((await routez(server)).num_routes).toBe(0);
        for (const [i, node] of nodes.entries())
          expect(await peers(node)).toEqual(NODES.filter((_, j) => j !== i));
      } finally {
        await server.destroy();
      }
    }

    it('with a certificate of another CA (trusting ours) is refused by every node', async () => {
      const otherCa = await createCertificateAuthority();
      const pair = await createServerCertificate(otherCa, 'intruder', ['127.0.0.1'], { clientAuth: true });
      const cert = join(root, 'intruder.crt');
      const key = join(root, 'intruder.key');
      writeFileSync(cert, pair.cert);
      writeFileSync(key, pair.key, { mode: 0o600 });
      // It trusts our CA (it verifies the nodes fine): only the nodes' check of its certificate
      // stands between it and the cluster.
      const server = await intruder('intruder-other-ca', [
        `  tls { cert_file: ${JSON.stringify(cert)}, key_file: ${JSON.stringify(key)}, ca_file: ${JSON.stringify(caFile())}, verify: true, timeout: 5 }`,
      ]);
      await expectRefused(server, /TLS route handshake error[^\n]*certificate/);
    });

    it('without TLS at all is refused by every node', async () => {
      const server = await intruder('intruder-plain', []);
      await expectRefused(server, /TLS route handshake error/);
    });
  });

  it('revoking an agent reloads every node: dropped and refused on all three', async () => {
    const seed = join(root, 'revoked-a.nk');
    writeFileSync(seed, readFileSync(ids('agent-host-a.nk')), { mode: 0o600 });
    const agents = await Promise.all(
      nodes.map((node) => connectAs(node, { kind: 'agent', hostId: 'host-a' }, seed, 'to-revoke')),
    );
    const revoked = await volback(['init', 'revoke', 'agent', 'box-a', '--dir', dir]);
    expect(revoked.code, revoked.output).toBe(0);
    for (const [i, node] of nodes.entries())
      expect(revoked.output).toContain(`reloaded NATS node ${NODES[i]} (pid ${node.pid})`);
    await Promise.all(agents.map((nc) => nc.closed()));
    for (const node of nodes) {
      await expect(
        connectNats({
          servers: node.url,
          name: 'revoked',
          caFile: caFile(),
          nkeyFile: seed,
          connectTimeoutMs: 500,
        }),
      ).rejects.toThrow(/Authorization Violation/i);
    }
    for (const node of NODES)
      expect(readFileSync(join(dir, `nats/nats-server-${node}.conf`), 'utf8')).not.toContain(
        '# agent-host-a',
      );
  });
});
