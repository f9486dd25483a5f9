import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { STREAMS } from '@volback/contracts';
import type { HealthCheck } from '@volback/observability';

/** `nats-connected`: the connection is up (not closed, not between reconnects). */
export function natsConnectedCheck(nc: NatsConnection): HealthCheck {
  return {
    name: 'nats-connected',
    async check() {
      if (nc.isClosed()) return { ok: false, detail: 'connection closed' };
      try {
        const rtt = await nc.rtt();
        return { ok: true, detail: `${nc.getServer()} rtt ${rtt} ms` };
      } catch (error) {
        return { ok: false, detail: `no answer from ${nc.getServer()}: ${(error as Error).message}` };
      }
    },
  };
}

/** `streams-present`: every volback stream exists on the server. */
export function streamsPresentCheck(nc: NatsConnection): HealthCheck {
  return {
    name: 'streams-present',
    async check() {
      const jsm = await jetstreamManager(nc, { timeout: 2_000 });
      const missing: string[] = [];
      for (const { name } of Object.values(STREAMS)) {
        await jsm.streams.info(name).catch(() => missing.push(name));
      }
      return missing.length
        ? { ok: false, detail: `missing stream(s): ${missing.join(', ')}` }
        : { ok: true };
    },
  };
}

/** The readiness checks every service connected to NATS exposes on `/readyz`. */
export function natsHealthChecks(nc: NatsConnection): HealthCheck[] {
  return [natsConnectedCheck(nc), streamsPresentCheck(nc)];
}
