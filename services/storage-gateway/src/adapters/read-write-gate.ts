interface Waiter {
  readonly exclusive: boolean;
  readonly start: () => void;
}

/**
 * Many shared holders or one exclusive holder, first come first served: a waiting exclusive
 * holder stops new shared ones from overtaking it. The gateway stores blobs (shared) while no
 * flush or index reload (exclusive) runs, since both change what the repository handle tracks.
 */
export class ReadWriteGate {
  #shared = 0;
  #exclusive = false;
  readonly #queue: Waiter[] = [];

  /** Runs `fn` alongside other shared holders. */
  shared<T>(fn: () => Promise<T>): Promise<T> {
    return this.#run(false, fn);
  }

  /** Runs `fn` alone. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.#run(true, fn);
  }

  async #run<T>(exclusive: boolean, fn: () => Promise<T>): Promise<T> {
    await new Promise<void>((resolve) => {
      this.#queue.push({ exclusive, start: resolve });
      this.#pump();
    });
    try {
      return await fn();
    } finally {
      if (exclusive) this.#exclusive = false;
      else this.#shared--;
      this.#pump();
    }
  }

  #pump(): void {
    while (this.#queue.length > 0 && !this.#exclusive) {
      const next = this.#queue[0]!;
      if (next.exclusive) {
        if (this.#shared > 0) return;
        this.#exclusive = true;
      } else {
        this.#shared++;
      }
      this.#queue.shift();
      next.start();
    }
  }
}
