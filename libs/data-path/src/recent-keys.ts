import { ABSENT, IdTable, isId } from '@volback/repository';

/** A blob's type, as the key's kind. */
type Kind = 'data' | 'tree';
const kindOf = (kind: Kind): 0 | 1 => (kind === 'tree' ? 1 : 0);

/**
 * The blobs added last, between `limit` and twice that many: two generations, the older dropped
 * whole. Kept as bytes ({@link IdTable}, about 45 bytes a blob): a `Set` of `type:id` strings took
 * about 100 (13 MiB of an agent's heap at 2 × 65,536). A string that is no id is never held.
 */
export class RecentKeys {
  readonly #limit: number;
  #current = new IdTable();
  #previous = new IdTable();
  /** Deleted while a generation still holds them (an `IdTable` cannot forget one): rare, failures only. */
  readonly #deleted = new Set<string>();
  /** The id last looked up, as bytes: decoded once for both generations. */
  readonly #scratch = Buffer.alloc(32);

  constructor(limit: number) {
    this.#limit = limit;
  }

  /** Blobs remembered now. */
  get size(): number {
    return this.#current.size + this.#previous.size - this.#deleted.size;
  }

  has(kind: Kind, id: string): boolean {
    return this.#held(kind, id) && (this.#deleted.size === 0 || !this.#deleted.has(`${kind}:${id}`));
  }

  /** Whether a generation holds the blob, deleted or not; leaves its id in {@link #scratch}. */
  #held(kind: Kind, id: string): boolean {
    if (!isId(id)) return false;
    this.#scratch.write(id, 'hex');
    const k = kindOf(kind);
    return (
      this.#current.findBytes(k, this.#scratch) !== ABSENT ||
      this.#previous.findBytes(k, this.#scratch) !== ABSENT
    );
  }

  add(kind: Kind, id: string): void {
    if (!isId(id)) return;
    this.#scratch.write(id, 'hex');
    if (this.#current.size >= this.#limit) {
      for (const key of this.#deleted) {
        const [k, i] = key.split(':') as [Kind, string];
        if (!this.#current.has(kindOf(k), i)) this.#deleted.delete(key); // its generation is gone
      }
      this.#previous = this.#current;
      this.#current = new IdTable();
    }
    this.#deleted.delete(`${kind}:${id}`);
    this.#current.addBytes(kindOf(kind), this.#scratch);
  }

  delete(kind: Kind, id: string): void {
    if (this.#held(kind, id)) this.#deleted.add(`${kind}:${id}`);
  }
}
