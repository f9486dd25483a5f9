import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readXattrs, writeXattrs } from '../test-support/extended-attributes.ts';
import { nativeXattr, type NativeXattr } from './xattr-native.ts';

let dir: string;
let xattr: NativeXattr;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'volback-xattr-'));
  if (nativeXattr) xattr = nativeXattr;
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

it('the extended-attribute addon is built by the project scripts, unless turned off', () => {
  if (process.env['VOLBACK_NATIVE'] === 'off') expect(nativeXattr).toBeUndefined();
  else expect(nativeXattr, 'run scripts/build-native.sh (needs a C compiler)').toBeDefined();
});

describe.skipIf(process.env['VOLBACK_NATIVE'] === 'off')(
  'the addon (native/xattr.c) on the real file system',
  () => {
    it('sets, lists and gets binary, empty and large values, as python3 reads them', () => {
      const file = join(dir, 'file');
      writeFileSync(file, 'content');
      const binary = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      xattr.set(file, 'user.binary', binary);
      xattr.set(file, 'user.empty', Buffer.alloc(0));
      // Larger than the addon's first buffer on the stack: read again at its size.
      xattr.set(Buffer.from(file), Buffer.from('user.large'), Buffer.alloc(3000, 0xab));
      const names = xattr.list(file).map(String);
      expect([...names].sort()).toEqual(['user.binary', 'user.empty', 'user.large']);
      // The file system's order (ext4 keeps its own), as python3 lists them.
      expect(names).toEqual(Object.keys(readXattrs([file])[file]!));
      expect(xattr.get(file, 'user.binary')).toEqual(binary);
      expect(xattr.get(file, 'user.empty')).toEqual(Buffer.alloc(0));
      expect(xattr.get(Buffer.from(file), 'user.large')).toEqual(Buffer.alloc(3000, 0xab));
      expect(readXattrs([file])[file]).toEqual({
        'user.binary': binary.toString('hex'),
        'user.empty': '',
        'user.large': 'ab'.repeat(3000),
      });
      xattr.set(file, 'user.empty', Buffer.from('replaced'));
      expect(xattr.get(file, 'user.empty').toString()).toBe('replaced');
    });

    it('takes a path that is not UTF-8 as bytes', () => {
      const name = Buffer.concat([Buffer.from(join(dir, 'latin1-')), Buffer.from([0xe9])]);
      writeFileSync(name, 'x');
      xattr.set(name, 'user.k', Buffer.from('v'));
      expect(xattr.list(name).map(String)).toEqual(['user.k']);
      expect(xattr.get(name, 'user.k').toString()).toBe('v');
    });

    it("reads and writes a symlink's own attributes, never its target's", () => {
      const target = join(dir, 'target');
      writeFileSync(target, 'x');
      writeXattrs({ [target]: { 'user.target': '01' } });
      const link = join(dir, 'link');
      symlinkSync(target, link);
      expect(xattr.list(link)).toEqual([]);
      expect(() => xattr.get(link, 'user.target')).toThrow(expect.objectContaining({ code: 'ENODATA' }));
      // Linux refuses user.* attributes on a symlink; the target is left alone.
      expect(() => xattr.set(link, 'user.other', Buffer.from('1'))).toThrow(
        expect.objectContaining({ code: 'EPERM', syscall: 'lsetxattr', path: link }),
      );
      expect(readXattrs([target])[target]).toEqual({ 'user.target': '01' });
    });

    it("throws Node's fs errors: code, errno, syscall and path", () => {
      const missing = join(dir, 'missing');
      let error: NodeJS.ErrnoException | undefined;
      try {
        xattr.list(missing);
      } catch (caught) {
        error = caught as NodeJS.ErrnoException;
      }
      expect(error).toBeInstanceOf(Error);
      expect(error).toMatchObject({
        code: 'ENOENT',
        errno: -2,
        syscall: 'llistxattr',
        path: missing,
        message: `ENOENT: no such file or directory, llistxattr '${missing}'`,
      });
      const file = join(dir, 'errors');
      writeFileSync(file, 'x');
      expect(() => xattr.get(file, 'user.absent')).toThrow(
        expect.objectContaining({ code: 'ENODATA', syscall: 'lgetxattr', path: file }),
      );
      expect(() => xattr.set(file, 'nonsense.namespace', Buffer.from('1'))).toThrow(
        expect.objectContaining({ code: 'ENOTSUP', syscall: 'lsetxattr' }),
      );
      expect(() => xattr.set(missing, 'user.x', Buffer.from('1'))).toThrow(
        expect.objectContaining({ code: 'ENOENT' }),
      );
    });

    it('refuses a NUL in a path or name and arguments of the wrong kind, touching nothing', () => {
      const sub = join(dir, 'nul');
      mkdirSync(sub);
      writeFileSync(join(sub, 'a'), 'x');
      const nulPaths = [join(sub, 'a\0b'), Buffer.from(join(sub, 'a\0b'))];
      for (const path of nulPaths) {
        for (const call of [
          () => xattr.list(path),
          () => xattr.get(path, 'user.x'),
          () => xattr.set(path, 'user.x', Buffer.from('1')),
        ]) {
          expect(call).toThrow(TypeError);
          expect(call).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
        }
      }
      expect(() => xattr.set(join(sub, 'a'), 'user.x\0y', Buffer.from('1'))).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }),
      );
      expect(() => xattr.list(42 as unknown as string)).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }),
      );
      expect(() => xattr.set(join(sub, 'a'), 'user.x', 'text' as unknown as Uint8Array)).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }),
      );
      expect(() => (xattr.get as (path: string) => Buffer)(join(sub, 'a'))).toThrow(
        expect.objectContaining({ code: 'ERR_MISSING_ARGS' }),
      );
      // Nothing was made or given an attribute (the path is not cut at the NUL).
      expect(readdirSync(sub)).toEqual(['a']);
      expect(readXattrs([join(sub, 'a')])[join(sub, 'a')]).toEqual({});
    });
  },
);

describe('without the addon', () => {
  it('a backup records no attributes and says so once per process, not per entry', () => {
    const module = fileURLToPath(new URL('./extended-attributes.ts', import.meta.url));
    const file = join(dir, 'off');
    writeFileSync(file, 'x');
    writeXattrs({ [file]: { 'user.k': '76' } });
    const script = `
      const { readExtendedAttributes } = await import(${JSON.stringify(module)});
      const warned = [];
      const first = readExtendedAttributes(${JSON.stringify(file)}, (e) => warned.push(e.message));
      const second = readExtendedAttributes(${JSON.stringify(dir)}, (e) => warned.push(e.message));
      console.log(JSON.stringify({ first: first ?? null, second: second ?? null, warned }));`;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, VOLBACK_NATIVE: 'off' },
      encoding: 'utf8',
    });
    expect(child.status).toBe(0);
    expect(JSON.parse(child.stdout)).toEqual({ first: null, second: null, warned: [] });
    expect(child.stderr.match(/VOLBACK_XATTR_UNAVAILABLE/g)).toHaveLength(1);
  });
});
