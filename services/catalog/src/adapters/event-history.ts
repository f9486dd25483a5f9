import { DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { checkEventOrigin, parseMessage, STREAMS, type Envelope } from '@volback/contracts';
import type { NatsConnection } from '@volback/messaging';
import { matchesLiveFilter, type LiveFilter } from './live-events.ts';

/** Most events one history request reads from the log, whatever it finds. */
const MAX_SCANNED = 200_000;

/** One stored event and its place in the log. */
export interface HistoryItem {
  /** Stream sequence in `VOLBACK_EVENTS`: pass it as `before` to read further back. */
  seq: number;
  event: Envelope;
}

/** A page of history: the newest matching events, oldest first. */
export interface HistoryPage {
  items: HistoryItem[];
  /** How many events matched in the window (more than `items` when the page is cut). */
  matched: number;
  /** Older matches exist: pass as `before` for them; null when `items` holds every match. */
  nextCursor: string | null;
  /** The scan stopped at its cap before reaching the window's end. */
  capped: boolean;
}

/**
 * Reads the event log (`VOLBACK_EVENTS`) back for `GET /v1/events`: the events since a time, the
 * newest `limit` of those that match, with an ordered consumer (nothing stays on the server).
 */
export class EventHistory {
  readonly #nc: NatsConnection;

  constructor(nc: NatsConnection) {
    this.#nc = nc;
  }

  async read(request: {
    since: Date;
    /** Only events before this stream sequence. */
    before?: number | undefined;
    limit: number;
    filter: LiveFilter;
  }): Promise<HistoryPage> {
    const empty: HistoryPage = { items: [], matched: 0, nextCursor: null, capped: false };
    const jsm = await jetstreamManager(this.#nc);
    const { state } = await jsm.streams.info(STREAMS.events.name);
    const last = Math.min(state.last_seq, (request.before ?? Number.MAX_SAFE_INTEGER) - 1);
    if (state.messages === 0 || last < state.first_seq) return empty;
    // The consumer below waits for a first message: only start it when one is in the window.
    const newest = await jsm.streams.getMessage(STREAMS.events.name, { seq: last }).catch(() => null);
    if (!newest || newest.time.getTime() < request.since.getTime()) return empty;

    const consumer = await jetstream(this.#nc).consumers.get(STREAMS.events.name, {
      deliver_policy: DeliverPolicy.StartTime,
      opt_start_time: request.since.toISOString(),
    });
    const messages = await consumer.consume({ max_messages: 512 });
    const kept: HistoryItem[] = [];
    let matched = 0;
    let scanned = 0;
    let capped = false;
    try {
      for await (const msg of messages) {
        if (msg.seq > last) break;
        const parsed = parseMessage(msg.data);
        if (
          parsed.ok &&
          // A forged event is not history: the projection refused it (MessageRejected).
          checkEventOrigin(msg.subject, parsed.message.envelope, msg.time).ok &&
          matchesLiveFilter(parsed.message.envelope, request.filter)
        ) {
          matched++;
          kept.push({ seq: msg.seq, event: parsed.message.envelope });
          if (kept.length > request.limit) kept.shift();
        }
        if (msg.seq >= last) break;
        if (++scanned >= MAX_SCANNED) {
          capped = true;
          break;
        }
      }
    } finally {
      await messages.close();
    }
    return {
      items: kept,
      matched,
      nextCursor: matched > kept.length && kept[0] ? String(kept[0].seq) : null,
      capped,
    };
  }

  /** The sequence of the newest event stored now (0: none). */
  async lastSequence(): Promise<number> {
    const jsm = await jetstreamManager(this.#nc);
    return (await jsm.streams.info(STREAMS.events.name)).state.last_seq;
  }

  /**
   * The events after stream sequence `after` up to `upTo` that match `filter`, oldest first, at
   * most `max` of them (`more`: the range held more). What an SSE client missed while away.
   */
  async readAfter(request: {
    after: number;
    upTo: number;
    max: number;
    filter: LiveFilter;
  }): Promise<{ items: HistoryItem[]; more: boolean }> {
    const jsm = await jetstreamManager(this.#nc);
    const { state } = await jsm.streams.info(STREAMS.events.name);
    const from = Math.max(request.after + 1, state.first_seq);
    const upTo = Math.min(request.upTo, state.last_seq);
    if (state.messages === 0 || from > upTo) return { items: [], more: false };
    const consumer = await jetstream(this.#nc).consumers.get(STREAMS.events.name, {
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: from,
    });
    const messages = await consumer.consume({ max_messages: 512 });
    const items: HistoryItem[] = [];
    let more = false;
    let scanned = 0;
    try {
      for await (const msg of messages) {
        if (msg.seq > upTo) break;
        const parsed = parseMessage(msg.data);
        if (
          parsed.ok &&
          checkEventOrigin(msg.subject, parsed.message.envelope, msg.time).ok &&
          matchesLiveFilter(parsed.message.envelope, request.filter)
        ) {
          if (items.length === request.max) {
            more = true;
            break;
          }
          items.push({ seq: msg.seq, event: parsed.message.envelope });
        }
        if (msg.seq >= upTo) break;
        if (++scanned >= MAX_SCANNED) {
          more = true;
          break;
        }
      }
    } finally {
      await messages.close();
    }
    return { items, more };
  }
}
