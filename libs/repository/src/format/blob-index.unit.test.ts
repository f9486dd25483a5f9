import { describe, expect, it } from 'vitest';
import { RepositoryError, RepositoryErrorCode } from '../errors.ts';
import { sha256Hex } from './ids.ts';
import { BlobIndex, type IndexEntry, type IndexFile } from './index-file.ts';

const idOf = (n: number) => sha256Hex(Buffer.from(`blob ${n}`));
const packOf = (n: number) => sha256Hex(Buffer.from(`pack ${n}`));

/** The RepositoryError `act` throws. */
function thrownBy(act: () => void): RepositoryError {
  try {
    act();
  } catch (error) {
    expect(error).toBeInstanceOf(RepositoryError);
    return error as RepositoryError;
  }
  throw new Error('did not throw');
}

/** What the index answers, to compare before and after a refused call. */
function stateOf(index: BlobIndex, ids: readonly string[]) {
  return {
    size: index.size,
    packIds: [...index.packIds()],
    packs: [...index.packs()],
    found: ids.flatMap((id) => [index.get('data', id), index.get('tree', id)]),
  };
}

describe('the in-memory blob index', () => {
  it('keeps the same id as a data blob and as a tree blob apart', () => {
    const index = new BlobIndex();
    const id = idOf(1);
    index.add({ packId: packOf(1), id, type: 'data', offset: 0, length: 100 });
    expect(index.has('data', id)).toBe(true);
    expect(index.has('tree', id)).toBe(false);

    index.add({ packId: packOf(2), id, type: 'tree', offset: 7, length: 50 });
    expect(index.get('data', id)).toEqual({ packId: packOf(1), id, type: 'data', offset: 0, length: 100 });
    expect(index.get('tree', id)).toEqual({ packId: packOf(2), id, type: 'tree', offset: 7, length: 50 });
    expect(index.size).toBe(2);
  });

  it('finds the first entry of a blob added twice, and lists both copies in their packs', () => {
    const index = new BlobIndex();
    const id = idOf(1);
    const first: IndexEntry = { packId: packOf(1), id, type: 'data', offset: 0, length: 100 };
    const copy: IndexEntry = { packId: packOf(2), id, type: 'data', offset: 300, length: 100 };
    const other: IndexEntry = { packId: packOf(2), id: idOf(2), type: 'tree', offset: 0, length: 300 };
    index.add(first);
    index.add(other);
    index.add(copy);

    expect(index.get('data', id)).toEqual(first);
    expect(index.size).toBe(2);
    expect(index.packs()).toEqual(
      new Map([
        [packOf(1), [first]],
        [packOf(2), [other, copy]],
      ]),
    );
  });

  it('gives back an uncompressed length only where one was added, 0 included', () => {
    const index = new BlobIndex();
    const file: IndexFile = {
      packs: [
        {
          id: packOf(1),
          blobs: [
            { id: idOf(1), type: 'data', offset: 0, length: 40, uncompressed_length: 0 },
            { id: idOf(2), type: 'data', offset: 40, length: 60, uncompressed_length: 2 ** 32 - 1 },
            { id: idOf(3), type: 'tree', offset: 100, length: 2 ** 32 - 1 },
          ],
        },
      ],
    };
    index.addFile(file);
    const last: IndexEntry = {
      packId: packOf(2),
      id: idOf(4),
      type: 'data',
      offset: 2 ** 32 - 1,
      length: 1,
      uncompressedLength: 0,
    };
    index.add(last);
    index.add({ packId: packOf(2), id: idOf(5), type: 'data', offset: 1, length: 1 });

    expect(index.get('data', idOf(1))).toEqual({
      packId: packOf(1),
      id: idOf(1),
      type: 'data',
      offset: 0,
      length: 40,
      uncompressedLength: 0,
    });
    expect(index.get('data', idOf(2))?.uncompressedLength).toBe(2 ** 32 - 1);
    expect(index.get('data', idOf(4))).toEqual(last);
    for (const [type, id] of [
      ['tree', idOf(3)],
      ['data', idOf(5)],
    ] as const) {
      const entry = index.get(type, id)!;
      expect('uncompressedLength' in entry, id).toBe(false);
    }
    expect(index.get('tree', idOf(3))?.length).toBe(2 ** 32 - 1);
  });

  it('finds every one of 100,000 entries, added one by one and by file, after its arrays grew many times', () => {
    const index = new BlobIndex();
    const expected = (n: number): IndexEntry => ({
      packId: packOf(n % 37),
      id: idOf(n),
      type: n % 3 === 0 ? 'tree' : 'data',
      offset: n * 7,
      length: 1 + (n % 1000),
      ...(n % 2 === 0 ? { uncompressedLength: n % 5 } : {}),
    });
    for (let n = 0; n < 50_000; n++) index.add(expected(n));
    const packs = new Map<string, IndexFile['packs'][number]['blobs']>();
    for (let n = 50_000; n < 100_000; n++) {
      const e = expected(n);
      const blobs = packs.get(e.packId) ?? [];
      packs.set(e.packId, blobs);
      blobs.push({
        id: e.id,
        type: e.type,
        offset: e.offset,
        length: e.length,
        ...(e.uncompressedLength === undefined ? {} : { uncompressed_length: e.uncompressedLength }),
      });
    }
    index.addFile({ packs: [...packs].map(([id, blobs]) => ({ id, blobs })) });

    expect(index.size).toBe(100_000);
    for (let n = 0; n < 100_000; n++) {
      const e = expected(n);
      expect(index.get(e.type, e.id)).toEqual(e);
      if (n % 3 !== 0 && index.has('tree', e.id)) expect.fail(`data blob ${n} found as a tree`);
    }
    const listed = [...index.packs().values()].flat();
    expect(listed).toHaveLength(100_000);
    expect(new Set(listed.map((e) => `${e.type}:${e.id}`)).size).toBe(100_000);
  });

  it('finds nothing for ids it does not hold or that are no ids, without throwing', () => {
    const index = new BlobIndex();
    const id = idOf(1);
    index.add({ packId: packOf(1), id, type: 'data', offset: 0, length: 1 });
    const letter = id.search(/[a-f]/);

    for (const absent of [
      idOf(2),
      id.toUpperCase(),
      id.slice(0, letter) + id[letter]!.toUpperCase() + id.slice(letter + 1),
      id.slice(0, 62),
      id + '00',
      id.slice(0, 63) + 'g',
      id.slice(0, 63) + ' ',
      '',
      'data:' + id,
    ]) {
      expect(index.has('data', absent), absent).toBe(false);
      expect(index.get('data', absent), absent).toBeUndefined();
    }
    expect(index.has('data', id)).toBe(true);
  });

  it('refuses out-of-range offsets and lengths and bad ids as malformed, and is unchanged by them', () => {
    const index = new BlobIndex();
    const good: IndexEntry = { packId: packOf(1), id: idOf(1), type: 'data', offset: 0, length: 10 };
    index.add(good);
    const before = stateOf(index, [idOf(1), idOf(2)]);

    const bad: Array<Partial<IndexEntry>> = [
      { offset: 2 ** 32 },
      { offset: -1 },
      { offset: 1.5 },
      { offset: Number.NaN },
      { length: 2 ** 32 },
      { length: -5 },
      { uncompressedLength: 2 ** 32 },
      { uncompressedLength: -1 },
      { id: idOf(2).toUpperCase() },
      { id: idOf(2).slice(0, 63) },
      { id: idOf(2).slice(0, 63) + 'x' },
      { id: '' },
    ];
    for (const change of bad) {
      const entry = {
        packId: packOf(2),
        id: idOf(2),
        type: 'data' as const,
        offset: 0,
        length: 10,
        ...change,
      };
      const error = thrownBy(() => index.add(entry));
      expect(error.code, JSON.stringify(change)).toBe(RepositoryErrorCode.Malformed);
      expect(error.message).toContain(JSON.stringify(entry.id));
      expect(stateOf(index, [idOf(1), idOf(2)])).toEqual(before);
      expect(index.hasPack(packOf(2))).toBe(false);
    }
    expect(thrownBy(() => index.add({ ...good, id: idOf(2), offset: 2 ** 32 })).message).toMatch(
      /offset 4294967296/,
    );
  });

  it('adds nothing of an index file with one bad blob among good ones', () => {
    const index = new BlobIndex();
    index.add({ packId: packOf(1), id: idOf(1), type: 'data', offset: 0, length: 10 });
    const ids = [idOf(1), idOf(2), idOf(3), idOf(4), idOf(5)];
    const before = stateOf(index, ids);
    const blob = (n: number) => ({ id: idOf(n), type: 'data' as const, offset: n, length: 10 });

    for (const badBlob of [
      { ...blob(4), length: 2 ** 32 },
      { ...blob(4), id: 'no id' },
    ]) {
      const file: IndexFile = {
        packs: [
          { id: packOf(1), blobs: [blob(2)] },
          { id: packOf(2), blobs: [blob(3), badBlob, blob(5)] },
          { id: packOf(3), blobs: [blob(5)] },
        ],
      };
      expect(thrownBy(() => index.addFile(file)).code).toBe(RepositoryErrorCode.Malformed);
      expect(stateOf(index, ids)).toEqual(before);
      expect(index.hasPack(packOf(2))).toBe(false);
    }

    // Still whole: a good file after the refused ones numbers its packs afresh.
    index.addFile({ packs: [{ id: packOf(2), blobs: [blob(3)] }] });
    expect(index.get('data', idOf(3))?.packId).toBe(packOf(2));
    expect([...index.packs().keys()]).toEqual([packOf(1), packOf(2)]);
  });

  it('answers which packs it knows without listing their blobs', () => {
    const index = new BlobIndex();
    expect([...index.packIds()]).toEqual([]);
    index.addFile({
      packs: [
        { id: packOf(2), blobs: [{ id: idOf(1), type: 'data', offset: 0, length: 1 }] },
        { id: packOf(1), blobs: [{ id: idOf(2), type: 'tree', offset: 0, length: 1 }] },
        { id: packOf(3), blobs: [] },
      ],
    });
    index.add({ packId: packOf(2), id: idOf(3), type: 'data', offset: 1, length: 1 });

    expect([...index.packIds()]).toEqual([packOf(2), packOf(1)]);
    expect(index.hasPack(packOf(1))).toBe(true);
    expect(index.hasPack(packOf(3))).toBe(false); // no blobs, as packs() has it
    expect([...index.packs().keys()]).toEqual([...index.packIds()]);
  });
});
