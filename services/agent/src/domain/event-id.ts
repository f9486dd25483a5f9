import { createHash } from 'node:crypto';

/**
 * JSON with object keys sorted and `undefined` members left out: equal values give equal text,
 * whatever order their keys were built in.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>)
            .filter(([, member]) => member !== undefined)
            .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
        )
      : v,
  );
}

/** Bumped only if the id derivation changes (which would re-publish what is already stored). */
const ID_SCHEME = 'volback.agent.event-id/1';

/**
 * An event id derived from what the event says, not from when it was said: the same decision
 * made twice (a retry, a restart, a second agent process) gives the same id, which is also the
 * `Nats-Msg-Id`, so JetStream stores it once. Shaped as a UUID (version 8, RFC 9562: custom
 * layout) from the first 128 bits of a SHA-256 over the canonical JSON of `parts`.
 */
export function deterministicEventId(parts: readonly unknown[]): string {
  const digest = createHash('sha256')
    .update(canonicalJson([ID_SCHEME, ...parts]))
    .digest();
  digest[6] = (digest[6]! & 0x0f) | 0x80;
  digest[8] = (digest[8]! & 0x3f) | 0x80;
  const hex = digest.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
