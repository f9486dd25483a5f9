import { z } from 'zod';
import { RepositoryError, RepositoryErrorCode } from '../errors.ts';
import { ABSENT, Column, IdTable } from './id-table.ts';
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

/** Flag bit of an entry with an uncompressed length (which may be 0, so it needs its own bit). */
const HAS_UNCOMPRESSED_LENGTH = 1;
/** A type's kind in the {@link IdTable}. */
const kindOf = (type: BlobType): 0 | 1 => (type === 'tree' ? 1 : 0);

/**
 * The in-memory index: blob (type and id) → its place in a pack. Packed as restic packs its own
 * (`internal/repository/index/indexmap.go`), because a storage gateway keeps the index of the
 * whole repository: an entry is a row of an {@link IdTable} (the 32-byte id and its type, found
 * through an open-addressing hash table) and of typed arrays by the same row (pack number,
 * offset, length and uncompressed length as uint32; a byte of flags): 50 bytes a row and 8 to 16
 * of the table's, the columns grown a page at a time ({@link Column}). No object or string per
 * blob stays alive; {@link get} builds what it returns.
 *
 * The key is (type, id): the same id may be a data blob and a tree blob. The first entry added
 * for a key is the one found; every entry added, duplicates too, stays listed in its pack
 * ({@link packs}), because check and prune need every copy.
 */
export class BlobIndex {
  /** The entries' ids and types, found by key; its rows are the entries, duplicates included. */
  readonly #ids = new IdTable();
  /** Each entry's pack number: its index in {@link #packIds}. */
  readonly #packOf = new Column(Uint32Array);
  readonly #offsets = new Column(Uint32Array);
  readonly #lengths = new Column(Uint32Array);
  readonly #uncompressedLengths = new Column(Uint32Array);
  readonly #flags = new Column(Uint8Array);
  /** Pack ids by pack number, in the order their first entry came. */
  readonly #packIds: string[] = [];
  readonly #packNumbers = new Map<string, number>();

  static key(type: BlobType, id: string): string {
    return `${type}:${id}`;
  }

  /**
   * Adds where one blob is. An id that is not 64 lower-case hex digits, or an offset or length
   * that is not an integer from 0 to 2³² − 1, throws {@link RepositoryErrorCode.Malformed} and
   * adds nothing.
   */
  add(entry: IndexEntry): void {
    this.#reserve(this.#ids.rows + 1);
    this.#staged(() => {
      const { packId, id, type, offset, length, uncompressedLength } = entry;
      this.#stage(this.#ids.rows, packId, id, type, offset, length, uncompressedLength);
      return this.#ids.rows + 1;
    });
  }

  /** Adds every blob of an index file; one malformed blob (as for {@link add}) and none is added. */
  addFile(file: IndexFile): void {
    let blobs = 0;
    for (const pack of file.packs) blobs += pack.blobs.length;
    this.#reserve(this.#ids.rows + blobs);
    this.#staged(() => {
      let row = this.#ids.rows;
      for (const pack of file.packs) {
        for (const b of pack.blobs)
          this.#stage(row++, pack.id, b.id, b.type, b.offset, b.length, b.uncompressed_length);
      }
      return row;
    });
  }

  get(type: BlobType, id: string): IndexEntry | undefined {
    const e = this.#ids.find(kindOf(type), id);
    return e === ABSENT ? undefined : this.#entry(e, id);
  }

  has(type: BlobType, id: string): boolean {
    return this.#ids.has(kindOf(type), id);
  }

  /**
   * Every pack the index knows, with every entry added for it (duplicates too) in the order
   * added. Builds the listing, an object per entry, on each call: for maintenance (check,
   * prune); {@link packIds} and {@link hasPack} answer without it.
   */
  packs(): ReadonlyMap<string, readonly IndexEntry[]> {
    const lists = this.#packIds.map((): IndexEntry[] => []);
    for (let e = 0; e < this.#ids.rows; e++)
      lists[this.#packOf.get(e)]!.push(this.#entry(e, this.#ids.id(e)));
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
    return this.#ids.size;
  }

  #entry(e: number, id: string): IndexEntry {
    const packId = this.#packIds[this.#packOf.get(e)]!;
    const type = this.#ids.kind(e) === 1 ? 'tree' : 'data';
    const offset = this.#offsets.get(e);
    const length = this.#lengths.get(e);
    return this.#flags.get(e) & HAS_UNCOMPRESSED_LENGTH
      ? { packId, id, type, offset, length, uncompressedLength: this.#uncompressedLengths.get(e) }
      : { packId, id, type, offset, length };
  }

  /**
   * Runs `stage`, which writes entries past the table's rows and returns where they end, then
   * commits them. If it throws, the packs it numbered are forgotten: the index is as it was.
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
    this.#ids.commit(end);
  }

  #stage(
    row: number,
    packId: string,
    id: string,
    type: BlobType,
    offset: number,
    length: number,
    uncompressedLength: number | undefined,
  ): void {
    const fault =
      entryFault(type, offset, length, uncompressedLength) ??
      (this.#ids.write(row, kindOf(type), id) ? undefined : 'id is not 64 lower-case hex digits');
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
    this.#packOf.set(row, packNumber);
    this.#offsets.set(row, offset);
    this.#lengths.set(row, length);
    this.#uncompressedLengths.set(row, uncompressedLength ?? 0);
    this.#flags.set(row, uncompressedLength === undefined ? 0 : HAS_UNCOMPRESSED_LENGTH);
  }

  /** Grows the table and the entry columns with it to hold `entries`. */
  #reserve(entries: number): void {
    if (!this.#ids.reserve(entries)) return;
    const capacity = this.#ids.capacity;
    for (const column of [this.#packOf, this.#offsets, this.#lengths, this.#uncompressedLengths, this.#flags])
      column.resize(capacity);
  }
}
