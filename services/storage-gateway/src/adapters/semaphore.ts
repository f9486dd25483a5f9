/** At most `limit` holders at once; the others wait in arrival order. */
export class Semaphore {
  readonly #limit: number;
  #held = 0;
  readonly #waiting: Array<() => void> = [];

  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 1)
      throw new RangeError(`a semaphore needs a limit of 1 or more, got ${limit}`);
    this.#limit = limit;
  }

  /** Holders right now. */
  get held(): number {
    return this.#held;
  }

  /** Waits for a slot; call the returned function exactly once to give it back. */
  async acquire(): Promise<() => void> {
    if (this.#held >= this.#limit) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    else this.#held++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#waiting.shift();
      if (next)
        next(); // the slot passes on directly
      else this.#held--;
    };
  }

  /** Runs `fn` holding a slot. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const release = await this.acquire();
    try {
      return await fn();
    } finally {
      release();
    }
  }
}
