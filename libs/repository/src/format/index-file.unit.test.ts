import { describe, expect, it } from 'vitest';
import { indexFileFor, indexFileSchema, parseIndexFile, plainIndexFile } from './index-file.ts';
import { expectFastPathSound } from '../test-support/fast-path.ts';

describe('the plain-index fast path accepts only what the schema accepts', () => {
  const id = 'c'.repeat(64);
  const blob = { id, type: 'data', offset: 0, length: 40, uncompressed_length: 100 };
  const base = { supersedes: ['d'.repeat(64)], packs: [{ id: 'e'.repeat(64), blobs: [blob] }] };
  const withBlob = (change: Record<string, unknown>, drop?: string) => {
    const b: Record<string, unknown> = { ...blob, ...change };
    if (drop) delete b[drop];
    return { ...base, packs: [{ id: base.packs[0]!.id, blobs: [blob, b] }] };
  };
  const variants: unknown[] = [
    null,
    [],
    {},
    base,
    { packs: [] },
    { supersedes: null, packs: [] },
    { supersedes: [id.toUpperCase()], packs: [] },
    { supersedes: id, packs: [] },
    { packs: [], other: 1 },
    { packs: {} },
    { packs: [{ id, blobs: [], extra: 1 }] },
    { packs: [{ id: 'x', blobs: [] }] },
    { packs: [{ id, blobs: {} }] },
    JSON.parse(`{"packs":[],"__proto__":{"x":1}}`),
    withBlob({ type: 'tree' }),
    withBlob({ type: 'other' }),
    withBlob({ offset: -1 }),
    withBlob({ offset: 1.5 }),
    withBlob({ offset: 2 ** 53 }),
    withBlob({ length: 0 }),
    withBlob({ length: -0 }),
    withBlob({ uncompressed_length: 0 }),
    withBlob({ uncompressed_length: null }),
    withBlob({}, 'uncompressed_length'),
    withBlob({}, 'length'),
    withBlob({}, 'id'),
    withBlob({ id: 'f'.repeat(63) }),
    withBlob({ extra: true }),
  ];

  it('every variant the fast path takes, the schema takes, with the same content', () => {
    const fast = expectFastPathSound(plainIndexFile, indexFileSchema, (data) => data, variants);
    expect(fast).toBeGreaterThan(5);
  });

  it('index files volback writes take the fast path; bad ones are refused with the schema’s words', () => {
    const written = JSON.parse(
      JSON.stringify(
        indexFileFor(new Map([[id, [{ id, type: 'data', offset: 0, length: 40, uncompressedLength: 9 }]]])),
      ),
    ) as unknown;
    expect(plainIndexFile(written)).toBeDefined();
    expect(() => parseIndexFile(withBlob({ length: 0 }), 'f1')).toThrow(/index f1/);
  });
});
