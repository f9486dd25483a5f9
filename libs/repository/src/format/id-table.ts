import { isId } from './ids.ts';

/** What {@link IdTable.find} answers for a key it does not hold. */
export const ABSENT = -1;
const ID_BYTES = 32;
const ID_WORDS = 8;

/**
 * Ids (64 lower-case hex digits, kept as their 32 bytes), each of a kind (0 or 1: data or tree),
 * in rows numbered in the order written, found by (kind, id) through an open-addressing hash table
 * of row numbers (4 bytes a slot, at most half full): 33 bytes a row and about 8 a key, no object
 * or string per id. The in-memory index ({@link BlobIndex}) keeps its other columns by the same
 * row numbers; a storage gateway's read scopes use it as a set ({@link add}).
 *
 * Rows are written first ({@link write}) and become findable when committed ({@link commit}), so
 * that a caller can take a batch whole or not at all. Several rows may hold one key: the first
 * committed is the one found.
 */
export class IdTable {
  #capacity = 64;
  /** Rows committed. */
  #rows = 0;
  /** Distinct keys: the rows in {@link #table}. */
  #keys = 0;
  /** The ids as words, for comparing and hashing. */
  #idWords = new Uint32Array(this.#capacity * ID_WORDS);
  /** The same ids as bytes, for hex. */
  #ids = Buffer.from(this.#idWords.buffer);
  #kinds = new Uint8Array(this.#capacity);
  /** Row numbers by hash, {@link ABSENT} where free: linear probing, a power-of-two length. */
  #table = new Int32Array(128).fill(ABSENT);
  /**
   * Mixed into the hash, one per kind. Ids are SHA-256, but a slot depends on a few bits of one
   * word; unseeded, ids crafted to share those bits would be cheap to make and would turn lookups
   * into long scans (restic seeds its hash for the same reason).
   */
  readonly #seeds = crypto.getRandomValues(new Uint32Array(2));
  /** A looked-up id, decoded: no allocation per lookup. */
  readonly #scratchWords = new Uint32Array(ID_WORDS);
  readonly #scratch = Buffer.from(this.#scratchWords.buffer);

  /** Rows committed. */
  get rows(): number {
    return this.#rows;
  }

  /** Distinct (kind, id) keys. */
  get size(): number {
    return this.#keys;
  }

  /** Rows there is room for: a caller's own columns are grown to this by {@link reserve}. */
  get capacity(): number {
    return this.#capacity;
  }

  /** Makes room for `rows` rows (by doubling); true when it grew. */
  reserve(rows: number): boolean {
    if (rows <= this.#capacity) return false;
    let capacity = this.#capacity;
    while (capacity < rows) capacity *= 2;
    this.#idWords = grown(this.#idWords, capacity * ID_WORDS);
    this.#ids = Buffer.from(this.#idWords.buffer);
    this.#kinds = grown(this.#kinds, capacity);
    this.#capacity = capacity;
    return true;
  }

  /**
   * Writes (kind, id) into `row`, at or past {@link rows} and within {@link capacity}, not findable
   * until {@link commit}; false, writing nothing, for a string that is no id.
   */
  write(row: number, kind: 0 | 1, id: string): boolean {
    if (typeof id !== 'string' || !isId(id)) return false;
    this.#ids.write(id, row * ID_BYTES, ID_BYTES, 'hex');
    this.#kinds[row] = kind;
    return true;
  }

  /** Commits the rows written up to `end`: each becomes findable unless its key already is. */
  commit(end: number): void {
    for (; this.#rows < end; this.#rows++) this.#insert(this.#rows);
  }

  /**
   * A set's add: (kind, id) in a row of its own unless it is held already; true when it was added.
   * A string that is no id is refused (a `TypeError`). The id is checked, decoded and looked up
   * once: written into the next row, which is committed only when its key is new.
   */
  add(kind: 0 | 1, id: string): boolean {
    const row = this.#rows;
    this.reserve(row + 1);
    if (!this.write(row, kind, id)) throw new TypeError(`${JSON.stringify(id)} is not an id`);
    if (!this.#insert(row)) return false;
    this.#rows++;
    return true;
  }

  /** The first committed row of (kind, id), or {@link ABSENT}: also for a string that is no id. */
  find(kind: 0 | 1, id: string): number {
    if (typeof id !== 'string' || !isId(id)) return ABSENT;
    this.#scratch.write(id, 0, ID_BYTES, 'hex');
    return this.#table[this.#probe(kind, this.#scratchWords, 0)]!;
  }

  has(kind: 0 | 1, id: string): boolean {
    return this.find(kind, id) !== ABSENT;
  }

  kind(row: number): 0 | 1 {
    return this.#kinds[row] as 0 | 1;
  }

  /** The id of `row`, in hex. */
  id(row: number): string {
    return this.#ids.toString('hex', row * ID_BYTES, (row + 1) * ID_BYTES);
  }

  /** The table slot holding the key (`kind`, the id at `words[at]`), or the free slot it would take. */
  #probe(kind: number, words: Uint32Array, at: number): number {
    const table = this.#table;
    const ids = this.#idWords;
    const kinds = this.#kinds;
    const mask = table.length - 1;
    for (let slot = this.#hash(kind, words[at]!) & mask; ; slot = (slot + 1) & mask) {
      const row = table[slot]!;
      if (row === ABSENT) return slot;
      const w = row * ID_WORDS;
      if (
        kinds[row] === kind &&
        ids[w] === words[at] &&
        ids[w + 1] === words[at + 1] &&
        ids[w + 2] === words[at + 2] &&
        ids[w + 3] === words[at + 3] &&
        ids[w + 4] === words[at + 4] &&
        ids[w + 5] === words[at + 5] &&
        ids[w + 6] === words[at + 6] &&
        ids[w + 7] === words[at + 7]
      ) {
        return slot;
      }
    }
  }

  /** One word of the id, with the kind's seed, through murmur3's finalizer. */
  #hash(kind: number, word: number): number {
    let h = word ^ this.#seeds[kind]!;
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    return h ^ (h >>> 16);
  }

  /** Makes a written row findable unless its key already is; true when its key is new. */
  #insert(row: number): boolean {
    if ((this.#keys + 1) * 2 > this.#table.length) this.#rehash(this.#table.length * 2);
    const slot = this.#probe(this.#kinds[row]!, this.#idWords, row * ID_WORDS);
    if (this.#table[slot] !== ABSENT) return false;
    this.#table[slot] = row;
    this.#keys++;
    return true;
  }

  #rehash(length: number): void {
    const old = this.#table;
    this.#table = new Int32Array(length).fill(ABSENT);
    for (const row of old) {
      if (row !== ABSENT) this.#table[this.#probe(this.#kinds[row]!, this.#idWords, row * ID_WORDS)] = row;
    }
  }
}

/** `array` copied into a new one of `length`. */
export function grown<T extends Uint8Array | Uint32Array>(array: T, length: number): T {
  const copy = new (array.constructor as new (length: number) => T)(length);
  copy.set(array);
  return copy;
}
