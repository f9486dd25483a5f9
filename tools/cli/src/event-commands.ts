// `volback events`: the event log's history, and with --follow its live stream, gap-free across
// reconnects.
import type { EventEnvelope, EventPage } from './api.ts';
import { CatalogRequestError } from './catalog-client.ts';
import { EXIT, type CatalogContext } from './catalog-context.ts';
import { UsageError } from './usage-error.ts';

/** `1h`, `30m`, `2d` or a time → the moment it names. */
export function sinceOf(raw: string, now = new Date()): Date {
  const rel = /^(\d+)([smhd])$/.exec(raw);
  if (rel) {
    const unit = { s: 1, m: 60, h: 3600, d: 86_400 }[rel[2] as 's' | 'm' | 'h' | 'd'];
    return new Date(now.getTime() - Number(rel[1]) * unit * 1000);
  }
  const at = new Date(raw);
  if (Number.isNaN(at.getTime()))
    throw new UsageError(`--since: a duration (30m, 2h, 1d) or a time, got ${raw}`);
  return at;
}

/** Prints the events since `--since` (the newest `--limit`), then with `--follow` the live ones. */
export async function eventsCommand(
  ctx: CatalogContext,
  o: {
    follow?: boolean;
    host?: string;
    volume?: string;
    type?: string[];
    work?: string;
    since?: string;
    limit?: string;
  },
): Promise<number> {
  const filter = new URLSearchParams();
  if (o.host) filter.set('host', o.host);
  if (o.volume) filter.set('volume', o.volume);
  if (o.type?.length) filter.set('type', o.type.join(','));
  if (o.work) filter.set('work', o.work);
  const print = (envelope: EventEnvelope) =>
    process.stdout.write(
      ctx.json
        ? `${JSON.stringify(envelope)}\n`
        : `${envelope.time}  ${envelope.type.replace(/^io\.volback\./, '')}  ${envelope.subject}\n`,
    );
  const history = async (since: Date, limit: number) => {
    const query = new URLSearchParams(filter);
    query.set('since', since.toISOString());
    query.set('limit', String(limit));
    return ctx.client.get<EventPage>(`/v1/events?${query}`);
  };
  const limit = Number(o.limit ?? 100);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new UsageError('--limit: 1 to 1000');
  if (!o.follow) {
    const page = await history(sinceOf(o.since ?? '24h'), limit);
    for (const item of page.items) print(item.event);
    if (page.truncated)
      ctx.out.notice(
        `showing the newest ${page.items.length} of ${page.matched} events since ${o.since ?? '24h'} ago; raise --limit (up to 1000) or narrow --since`,
      );
    return EXIT.ok;
  }
  return followEvents(ctx, filter, o.since ? sinceOf(o.since) : undefined, history, print);
}

/**
 * `events --follow`: the live stream, reconnected when it drops (a catalog restart). On each
 * (re)connection the stream opens first, then the history since the last event seen fills the
 * gap; ids already printed are dropped, so nothing is lost or printed twice.
 */
async function followEvents(
  ctx: CatalogContext,
  filter: URLSearchParams,
  since: Date | undefined,
  history: (since: Date, limit: number) => Promise<{ items: Array<{ event: EventEnvelope }> }>,
  print: (e: EventEnvelope) => void,
): Promise<number> {
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  process.once('SIGTERM', () => controller.abort());
  const seen = new Set<string>();
  const seenOrder: string[] = [];
  let lastTime = since;
  const emit = (e: EventEnvelope) => {
    if (seen.has(e.id)) return;
    seen.add(e.id);
    seenOrder.push(e.id);
    if (seenOrder.length > 10_000) seen.delete(seenOrder.shift()!);
    lastTime = new Date(e.time);
    print(e);
  };
  let delay = 500;
  let lost = false;
  while (!controller.signal.aborted) {
    let buffered: EventEnvelope[] | null = [];
    try {
      await ctx.client.stream(
        `/v1/events/stream?${filter}`,
        (event) => {
          if (event.event === 'progress') return;
          const envelope = JSON.parse(event.data) as EventEnvelope;
          if (buffered) buffered.push(envelope);
          else emit(envelope);
        },
        controller.signal,
        async () => {
          if (lost) ctx.out.notice('reconnected to the catalog');
          lost = false;
          delay = 500;
          if (lastTime) {
            // Events at the last second seen may be new too: ids already printed are dropped.
            const page = await history(new Date(lastTime.getTime() - 1000), 1000);
            for (const item of page.items) emit(item.event);
          }
          for (const e of buffered ?? []) emit(e);
          buffered = null;
        },
      );
    } catch (error) {
      if (controller.signal.aborted) break;
      // An answer that says no (a bad token, an unknown host) ends it; a lost connection does not.
      if (error instanceof CatalogRequestError && error.status !== 0) throw error;
    }
    if (controller.signal.aborted) break;
    if (!lost) ctx.out.notice('lost the catalog; reconnecting (Ctrl-C stops)');
    lost = true;
    lastTime ??= new Date();
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 5_000);
  }
  return EXIT.ok;
}
