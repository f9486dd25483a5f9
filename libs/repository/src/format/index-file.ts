import { z } from 'zod';
import { RepositoryError, RepositoryErrorCode } from '../errors.ts';
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

const HEX_ID = /^[0-9a-f]{64}$/;
const isId = (v: unknown) => typeof v === 'string' && HEX_ID.test(v);
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
      if (v !== null && (!Array.isArray(v) || !v.every(isId))) return undefined;
    } else if (key === 'packs') {
      if (!Array.isArray(v)) return undefined;
      for (const pack of v) {
        if (!isObject(pack) || !isId(pack['id']) || !Array.isArray(pack['blobs'])) return undefined;
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
      if (!isId(v)) return false;
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

/** The in-memory index: blob (type and id) → its place in a pack. */
export class BlobIndex {
  /** By id, one map per type: no `type:id` key to build for a lookup (one per file of a walk). */
  readonly #data = new Map<string, IndexEntry>();
  readonly #tree = new Map<string, IndexEntry>();
  readonly #packs = new Map<string, IndexEntry[]>();

  static key(type: BlobType, id: string): string {
    return `${type}:${id}`;
  }

  #of(type: BlobType): Map<string, IndexEntry> {
    return type === 'tree' ? this.#tree : this.#data;
  }

  add(entry: IndexEntry): void {
    const blobs = this.#of(entry.type);
    if (!blobs.has(entry.id)) blobs.set(entry.id, entry);
    let list = this.#packs.get(entry.packId);
    if (!list) this.#packs.set(entry.packId, (list = []));
    list.push(entry);
  }

  addFile(file: IndexFile): void {
    for (const pack of file.packs) {
      for (const b of pack.blobs) {
        const { id, type, offset, length } = b;
        const compressed = b.uncompressed_length;
        this.add(
          compressed === undefined
            ? { packId: pack.id, id, type, offset, length }
            : { packId: pack.id, id, type, offset, length, uncompressedLength: compressed },
        );
      }
    }
  }

  get(type: BlobType, id: string): IndexEntry | undefined {
    return this.#of(type).get(id);
  }

  has(type: BlobType, id: string): boolean {
    return this.#of(type).has(id);
  }

  /** Every pack the index knows, with its blobs. */
  packs(): ReadonlyMap<string, readonly IndexEntry[]> {
    return this.#packs;
  }

  get size(): number {
    return this.#data.size + this.#tree.size;
  }
}
