/**
 * A number of bytes shared by several users: `take` waits until its bytes fit, first come first
 * served; `give` returns them. A take larger than the whole budget is granted when nothing else is
 * taken, so it cannot wait forever.
 */
export class ByteBudget {
  readonly limit: number;
  #used = 0;
  readonly #waiting: Array<{ bytes: number; grant: () => void }> = [];

  constructor(limit: number) {
    this.limit = limit;
  }

  /** Bytes taken and not yet given back. */
  get used(): number {
    return this.#used;
  }

  /** Takes `bytes` if they fit now and nobody waits before; never waits. */
  tryTake(bytes: number): boolean {
    if (this.#waiting.length > 0 || !this.#fits(bytes)) return false;
    this.#used += bytes;
    return true;
  }

  /** Takes `bytes` once they fit, after those who asked before. */
  take(bytes: number): Promise<void> {
    if (this.tryTake(bytes)) return Promise.resolve();
    return new Promise((grant) => this.#waiting.push({ bytes, grant }));
  }

  /** Gives back bytes taken before. */
  give(bytes: number): void {
    this.#used -= bytes;
    while (this.#waiting.length > 0 && this.#fits(this.#waiting[0]!.bytes)) {
      const next = this.#waiting.shift()!;
      this.#used += next.bytes;
      next.grant();
    }
  }

  #fits(bytes: number): boolean {
    return this.#used === 0 || this.#used + bytes <= this.limit;
  }
}
