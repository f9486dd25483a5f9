import { isId } from './ids.ts';

/** What {@link IdTable.find} answers for a key it does not hold. */
export const ABSENT = -1;
const ID_BYTES = 32;
const ID_WORDS = 8;

/** Rows in a full page of a {@link Column}: 2¹⁴, 512 KiB of ids. */
const PAGE_SHIFT = 14;
export const PAGE_ROWS = 1 << PAGE_SHIFT;
const PAGE_MASK = PAGE_ROWS - 1;
/** Rows a new table has room for. */
const FIRST_CAPACITY = 64;

/**
 * A column of numbers by row, `width` to a row, kept in pages: the first grows by doubling up to
 * {@link PAGE_ROWS} rows, then a page of that size is added at a time. Growing never copies more
 * than one page, and what is unused stays under a page: an array grown by doubling holds up to
 * twice what it needs, and both copies while it grows (at a million blobs, 50 and 25 MB of the
 * in-memory index).
 */
export class Column<T extends Uint8Array | Uint32Array> {
  readonly #Array: new (length: number) => T;
  readonly #width: number;
  readonly #pages: T[];

  /** A column of `TypedArray`s (`Uint32Array`, `Uint8Array`). */
  constructor(TypedArray: new (length: number) => T, width = 1) {
    this.#Array = TypedArray;
    this.#width = width;
    this.#pages = [new TypedArray(FIRST_CAPACITY * width)];
  }

  /** Makes room for `capacity` rows: a power of two up to {@link PAGE_ROWS}, else a multiple of it. */
  resize(capacity: number): void {
    const pages = this.#pages;
    const first = Math.min(capacity, PAGE_ROWS) * this.#width;
    if (pages[0]!.length < first) {
      const copy = new this.#Array(first);
      copy.set(pages[0]!);
      pages[0] = copy;
    }
    while (pages.length * PAGE_ROWS < capacity) pages.push(new this.#Array(PAGE_ROWS * this.#width));
  }

  /** The pages, first to last. */
  pages(): readonly T[] {
    return this.#pages;
  }

  /** The page holding `row`; its values start at {@link at}. */
  page(row: number): T {
    return this.#pages[row >>> PAGE_SHIFT]!;
  }

  /** Where `row`'s values start in its {@link page}. */
  at(row: number): number {
    return (row & PAGE_MASK) * this.#width;
  }

  get(row: number): number {
    return this.#pages[row >>> PAGE_SHIFT]![row & PAGE_MASK]!;
  }

  set(row: number, value: number): void {
    this.#pages[row >>> PAGE_SHIFT]![row & PAGE_MASK] = value;
  }
}

/** Rows there is room for once `rows` are: a power of two up to {@link PAGE_ROWS}, then whole pages. */
export function capacityFor(rows: number, capacity: number): number {
  if (rows <= capacity) return capacity;
  if (rows > PAGE_ROWS) return Math.ceil(rows / PAGE_ROWS) * PAGE_ROWS;
  let grown = capacity;
  while (grown < rows) grown *= 2;
  return grown;
}

/**
 * Ids (64 lower-case hex digits, kept as their 32 bytes), each of a kind (0 or 1: data or tree),
 * in rows numbered in the order written, found by (kind, id) through an open-addressing hash table
 * of row numbers (4 bytes a slot, at most half full): 33 bytes a row, in {@link Column} pages, and
 * about 8 a key, no object or string per id. The in-memory index ({@link BlobIndex}) keeps its
 * other columns by the same row numbers; a storage gateway's read scopes use it as a set
 * ({@link add}).
 *
 * Rows are written first ({@link write}) and become findable when committed ({@link commit}), so
 * that a caller can take a batch whole or not at all. Several rows may hold one key: the first
 * committed is the one found.
 */
export class IdTable {
  #capacity = FIRST_CAPACITY;
  /** Rows committed. */
  #rows = 0;
  /** Distinct keys: the rows in {@link #table}. */
  #keys = 0;
  /** The ids as words, for comparing and hashing. */
  readonly #ids = new Column(Uint32Array, ID_WORDS);
  /** The same pages as bytes, for hex. */
  #idBytes: Buffer[] = IdTable.#asBytes(this.#ids);
  readonly #kinds = new Column(Uint8Array);
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

  /** Rows there is room for: a caller's own {@link Column}s are resized to this by {@link reserve}. */
  get capacity(): number {
    return this.#capacity;
  }

  /** Makes room for `rows` rows ({@link capacityFor}); true when it grew. */
  reserve(rows: number): boolean {
    const capacity = capacityFor(rows, this.#capacity);
    if (capacity === this.#capacity) return false;
    this.#ids.resize(capacity);
    this.#kinds.resize(capacity);
    this.#idBytes = IdTable.#asBytes(this.#ids);
    this.#capacity = capacity;
    return true;
  }

  /**
   * Writes (kind, id) into `row`, at or past {@link rows} and within {@link capacity}, not findable
   * until {@link commit}; false, writing nothing, for a string that is no id.
   */
  write(row: number, kind: 0 | 1, id: string): boolean {
    if (typeof id !== 'string' || !isId(id)) return false;
    this.#bytes(row).write(id, this.#ids.at(row) * 4, ID_BYTES, 'hex');
    this.#kinds.set(row, kind);
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

  /** As {@link add}, for an id given as its 32 bytes (a `RangeError` for another length). */
  addBytes(kind: 0 | 1, id: Uint8Array): boolean {
    if (id.length !== ID_BYTES) throw new RangeError(`an id of ${id.length} bytes`);
    const row = this.#rows;
    this.reserve(row + 1);
    this.#bytes(row).set(id, this.#ids.at(row) * 4);
    this.#kinds.set(row, kind);
    if (!this.#insert(row)) return false;
    this.#rows++;
    return true;
  }

  /** As {@link find}, for an id given as its 32 bytes ({@link ABSENT} for another length). */
  findBytes(kind: 0 | 1, id: Uint8Array): number {
    if (id.length !== ID_BYTES) return ABSENT;
    this.#scratch.set(id);
    return this.#table[this.#probe(kind, this.#scratchWords, 0)]!;
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
    return this.#kinds.get(row) as 0 | 1;
  }

  /** The id of `row`, in hex. */
  id(row: number): string {
    const at = this.#ids.at(row) * 4;
    return this.#bytes(row).toString('hex', at, at + ID_BYTES);
  }

  /** Copies the 32 bytes of `row`'s id into `target` at `at`; returns how many (32). */
  copyId(row: number, target: Uint8Array, at: number): number {
    const from = this.#ids.at(row) * 4;
    return this.#bytes(row).copy(target, at, from, from + ID_BYTES);
  }

  /** The bytes of the page of ids holding `row`. */
  #bytes(row: number): Buffer {
    return this.#idBytes[row >>> PAGE_SHIFT]!;
  }

  static #asBytes(ids: Column<Uint32Array>): Buffer[] {
    return ids.pages().map((page) => Buffer.from(page.buffer, page.byteOffset, page.byteLength));
  }

  /** The table slot holding the key (`kind`, the id at `words[at]`), or the free slot it would take. */
  #probe(kind: number, words: Uint32Array, at: number): number {
    const table = this.#table;
    const ids = this.#ids;
    const kinds = this.#kinds;
    const mask = table.length - 1;
    for (let slot = this.#hash(kind, words[at]!) & mask; ; slot = (slot + 1) & mask) {
      const row = table[slot]!;
      if (row === ABSENT) return slot;
      const page = ids.page(row);
      const w = ids.at(row);
      if (
        kinds.get(row) === kind &&
        page[w] === words[at] &&
        page[w + 1] === words[at + 1] &&
        page[w + 2] === words[at + 2] &&
        page[w + 3] === words[at + 3] &&
        page[w + 4] === words[at + 4] &&
        page[w + 5] === words[at + 5] &&
        page[w + 6] === words[at + 6] &&
        page[w + 7] === words[at + 7]
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
    const slot = this.#probe(this.#kinds.get(row), this.#ids.page(row), this.#ids.at(row));
    if (this.#table[slot] !== ABSENT) return false;
    this.#table[slot] = row;
    this.#keys++;
    return true;
  }

  #rehash(length: number): void {
    const old = this.#table;
    this.#table = new Int32Array(length).fill(ABSENT);
    for (const row of old) {
      if (row !== ABSENT)
        this.#table[this.#probe(this.#kinds.get(row), this.#ids.page(row), this.#ids.at(row))] = row;
    }
  }
}
