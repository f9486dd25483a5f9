import { loadNativeAddon } from '../native-addon.ts';

/**
 * Extended attributes through libs/repository/native/xattr.c: llistxattr, lgetxattr and
 * lsetxattr, which never follow a symlink. Paths and names are strings or Buffers without NUL.
 * Failures throw as Node's fs does (`code` such as `ENOENT`, `ENOTSUP`, `ENODATA`, `EACCES`,
 * with `errno`, `syscall`, `path`); arguments of the wrong kind throw a `TypeError`.
 */
export interface NativeXattr {
  /** The attribute names of `path`, in the order the filesystem lists them. */
  list(path: string | Buffer): Buffer[];
  /** One attribute's value (possibly empty). */
  get(path: string | Buffer, name: string | Buffer): Buffer;
  /** Creates or replaces one attribute. */
  set(path: string | Buffer, name: string | Buffer, value: Uint8Array): void;
}

/** Without the addon (no C compiler, or `VOLBACK_NATIVE=off`) attributes are neither recorded nor restored. */
export const nativeXattr: NativeXattr | undefined = loadNativeAddon<NativeXattr>('xattr');
