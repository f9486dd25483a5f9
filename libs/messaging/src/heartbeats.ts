import { DeliverPolicy, jetstream, jetstreamManager, type ConsumerMessages } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { parseHeartbeat, STREAMS, type Heartbeat } from '@volback/contracts';
import { closeWithin } from './consumer.ts';

/** Options of {@link followHeartbeats}. */
export interface HeartbeatFollowerOptions {
  readonly nc: NatsConnection;
  readonly logger: { warn(obj: object, msg?: string): void };
  /** Called with every valid heartbeat: each host's last one first, then each new one. */
  readonly onHeartbeat: (heartbeat: Heartbeat) => void;
}

/** A running {@link followHeartbeats}. */
export interface HeartbeatFollower {
  /** Resolves once each host's last stored heartbeat has been handed over. */
  readonly caughtUp: Promise<void>;
  stop(): Promise<void>;
}

/**
 * Follows `VOLBACK_HEARTBEATS` (liveness): an ordered consumer that starts at each host's last
 * heartbeat (the stream keeps only that) and goes on with the new ones. A read that ends (server
 * gone, stream recreated) starts again from the last per host: heartbeats only ever move a host's
 * last-seen time forward, so reading one twice changes nothing. A heartbeat whose host is not its
 * subject's, or that breaks its schema, is skipped with a warning.
 */
export async function followHeartbeats(options: HeartbeatFollowerOptions): Promise<HeartbeatFollower> {
  const { nc, logger } = options;
  const jsm = await jetstreamManager(nc);
  let markCaughtUp!: () => void;
  const caughtUp = new Promise<void>((resolve) => (markCaughtUp = resolve));
  let stopped = false;
  let messages: ConsumerMessages | undefined;
  const follow = async (): Promise<void> => {
    const { state } = await jsm.streams.info(STREAMS.heartbeats.name);
    if (state.messages === 0) markCaughtUp();
    const consumer = await jetstream(nc).consumers.get(STREAMS.heartbeats.name, {
      filter_subjects: [...STREAMS.heartbeats.subjects],
      deliver_policy: DeliverPolicy.LastPerSubject,
    });
    if (stopped) return;
    const current = await consumer.consume({ max_messages: 256, expires: 10_000 });
    messages = current;
    if (stopped) return void (await closeWithin(current));
    for await (const msg of current) {
      const parsed = parseHeartbeat(msg.subject, msg.data);
      if (parsed.ok) options.onHeartbeat(parsed.heartbeat);
      else
        logger.warn(
          { subject: msg.subject, code: parsed.error.code, err: parsed.error.message },
          'skipping a heartbeat',
        );
      if (msg.info.pending === 0) markCaughtUp();
    }
  };
  const loop = (async () => {
    for (let failures = 0; !stopped; failures++) {
      try {
        await follow();
      } catch (error) {
        if (stopped || nc.isClosed()) return;
        logger.warn({ err: (error as Error).message }, 'reading the heartbeats failed; resuming');
      }
      if (stopped) return;
      await new Promise((resolve) => setTimeout(resolve, Math.min(5_000, 250 * 2 ** Math.min(failures, 5))));
    }
  })();
  return {
    caughtUp,
    async stop() {
      stopped = true;
      if (messages) await closeWithin(messages);
      await loop.catch(() => undefined);
    },
  };
}
