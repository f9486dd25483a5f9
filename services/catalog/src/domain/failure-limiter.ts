/** How many failures an address may have in a window before it is refused until the window ends. */
export interface FailureLimit {
  readonly max: number;
  readonly windowMs: number;
}

interface Window {
  count: number;
  endsAt: number;
}

/**
 * Counts failures (wrong or missing tokens) per client address in fixed windows: the first failure
 * opens a window of `windowMs`; once `max` failures are in it, the address is refused until it ends,
 * right tokens too, so guessing costs `windowMs` per `max` tries. Bounded: at most `maxAddresses`
 * windows are kept (expired ones first, then the oldest go). The clock is passed in.
 */
export class FailureLimiter {
  readonly #limit: FailureLimit;
  readonly #maxAddresses: number;
  readonly #windows = new Map<string, Window>();

  constructor(limit: FailureLimit, maxAddresses = 10_000) {
    this.#limit = limit;
    this.#maxAddresses = maxAddresses;
  }

  /** Seconds until `address` may try again, or undefined when it may now. */
  retryAfter(address: string, nowMs: number): number | undefined {
    const window = this.#windows.get(address);
    if (!window) return undefined;
    if (window.endsAt <= nowMs) {
      this.#windows.delete(address);
      return undefined;
    }
    return window.count >= this.#limit.max ? Math.ceil((window.endsAt - nowMs) / 1000) : undefined;
  }

  /** Records one failure of `address`. */
  fail(address: string, nowMs: number): void {
    const window = this.#windows.get(address);
    if (window && window.endsAt > nowMs) {
      window.count += 1;
      return;
    }
    this.#windows.delete(address);
    if (this.#windows.size >= this.#maxAddresses) this.#evict(nowMs);
    this.#windows.set(address, { count: 1, endsAt: nowMs + this.#limit.windowMs });
  }

  #evict(nowMs: number): void {
    for (const [address, window] of this.#windows) if (window.endsAt <= nowMs) this.#windows.delete(address);
    // Map order is insertion order: the first key is the oldest window.
    while (this.#windows.size >= this.#maxAddresses) {
      const oldest = this.#windows.keys().next().value as string;
      this.#windows.delete(oldest);
    }
  }
}
