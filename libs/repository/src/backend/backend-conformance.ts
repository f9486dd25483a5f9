import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RepositoryError, RepositoryErrorCode } from '../errors.ts';
import {
  FILE_TYPES,
  layoutPath,
  type Backend,
  type FileHandle,
  type FileInfo,
  type FileType,
} from './backend.ts';

/**
 * One backend under test, over a location of its own that holds nothing yet (`create()` not
 * called).
 */
export interface BackendFixture {
  readonly backend: Backend;
  /**
   * Writes bytes at a layout path (`keys/junk`), past the backend: stands in for files that
   * another program or a half-finished upload left behind.
   */
  writeRaw(path: string, data: Uint8Array): Promise<void>;
  /** Closes the backend and deletes everything the test wrote. */
  cleanup(): Promise<void>;
}

/** A fresh random file id. */
function newId(firstTwo?: string): string {
  const id = randomBytes(32).toString('hex');
  return firstTwo === undefined ? id : firstTwo + id.slice(2);
}

async function listAll(backend: Backend, type: FileType): Promise<FileInfo[]> {
  const files: FileInfo[] = [];
  for await (const file of backend.list(type)) files.push(file);
  return files.sort((a, b) => a.name.localeCompare(b.name));
}

async function expectCode(promise: Promise<unknown>, code: RepositoryErrorCode): Promise<RepositoryError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(RepositoryError);
  expect((error as RepositoryError).code).toBe(code);
  return error as RepositoryError;
}

function expectBytes(actual: Buffer, expected: Uint8Array): void {
  // Buffer.equals, not toEqual: a 20 MiB diff would drown the report.
  expect(actual.length).toBe(expected.length);
  expect(actual.equals(expected)).toBe(true);
}

/**
 * The contract every {@link Backend} keeps, as one vitest suite (after restic's
 * `internal/backend/test/suite.go`). Each test gets a fresh fixture from `makeFixture`, already
 * `create()`d.
 */
export function describeBackendConformance(name: string, makeFixture: () => Promise<BackendFixture>): void {
  describe(`${name}: backend conformance`, () => {
    let fixture: BackendFixture;
    let backend: Backend;

    beforeEach(async () => {
      fixture = await makeFixture();
      backend = fixture.backend;
      await backend.create();
    });

    afterEach(async () => {
      await fixture.cleanup();
    });

    it('create is idempotent and keeps what is stored', async () => {
      const handle: FileHandle = { type: 'keys', name: newId() };
      await backend.create();
      await backend.save(handle, Buffer.from('key'));
      await backend.create();
      expect((await backend.load(handle)).toString()).toBe('key');
      expect(await listAll(backend, 'keys')).toEqual([{ name: handle.name, size: 3 }]);
    });

    it('location names the repository', () => {
      expect(typeof backend.location).toBe('string');
      expect(backend.location.length).toBeGreaterThan(0);
    });

    it.each([
      ['an empty file', 0],
      ['one byte', 1],
      ['an odd size', 64 * 1024 + 3],
      ['20 MiB', 20 * 1024 * 1024],
    ])('saves and loads %s byte for byte', async (_label, size) => {
      const data = randomBytes(size);
      const handle: FileHandle = { type: 'data', name: newId() };
      await backend.save(handle, data);
      expectBytes(await backend.load(handle), data);
      expect(await backend.stat(handle)).toEqual({ name: handle.name, size });
    });

    it('round-trips every file type', async () => {
      for (const type of FILE_TYPES) {
        const handle: FileHandle = { type, name: type === 'config' ? 'config' : newId() };
        const data = Buffer.from(`a ${type} file`);
        await backend.save(handle, data);
        expectBytes(await backend.load(handle), data);
      }
    });

    it('saves a file given as pieces (a pack: blobs, header, length) as their concatenation', async () => {
      const pieces = [randomBytes(5000), Buffer.alloc(0), randomBytes(1), randomBytes(70_000)];
      const many = Array.from({ length: 1500 }, (_, i) => Buffer.from([i & 0xff])); // above IOV_MAX
      for (const body of [pieces, many, [] as Buffer[]]) {
        const handle: FileHandle = { type: 'data', name: newId() };
        await backend.save(handle, body);
        expectBytes(await backend.load(handle), Buffer.concat(body));
      }
    });

    it('saves a Uint8Array view with an offset into its buffer', async () => {
      const backing = randomBytes(100);
      const view = new Uint8Array(backing.buffer, backing.byteOffset + 10, 50);
      const handle: FileHandle = { type: 'index', name: newId() };
      await backend.save(handle, view);
      expectBytes(await backend.load(handle), backing.subarray(10, 60));
    });

    describe('ranged loads', () => {
      const size = 4096 + 13;
      let data: Buffer;
      let handle: FileHandle;

      beforeEach(async () => {
        data = randomBytes(size);
        handle = { type: 'data', name: newId() };
        await backend.save(handle, data);
      });

      it.each([
        ['the start', { offset: 0, length: 10 }, [0, 10]],
        ['the middle', { offset: 1000, length: 333 }, [1000, 1333]],
        ['the end', { offset: size - 10, length: 10 }, [size - 10, size]],
        ['to the end (no length)', { offset: 17 }, [17, size]],
        ['the whole file (offset 0, no length)', { offset: 0 }, [0, size]],
        ['a length past the end', { offset: size - 5, length: 100 }, [size - 5, size]],
        ['a negative offset', { offset: -10 }, [size - 10, size]],
        ['a negative offset with a length', { offset: -100, length: 7 }, [size - 100, size - 93]],
        ['a negative offset before the start', { offset: -(size + 50) }, [0, size]],
        ['nothing (length 0)', { offset: 5, length: 0 }, [5, 5]],
        ['nothing (offset at the end)', { offset: size, length: 10 }, [size, size]],
        ['nothing (offset past the end)', { offset: size + 100 }, [size, size]],
      ] as const)('loads %s', async (_label, range, [from, to]) => {
        expectBytes(await backend.load(handle, range), data.subarray(from, to));
      });

      it('loads nothing from an empty file, whatever the range', async () => {
        const empty: FileHandle = { type: 'data', name: newId() };
        await backend.save(empty, new Uint8Array(0));
        for (const range of [{ offset: 0, length: 10 }, { offset: 3 }, { offset: -5 }, { offset: 0 }]) {
          expect((await backend.load(empty, range)).length).toBe(0);
        }
      });

      it('rejects malformed ranges', async () => {
        await expect(backend.load(handle, { offset: 1.5 })).rejects.toBeInstanceOf(RangeError);
        await expect(backend.load(handle, { offset: 0, length: -1 })).rejects.toBeInstanceOf(RangeError);
        await expect(backend.load(handle, { offset: Number.NaN })).rejects.toBeInstanceOf(RangeError);
      });
    });

    it('stats a file and reports a missing one as FileNotFound', async () => {
      const handle: FileHandle = { type: 'snapshots', name: newId() };
      await backend.save(handle, Buffer.alloc(123, 1));
      expect(await backend.stat(handle)).toEqual({ name: handle.name, size: 123 });
      await expectCode(backend.stat({ type: 'snapshots', name: newId() }), RepositoryErrorCode.FileNotFound);
      await expectCode(backend.stat({ type: 'config', name: 'config' }), RepositoryErrorCode.FileNotFound);
    });

    it('reports loading a missing file as FileNotFound, with or without a range', async () => {
      const missing: FileHandle = { type: 'data', name: newId() };
      const error = await expectCode(backend.load(missing), RepositoryErrorCode.FileNotFound);
      expect(error.message).toContain(missing.name);
      for (const range of [
        { offset: 0, length: 10 },
        { offset: 5 },
        { offset: -5 },
        { offset: 0, length: 0 },
      ]) {
        await expectCode(backend.load(missing, range), RepositoryErrorCode.FileNotFound);
      }
      await expectCode(backend.load({ type: 'config', name: 'config' }), RepositoryErrorCode.FileNotFound);
    });

    it('removes a file, and removing a missing one succeeds', async () => {
      const kept: FileHandle = { type: 'locks', name: newId() };
      const removed: FileHandle = { type: 'locks', name: newId() };
      await backend.save(kept, Buffer.from('kept'));
      await backend.save(removed, Buffer.from('removed'));
      await backend.remove(removed);
      await expectCode(backend.stat(removed), RepositoryErrorCode.FileNotFound);
      await backend.remove(removed);
      await backend.remove({ type: 'data', name: newId() });
      await backend.remove({ type: 'config', name: 'config' });
      expect(await listAll(backend, 'locks')).toEqual([{ name: kept.name, size: 4 }]);
    });

    it('lists each type on its own, data across its two-hex sub-directories', async () => {
      const expected = new Map<FileType, FileInfo[]>();
      for (const type of FILE_TYPES) {
        if (type === 'config') continue;
        const files: FileInfo[] = [];
        const firsts = type === 'data' ? ['00', '00', '7f', 'ab', 'ff'] : [undefined, undefined, undefined];
        for (const [i, first] of firsts.entries()) {
          const handle: FileHandle = { type, name: newId(first) };
          await backend.save(handle, Buffer.alloc(i + 1, i));
          files.push({ name: handle.name, size: i + 1 });
        }
        expected.set(
          type,
          files.sort((a, b) => a.name.localeCompare(b.name)),
        );
      }
      for (const [type, files] of expected) expect(await listAll(backend, type)).toEqual(files);
    });

    it('lists nothing for types without files', async () => {
      for (const type of FILE_TYPES) expect(await listAll(backend, type)).toEqual([]);
    });

    it('lists only file ids, ignoring anything else it finds', async () => {
      const key: FileHandle = { type: 'keys', name: newId() };
      const pack: FileHandle = { type: 'data', name: newId('ab') };
      await backend.save(key, Buffer.from('k'));
      await backend.save(pack, Buffer.from('p'));
      const id = newId();
      for (const junk of [
        'keys/not-a-file-id',
        `keys/${id.toUpperCase()}`,
        `keys/${id.slice(1)}`,
        `keys/${id}.tmp`,
        `keys/${newId()}/nested`,
        `data/${newId()}`,
        `data/ab/${id.slice(2)}`,
        `data/ab/${id}-partial`,
        `data/cd/${newId()}/nested`,
        `snapshots/README`,
      ]) {
        await fixture.writeRaw(junk, Buffer.from('junk'));
      }
      expect(await listAll(backend, 'keys')).toEqual([{ name: key.name, size: 1 }]);
      expect(await listAll(backend, 'data')).toEqual([{ name: pack.name, size: 1 }]);
      expect(await listAll(backend, 'snapshots')).toEqual([]);
    });

    it('stores, loads, stats, lists and removes the config file', async () => {
      const config: FileHandle = { type: 'config', name: 'config' };
      expect(layoutPath(config)).toBe('config');
      expect(await listAll(backend, 'config')).toEqual([]);
      await backend.save(config, Buffer.from('{"version":2}'));
      expect((await backend.load(config)).toString()).toBe('{"version":2}');
      expect((await backend.load(config, { offset: -3 })).toString()).toBe(':2}');
      expect(await backend.stat(config)).toEqual({ name: 'config', size: 13 });
      expect(await listAll(backend, 'config')).toEqual([{ name: 'config', size: 13 }]);
      // The config file lives beside the directories, not in one: no other type lists it.
      for (const type of FILE_TYPES) if (type !== 'config') expect(await listAll(backend, type)).toEqual([]);
      await backend.remove(config);
      expect(await listAll(backend, 'config')).toEqual([]);
    });

    it('saves many distinct files at once', async () => {
      const files = Array.from({ length: 40 }, (_, i) => ({
        handle: { type: i % 2 === 0 ? 'data' : 'index', name: newId() } as FileHandle,
        data: randomBytes(1000 + i * 97),
      }));
      await Promise.all(files.map(({ handle, data }) => backend.save(handle, data)));
      const loaded = await Promise.all(files.map(({ handle }) => backend.load(handle)));
      loaded.forEach((bytes, i) => expectBytes(bytes, files[i]!.data));
      expect((await listAll(backend, 'data')).length).toBe(20);
      expect((await listAll(backend, 'index')).length).toBe(20);
    });

    it('keeps one intact copy when the same file is saved twice', async () => {
      const handle: FileHandle = { type: 'data', name: newId() };
      const first = randomBytes(300_000);
      const second = randomBytes(200_000);
      await backend.save(handle, first);
      await backend.save(handle, second);
      expectBytes(await backend.load(handle), second);
      // At once: whichever wins, it wins whole.
      await Promise.all([backend.save(handle, first), backend.save(handle, second)]);
      const result = await backend.load(handle);
      expect(result.equals(first) || result.equals(second)).toBe(true);
      expect(await listAll(backend, 'data')).toEqual([{ name: handle.name, size: result.length }]);
    });

    it('refuses names that are not file ids, before touching storage', async () => {
      const bad = [
        '',
        'abc',
        '../../etc/passwd',
        newId().toUpperCase(),
        `${newId()}x`,
        `${newId().slice(1)}/`,
      ];
      for (const name of bad) {
        const handle: FileHandle = { type: 'data', name };
        expect(() => layoutPath(handle)).toThrow(RangeError);
        await expect(backend.save(handle, Buffer.from('x'))).rejects.toBeInstanceOf(RangeError);
        await expect(backend.load(handle)).rejects.toBeInstanceOf(RangeError);
        await expect(backend.stat(handle)).rejects.toBeInstanceOf(RangeError);
        await expect(backend.remove(handle)).rejects.toBeInstanceOf(RangeError);
      }
      for (const type of FILE_TYPES) expect(await listAll(backend, type)).toEqual([]);
    });
  });
}
