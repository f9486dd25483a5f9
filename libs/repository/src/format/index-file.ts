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

/** Validates a decoded index file. */
export function parseIndexFile(value: unknown, fileId: string): IndexFile {
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
  readonly #blobs = new Map<string, IndexEntry>();
  readonly #packs = new Map<string, IndexEntry[]>();

  static key(type: BlobType, id: string): string {
    return `${type}:${id}`;
  }

  add(entry: IndexEntry): void {
    const key = BlobIndex.key(entry.type, entry.id);
    if (!this.#blobs.has(key)) this.#blobs.set(key, entry);
    let list = this.#packs.get(entry.packId);
    if (!list) this.#packs.set(entry.packId, (list = []));
    list.push(entry);
  }

  addFile(file: IndexFile): void {
    for (const pack of file.packs) {
      for (const b of pack.blobs) {
        this.add({
          packId: pack.id,
          id: b.id,
          type: b.type,
          offset: b.offset,
          length: b.length,
          ...(b.uncompressed_length !== undefined ? { uncompressedLength: b.uncompressed_length } : {}),
        });
      }
    }
  }

  get(type: BlobType, id: string): IndexEntry | undefined {
    return this.#blobs.get(BlobIndex.key(type, id));
  }

  has(type: BlobType, id: string): boolean {
    return this.#blobs.has(BlobIndex.key(type, id));
  }

  /** Every pack the index knows, with its blobs. */
  packs(): ReadonlyMap<string, readonly IndexEntry[]> {
    return this.#packs;
  }

  get size(): number {
    return this.#blobs.size;
  }
}
