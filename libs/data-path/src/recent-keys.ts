/** The keys added last, between `limit` and twice that many: two generations, the older dropped whole. */
export class RecentKeys {
  readonly #limit: number;
  #current = new Set<string>();
  #previous = new Set<string>();

  constructor(limit: number) {
    this.#limit = limit;
  }

  /** Keys remembered now. */
  get size(): number {
    return this.#current.size + this.#previous.size;
  }

  has(key: string): boolean {
    return this.#current.has(key) || this.#previous.has(key);
  }

  add(key: string): void {
    if (this.#current.size >= this.#limit) {
      this.#previous = this.#current;
      this.#current = new Set();
    }
    this.#current.add(key);
  }

  delete(key: string): void {
    this.#current.delete(key);
    this.#previous.delete(key);
  }
}
