import { z } from 'zod';
import { RepositoryError, RepositoryErrorCode } from '../errors.ts';
import { isId } from './ids.ts';
import type { BlobType, PackedBlob } from './pack.ts';

const id = z.string().regex(/^[0-9a-f]{64}$/);

/** An index file's JSON (design.rst, "Indexing"). */
export const indexFileSchema = z.object({
  supersedes: z.array(id).nullish(),
  packs: z.array(
    z.object({
      id,
      blobs: z.array(
        z.object({
          id,
          type: z.enum(['data', 'tree']),
          offset: z.number().int().nonnegative(),
          length: z.number().int().positive(),
          uncompressed_length: z.number().int().nonnegative().optional(),
        }),
      ),
    }),
  ),
});
/** A parsed index file. */
export type IndexFile = z.infer<typeof indexFileSchema>;

/** Where to find one blob. */
export interface IndexEntry extends PackedBlob {
  readonly packId: string;
}

/** Builds an index file's JSON for packs just written. */
export function indexFileFor(
  packs: ReadonlyMap<string, readonly PackedBlob[]>,
  supersedes: readonly string[] = [],
): IndexFile {
  return {
    supersedes: [...supersedes],
    packs: [...packs].map(([packId, blobs]) => ({
      id: packId,
      blobs: blobs.map((b) => ({
        id: b.id,
        type: b.type,
        offset: b.offset,
        length: b.length,
        ...(b.uncompressedLength !== undefined ? { uncompressed_length: b.uncompressedLength } : {}),
      })),
    })),
  };
}

const isIdString = (v: unknown) => typeof v === 'string' && isId(v);
const isCount = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The index file as it is when it is of the common shape and valid exactly as
 * {@link indexFileSchema} says, checked without zod building its result (an index of 35,000 blobs
 * took zod about 60 ms); else undefined, and the schema decides and words the error. Only what
 * the schema accepts passes (the unit test holds the two together).
 */
export function plainIndexFile(value: unknown): IndexFile | undefined {
  if (!isObject(value)) return undefined;
  for (const key of Object.keys(value)) {
    const v = value[key];
    if (key === 'supersedes') {
      if (v !== null && (!Array.isArray(v) || !v.every(isIdString))) return undefined;
    } else if (key === 'packs') {
      if (!Array.isArray(v)) return undefined;
      for (const pack of v) {
        if (!isObject(pack) || !isIdString(pack['id']) || !Array.isArray(pack['blobs'])) return undefined;
        if (Object.keys(pack).length !== 2) return undefined;
        for (const blob of pack['blobs'] as unknown[]) if (!isPlainBlob(blob)) return undefined;
      }
    } else return undefined;
  }
  return 'packs' in value ? (value as IndexFile) : undefined;
}

function isPlainBlob(blob: unknown): boolean {
  if (!isObject(blob)) return false;
  for (const key of Object.keys(blob)) {
    const v = blob[key];
    if (key === 'id') {
      if (!isIdString(v)) return false;
    } else if (key === 'type') {
      if (v !== 'data' && v !== 'tree') return false;
    } else if (key === 'offset' || key === 'uncompressed_length') {
      if (!isCount(v)) return false;
    } else if (key === 'length') {
      if (!isCount(v) || v === 0) return false;
    } else return false;
  }
  return 'id' in blob && 'type' in blob && 'offset' in blob && 'length' in blob;
}

/** Validates a decoded index file. */
export function parseIndexFile(value: unknown, fileId: string): IndexFile {
  const plain = plainIndexFile(value);
  if (plain) return plain;
  const parsed = indexFileSchema.safeParse(value);
  if (!parsed.success) {
    throw new RepositoryError(
      RepositoryErrorCode.Malformed,
      `index ${fileId}: ${z.prettifyError(parsed.error)}`,
    );
  }
  return parsed.data;
}

/** Flag bit of a tree blob's entry in {@link BlobIndex} (also the index of its hash seed). */
const TREE = 1;
/** Flag bit of an entry with an uncompressed length (which may be 0, so it needs its own bit). */
const HAS_UNCOMPRESSED_LENGTH = 2;
/** A free slot of the hash table. */
const EMPTY = -1;
const ID_BYTES = 32;
const ID_WORDS = 8;
/** Decodes a full id into `into` at `at`; false, writing nothing, for anything else. */
function decodeId(id: string, into: Buffer, at: number): boolean {
  if (typeof id !== 'string' || !isId(id)) return false;
  into.write(id, at, ID_BYTES, 'hex');
  return true;
}

/** True for an integer from 0 to 2³² − 1: a uint32, as restic's in-memory index holds offsets and lengths. */
const isUint32 = (value: number) => value >>> 0 === value;
const NOT_UINT32 = 'is not an integer from 0 to 4294967295';

/** What is wrong with an entry's type, offset or lengths, if anything. */
function entryFault(
  type: BlobType,
  offset: number,
  length: number,
  uncompressedLength: number | undefined,
): string | undefined {
  if (type !== 'data' && type !== 'tree') return `type ${String(type)} is neither data nor tree`;
  if (!isUint32(offset)) return `offset ${offset} ${NOT_UINT32}`;
  if (!isUint32(length)) return `length ${length} ${NOT_UINT32}`;
  if (uncompressedLength !== undefined && !isUint32(uncompressedLength))
    return `uncompressed length ${uncompressedLength} ${NOT_UINT32}`;
  return undefined;
}

/**
 * The in-memory index: blob (type and id) → its place in a pack. Packed as restic packs its own
 * (`internal/repository/index/indexmap.go`), because a storage gateway keeps the index of the
 * whole repository: an entry is a slot in typed arrays (the 32-byte id; pack number, offset,
 * length and uncompressed length as uint32; a byte of flags: 49 bytes, the arrays grown by
 * doubling), found through an open-addressing hash table of entry numbers (4 bytes a slot, at
 * most half full). No object or string per blob stays alive; {@link get} builds what it returns.
 *
 * The key is (type, id): the same id may be a data blob and a tree blob. The first entry added
 * for a key is the one found; every entry added, duplicates too, stays listed in its pack
 * ({@link packs}), because check and prune need every copy.
 */
export class BlobIndex {
  #capacity = 64;
  /** Entries written, duplicates included. */
  #count = 0;
  /** Distinct (type, id) keys: the entries in {@link #table}. */
  #keys = 0;
  /** The ids as words, for comparing and hashing. */
  #idWords = new Uint32Array(this.#capacity * ID_WORDS);
  /** The same ids as bytes, for hex. */
  #ids = Buffer.from(this.#idWords.buffer);
  /** Each entry's pack number: its index in {@link #packIds}. */
  #packOf = new Uint32Array(this.#capacity);
  #offsets = new Uint32Array(this.#capacity);
  #lengths = new Uint32Array(this.#capacity);
  #uncompressedLengths = new Uint32Array(this.#capacity);
  #flags = new Uint8Array(this.#capacity);
  /** Pack ids by pack number, in the order their first entry came. */
  readonly #packIds: string[] = [];
  readonly #packNumbers = new Map<string, number>();
  /** Entry numbers by hash, {@link EMPTY} where free: linear probing, a power-of-two length. */
  #table = new Int32Array(128).fill(EMPTY);
  /**
   * Mixed into the hash, one per type. Ids are SHA-256, but a slot depends on a few bits of one
   * word; unseeded, blobs crafted to share those bits would be cheap to make and would turn
   * lookups into long scans (restic seeds its hash for the same reason).
   */
  readonly #seeds = crypto.getRandomValues(new Uint32Array(2));
  /** A looked-up id, decoded: no allocation per lookup. */
  readonly #scratchWords = new Uint32Array(ID_WORDS);
  readonly #scratch = Buffer.from(this.#scratchWords.buffer);

  static key(type: BlobType, id: string): string {
    return `${type}:${id}`;
  }

  /**
   * Adds where one blob is. An id that is not 64 lower-case hex digits, or an offset or length
   * that is not an integer from 0 to 2³² − 1, throws {@link RepositoryErrorCode.Malformed} and
   * adds nothing.
   */
  add(entry: IndexEntry): void {
    this.#reserve(this.#count + 1);
    this.#staged(() => {
      const { packId, id, type, offset, length, uncompressedLength } = entry;
      this.#stage(this.#count, packId, id, type, offset, length, uncompressedLength);
      return this.#count + 1;
    });
  }

  /** Adds every blob of an index file; one malformed blob (as for {@link add}) and none is added. */
  addFile(file: IndexFile): void {
    let blobs = 0;
    for (const pack of file.packs) blobs += pack.blobs.length;
    this.#reserve(this.#count + blobs);
    this.#staged(() => {
      let slot = this.#count;
      for (const pack of file.packs) {
        for (const b of pack.blobs)
          this.#stage(slot++, pack.id, b.id, b.type, b.offset, b.length, b.uncompressed_length);
      }
      return slot;
    });
  }

  get(type: BlobType, id: string): IndexEntry | undefined {
    const e = this.#find(type, id);
    return e === EMPTY ? undefined : this.#entry(e, id);
  }

  has(type: BlobType, id: string): boolean {
    return this.#find(type, id) !== EMPTY;
  }

  /**
   * Every pack the index knows, with every entry added for it (duplicates too) in the order
   * added. Builds the listing, an object per entry, on each call: for maintenance (check,
   * prune); {@link packIds} and {@link hasPack} answer without it.
   */
  packs(): ReadonlyMap<string, readonly IndexEntry[]> {
    const lists = this.#packIds.map((): IndexEntry[] => []);
    for (let e = 0; e < this.#count; e++) {
      const id = this.#ids.toString('hex', e * ID_BYTES, (e + 1) * ID_BYTES);
      lists[this.#packOf[e]!]!.push(this.#entry(e, id));
    }
    return new Map(this.#packIds.map((packId, n) => [packId, lists[n]!]));
  }

  /** The ids of the packs the index knows, in the order their first entry came. */
  packIds(): Iterable<string> {
    return this.#packNumbers.keys();
  }

  hasPack(packId: string): boolean {
    return this.#packNumbers.has(packId);
  }

  get size(): number {
    return this.#keys;
  }

  #entry(e: number, id: string): IndexEntry {
    const packId = this.#packIds[this.#packOf[e]!]!;
    const flags = this.#flags[e]!;
    const type = flags & TREE ? 'tree' : 'data';
    const offset = this.#offsets[e]!;
    const length = this.#lengths[e]!;
    return flags & HAS_UNCOMPRESSED_LENGTH
      ? { packId, id, type, offset, length, uncompressedLength: this.#uncompressedLengths[e]! }
      : { packId, id, type, offset, length };
  }

  /**
   * Runs `stage`, which writes entries past {@link #count} and returns where they end, then
   * counts them. If it throws, the packs it numbered are forgotten: the index is as it was.
   */
  #staged(stage: () => number): void {
    const packs = this.#packIds.length;
    let end: number;
    try {
      end = stage();
    } catch (error) {
      for (const packId of this.#packIds.splice(packs)) this.#packNumbers.delete(packId);
      throw error;
    }
    for (; this.#count < end; this.#count++) {
      if ((this.#keys + 1) * 2 > this.#table.length) this.#rehash(this.#table.length * 2);
      const e = this.#count;
      const slot = this.#probe(this.#flags[e]! & TREE, this.#idWords, e * ID_WORDS);
      if (this.#table[slot] === EMPTY) {
        this.#table[slot] = e;
        this.#keys++;
      }
    }
  }

  #stage(
    slot: number,
    packId: string,
    id: string,
    type: BlobType,
    offset: number,
    length: number,
    uncompressedLength: number | undefined,
  ): void {
    const fault =
      entryFault(type, offset, length, uncompressedLength) ??
      (decodeId(id, this.#ids, slot * ID_BYTES) ? undefined : 'id is not 64 lower-case hex digits');
    if (fault !== undefined) {
      throw new RepositoryError(
        RepositoryErrorCode.Malformed,
        `index: ${String(type)} blob ${JSON.stringify(id)} in pack ${packId}: ${fault}`,
      );
    }
    let packNumber = this.#packNumbers.get(packId);
    if (packNumber === undefined) {
      packNumber = this.#packIds.push(packId) - 1;
      this.#packNumbers.set(packId, packNumber);
    }
    this.#packOf[slot] = packNumber;
    this.#offsets[slot] = offset;
    this.#lengths[slot] = length;
    this.#uncompressedLengths[slot] = uncompressedLength ?? 0;
    this.#flags[slot] =
      (type === 'tree' ? TREE : 0) | (uncompressedLength === undefined ? 0 : HAS_UNCOMPRESSED_LENGTH);
  }

  /** The entry number of (type, id), or {@link EMPTY}: also for a string that is no id. */
  #find(type: BlobType, id: string): number {
    if (!decodeId(id, this.#scratch, 0)) return EMPTY;
    return this.#table[this.#probe(type === 'tree' ? TREE : 0, this.#scratchWords, 0)]!;
  }

  /** The table slot holding the key (`tree`, the id at `words[at]`), or the free slot it would take. */
  #probe(tree: number, words: Uint32Array, at: number): number {
    const table = this.#table;
    const ids = this.#idWords;
    const flags = this.#flags;
    const mask = table.length - 1;
    for (let slot = this.#hash(tree, words[at]!) & mask; ; slot = (slot + 1) & mask) {
      const e = table[slot]!;
      if (e === EMPTY) return slot;
      const w = e * ID_WORDS;
      if (
        (flags[e]! & TREE) === tree &&
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

  /** One word of the id, with the type's seed, through murmur3's finalizer. */
  #hash(tree: number, word: number): number {
    let h = word ^ this.#seeds[tree]!;
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    return h ^ (h >>> 16);
  }

  #rehash(length: number): void {
    const old = this.#table;
    this.#table = new Int32Array(length).fill(EMPTY);
    for (const e of old) {
      if (e !== EMPTY) this.#table[this.#probe(this.#flags[e]! & TREE, this.#idWords, e * ID_WORDS)] = e;
    }
  }

  /** Grows the entry arrays, by doubling, to hold `entries`. */
  #reserve(entries: number): void {
    if (entries <= this.#capacity) return;
    let capacity = this.#capacity;
    while (capacity < entries) capacity *= 2;
    this.#idWords = grown(this.#idWords, capacity * ID_WORDS);
    this.#ids = Buffer.from(this.#idWords.buffer);
    this.#packOf = grown(this.#packOf, capacity);
    this.#offsets = grown(this.#offsets, capacity);
    this.#lengths = grown(this.#lengths, capacity);
    this.#uncompressedLengths = grown(this.#uncompressedLengths, capacity);
    this.#flags = grown(this.#flags, capacity);
    this.#capacity = capacity;
  }
}

/** `array` copied into a new one of `length`. */
function grown<T extends Uint8Array | Uint32Array>(array: T, length: number): T {
  const copy = new (array.constructor as new (length: number) => T)(length);
  copy.set(array);
  return copy;
}
