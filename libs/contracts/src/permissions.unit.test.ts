import { describe, expect, it } from 'vitest';
import { permissionsFor, type Identity } from './permissions.ts';
import { commandSubject, dataSubject, eventSubject, progressSubject } from './streams.ts';

/** NATS subject matching: `*` one token, `>` the rest. */
function matches(pattern: string, subject: string): boolean {
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return s.length > i;
    if (i >= s.length || (p[i] !== '*' && p[i] !== s[i])) return false;
  }
  return p.length === s.length;
}

function mayPublish(identity: Identity, subject: string): boolean {
  const perms = permissionsFor(identity);
  if (!perms) return true;
  const allowed = perms.publish.allow.some((p) => matches(p, subject));
  return allowed && !(perms.publish.deny ?? []).some((p) => matches(p, subject));
}

const agentA: Identity = { kind: 'agent', hostId: 'host.a' };
const everyoneButAdmin: Identity[] = [
  agentA,
  { kind: 'service', service: 'scheduler' },
  { kind: 'service', service: 'catalog' },
  { kind: 'service', service: 'gateway' },
  { kind: 'service', service: 'cli' },
  { kind: 'subscriber', name: 'audit' },
];

describe('NATS permissions', () => {
  it('let only the admin delete, purge or change a stream', () => {
    for (const identity of everyoneButAdmin) {
      for (const op of ['DELETE', 'PURGE', 'UPDATE', 'MSG.DELETE']) {
        for (const stream of ['VOLBACK_EVENTS', 'VOLBACK_COMMANDS', 'KV_volback-scheduler']) {
          expect(mayPublish(identity, `$JS.API.STREAM.${op}.${stream}`), `${identity.kind} ${op}`).toBe(
            false,
          );
        }
      }
    }
    expect(permissionsFor({ kind: 'admin' })).toBeUndefined();
  });

  it("given: an agent; then: only its own host's events, progress and data requests, no command", () => {
    expect(mayPublish(agentA, eventSubject('volume', 'host.a', 'db'))).toBe(true);
    expect(mayPublish(agentA, eventSubject('backup', 'host.a', 'b1'))).toBe(true);
    expect(mayPublish(agentA, progressSubject('host.a', 'b1'))).toBe(true);
    expect(mayPublish(agentA, dataSubject({ kind: 'host', hostId: 'host.a' }, 'store-blob'))).toBe(true);
    expect(mayPublish(agentA, eventSubject('drill', 'host.a', 'drill-1'))).toBe(true);
    expect(mayPublish(agentA, eventSubject('volume', 'host.b', 'db'))).toBe(false);
    expect(mayPublish(agentA, eventSubject('drill', 'host.b', 'drill-1'))).toBe(false);
    expect(mayPublish(agentA, eventSubject('host', 'host.b'))).toBe(false);
    expect(mayPublish(agentA, eventSubject('policy', 'p'))).toBe(false);
    expect(mayPublish(agentA, progressSubject('host.b', 'b1'))).toBe(false);
    expect(mayPublish(agentA, dataSubject({ kind: 'catalog' }, 'load-blob'))).toBe(false);
    expect(mayPublish(agentA, commandSubject({ kind: 'host', hostId: 'host.a' }, 'backup-volume'))).toBe(
      false,
    );
    // Its consumer only with its own host's filter in the create subject.
    const create = '$JS.API.CONSUMER.CREATE.VOLBACK_COMMANDS.agent-host_a';
    expect(mayPublish(agentA, `${create}.volback.cmd.host.host~2Ea.*`)).toBe(true);
    expect(mayPublish(agentA, `${create}.volback.cmd.host.host~2Eb.*`)).toBe(false);
    expect(mayPublish(agentA, create)).toBe(false);
  });

  it('let only the scheduler and the catalog send commands, and only the gateway answer the data path', () => {
    const command = commandSubject({ kind: 'gateway' }, 'prune-repository');
    expect(
      everyoneButAdmin.filter((i) => mayPublish(i, command)).map((i) => i.kind === 'service' && i.service),
    ).toEqual(['scheduler', 'catalog']);
    const responders = everyoneButAdmin.filter((i) => permissionsFor(i)?.allowResponses);
    expect(responders).toEqual([{ kind: 'service', service: 'gateway' }]);
    const dataReaders = everyoneButAdmin.filter((i) =>
      permissionsFor(i)!.subscribe.allow.some((p) => matches(p, 'volback.data.host.x.load-blob')),
    );
    expect(dataReaders).toEqual([{ kind: 'service', service: 'gateway' }]);
  });

  it('give a subscriber the events, the heartbeats and its own consumer, nothing to publish', () => {
    const subscriber: Identity = { kind: 'subscriber', name: 'audit' };
    const perms = permissionsFor(subscriber)!;
    expect(perms.subscribe.allow).toEqual(['_INBOX.subscriber.audit.>', 'volback.evt.>', 'volback.hb.>']);
    expect(mayPublish(subscriber, '$JS.API.DIRECT.GET.VOLBACK_HEARTBEATS.volback.hb.host-a')).toBe(true);
    expect(mayPublish(subscriber, 'volback.hb.host-a')).toBe(false);
    expect(perms.publish.allow.every((p) => p.startsWith('$JS.'))).toBe(true);
    expect(mayPublish(subscriber, '$JS.API.CONSUMER.CREATE.VOLBACK_EVENTS.subscriber-audit')).toBe(true);
    expect(mayPublish(subscriber, '$JS.API.CONSUMER.CREATE.VOLBACK_EVENTS.catalog-1')).toBe(false);
    expect(mayPublish(subscriber, '$JS.API.CONSUMER.CREATE.VOLBACK_COMMANDS.subscriber-audit')).toBe(false);
  });

  it("let an agent publish only its own host's heartbeat, and the services follow them all", () => {
    const agent: Identity = { kind: 'agent', hostId: 'host-a' };
    expect(mayPublish(agent, 'volback.hb.host-a')).toBe(true);
    expect(mayPublish(agent, 'volback.hb.host-b')).toBe(false);
    expect(mayPublish(agent, 'volback.hb.>')).toBe(false);
    const others = everyoneButAdmin.filter((i) => i.kind !== 'agent');
    expect(others.some((i) => mayPublish(i, 'volback.hb.host-a'))).toBe(false);
    for (const service of ['scheduler', 'catalog'] as const) {
      expect(mayPublish({ kind: 'service', service }, '$JS.API.CONSUMER.CREATE.VOLBACK_HEARTBEATS.x1')).toBe(
        true,
      );
      expect(mayPublish({ kind: 'service', service }, '$JS.API.STREAM.CREATE.VOLBACK_HEARTBEATS')).toBe(true);
    }
  });

  it('let only the scheduler read or write its state snapshots', () => {
    const writers = everyoneButAdmin.filter((i) => mayPublish(i, '$KV.volback-scheduler-state.state'));
    expect(writers.map((i) => i.kind === 'service' && i.service)).toEqual(['scheduler']);
  });

  it('let only the scheduler (the notifier) and the catalog read or write the notification channels', () => {
    const readers = everyoneButAdmin.filter(
      (i) =>
        mayPublish(i, '$JS.API.DIRECT.GET.KV_volback-notify-channels.$KV.volback-notify-channels.ops') ||
        mayPublish(i, '$JS.API.STREAM.MSG.GET.KV_volback-notify-channels') ||
        mayPublish(i, '$KV.volback-notify-channels.ops'),
    );
    expect(readers.map((i) => i.kind === 'service' && i.service)).toEqual(['scheduler', 'catalog']);
  });
});
