// Rewrites a tar stream so every entry sits under one directory, checking on the way that no entry
// can land outside it. Headers are rewritten byte for byte and file data passes through untouched,
// so names that are not UTF-8, binary xattr values and large ids survive (a decode/re-encode with
// a tar library would not guarantee that).
import { InvalidArchiveError } from '../errors.ts';

const BLOCK = 512;
const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK);

/** Entry types written into a volume: files, hard links, symlinks, devices, directories, fifos. */
const ENTRY_TYPES = new Set(['0', '\0', '7', '1', '2', '3', '4', '5', '6']);
/** Types whose entries carry no data, whatever their size field says (as Go's archive/tar reads them). */
const HEADER_ONLY_TYPES = new Set(['1', '2', '3', '4', '5', '6']);

/** Reads exact byte counts from an async iterable of chunks. */
class ByteReader {
  readonly #source: AsyncIterator<Uint8Array>;
  #chunks: Buffer[] = [];
  #length = 0;
  #ended = false;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.#source = source[Symbol.asyncIterator]();
  }

  async #fill(n: number): Promise<void> {
    while (this.#length < n && !this.#ended) {
      const next = await this.#source.next();
      if (next.done) {
        this.#ended = true;
        break;
      }
      const chunk = Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength);
      if (chunk.length > 0) {
        this.#chunks.push(chunk);
        this.#length += chunk.length;
      }
    }
  }

  /** Up to `n` bytes (fewer only at the end of the input), as one buffer. */
  async read(n: number): Promise<Buffer> {
    await this.#fill(n);
    return this.#take(Math.min(n, this.#length));
  }

  #take(n: number): Buffer {
    const first = this.#chunks[0];
    if (n === 0 || !first) return Buffer.alloc(0);
    let taken: Buffer;
    if (first.length >= n) {
      taken = first.subarray(0, n);
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
    } else {
      const all = Buffer.concat(this.#chunks);
      taken = all.subarray(0, n);
      this.#chunks = all.length > n ? [all.subarray(n)] : [];
    }
    this.#length -= n;
    return taken;
  }

  /** `n` bytes in the pieces they arrive in; throws if the input ends first. */
  async *pieces(n: number, what: () => string): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.#length === 0) await this.#fill(1);
      if (this.#length === 0) throw new InvalidArchiveError('the archive ends inside it', what());
      const piece = this.#take(Math.min(left, this.#chunks[0]!.length));
      left -= piece.length;
      yield piece;
    }
  }

  /** Reads and drops the rest of the input, so whoever writes it is not left blocked. */
  async drain(): Promise<void> {
    this.#chunks = [];
    this.#length = 0;
    while (!this.#ended) {
      const next = await this.#source.next();
      if (next.done) this.#ended = true;
    }
  }
}

function cString(block: Buffer, offset: number, length: number): Buffer {
  const field = block.subarray(offset, offset + length);
  const nul = field.indexOf(0);
  return nul === -1 ? field : field.subarray(0, nul);
}

/** A numeric header field: octal text, or base-256 when its first byte has the high bit set. */
function numeric(block: Buffer, offset: number, length: number): number {
  const field = block.subarray(offset, offset + length);
  if (field[0]! & 0x80) {
    let value = field[0]! & 0x7f;
    for (let i = 1; i < field.length; i++) value = value * 256 + field[i]!;
    return value;
  }
  const text = field
    .toString('latin1')
    .replace(/[\0 ]+$/g, '')
    .replace(/^[\0 ]+/, '');
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new InvalidArchiveError(`bad number ${JSON.stringify(text)} in a header`);
  return parseInt(text, 8);
}

function checksumOf(block: Buffer): number {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i]!;
  return sum;
}

function writeChecksum(block: Buffer): void {
  block.fill(0x20, 148, 156);
  block.write(`${checksumOf(block).toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
}

function isZeroBlock(block: Buffer): boolean {
  for (let i = 0; i < block.length; i++) if (block[i] !== 0) return false;
  return true;
}

/** A PAX extended header's records, in order; values are raw bytes. */
function parsePax(data: Buffer, entry: () => string): Map<string, Buffer> {
  const records = new Map<string, Buffer>();
  let at = 0;
  while (at < data.length) {
    if (data[at] === 0) break; // padding
    const space = data.indexOf(0x20, at);
    const length = space === -1 ? NaN : Number(data.toString('latin1', at, space));
    if (
      !Number.isInteger(length) ||
      length <= 0 ||
      at + length > data.length ||
      data[at + length - 1] !== 0x0a
    ) {
      throw new InvalidArchiveError('malformed PAX record', entry());
    }
    const record = data.subarray(space + 1, at + length - 1);
    const equals = record.indexOf(0x3d);
    if (equals <= 0) throw new InvalidArchiveError('malformed PAX record', entry());
    records.set(record.toString('latin1', 0, equals), Buffer.from(record.subarray(equals + 1)));
    at += length;
  }
  return records;
}

function encodePax(records: Map<string, Buffer>): Buffer {
  const parts: Buffer[] = [];
  for (const [key, value] of records) {
    const body = Buffer.concat([Buffer.from(` ${key}=`, 'latin1'), value, Buffer.from('\n')]);
    let length = body.length + 1;
    while (String(length).length + body.length !== length) length = String(length).length + body.length;
    parts.push(Buffer.from(String(length), 'latin1'), body);
  }
  return Buffer.concat(parts);
}

function paxHeaderBlock(size: number, original: Buffer): Buffer {
  const block = Buffer.alloc(BLOCK);
  block.write('././@PaxHeader', 0, 'latin1');
  block.write('0000644\0', 100, 'latin1');
  block.write('0000000\0', 108, 'latin1');
  block.write('0000000\0', 116, 'latin1');
  block.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 'latin1');
  original.copy(block, 136, 136, 148); // mtime
  block.write('x', 156, 'latin1');
  block.write('ustar\0' + '00', 257, 'latin1');
  writeChecksum(block);
  return block;
}

function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

/** `a/./b//c/` → `['a','b','c']`; refuses absolute names and `..`. */
function components(name: string, entry: string, what: string): string[] {
  if (name.startsWith('/')) throw new InvalidArchiveError(`${what} is absolute`, entry);
  const parts = name.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.includes('..')) throw new InvalidArchiveError(`${what} contains ..`, entry);
  return parts;
}

/**
 * Yields `input` (a tar stream) with every entry moved under `base` (`./a/b` → `volume/a/b`, the
 * archive's root `./` → `volume/`, hard-link targets alike; symlink targets are left as they are).
 * Throws {@link InvalidArchiveError} for an absolute name or one with `..`, a name that goes
 * through a symlink earlier in the archive, a root that is not a directory, a sparse or other
 * entry type volback does not write, or a malformed archive. Global PAX headers are dropped
 * (Docker ignores them). The output always ends with the end-of-archive marker.
 */
export async function* rebaseTar(input: AsyncIterable<Uint8Array>, base: string): AsyncGenerator<Buffer> {
  const reader = new ByteReader(input);
  const symlinks = new Set<string>();
  let pax = new Map<string, Buffer>();
  let longName: Buffer | undefined;
  let longLink: Buffer | undefined;
  let entries = 0;

  for (;;) {
    const block = await reader.read(BLOCK);
    if (block.length === 0 && pax.size === 0 && !longName && !longLink) break; // ended without a marker
    if (block.length < BLOCK) throw new InvalidArchiveError('the archive ends inside a header');
    if (isZeroBlock(block)) {
      await reader.drain();
      break;
    }
    const stored = /^[0-7]{1,7}$/.test(block.toString('latin1', 148, 156).replace(/^ +|[\0 ]+$/g, ''))
      ? numeric(block, 148, 8)
      : -1;
    if (stored !== checksumOf(block)) {
      throw new InvalidArchiveError(
        entries === 0 ? 'not a tar archive (bad header checksum)' : 'bad header checksum',
      );
    }
    const type = String.fromCharCode(block[156]!);
    const posix = block.toString('latin1', 257, 263) === 'ustar\0';
    const fieldName = cString(block, 0, 100);
    const prefix = posix ? cString(block, 345, 155) : Buffer.alloc(0);
    const headerName = (
      prefix.length > 0 ? Buffer.concat([prefix, Buffer.from('/'), fieldName]) : fieldName
    ).toString('latin1');
    const name = (pax.get('path') ?? longName)?.toString('latin1') ?? headerName;
    const size = pax.has('size') ? Number(pax.get('size')!.toString('latin1')) : numeric(block, 124, 12);
    if (!Number.isSafeInteger(size) || size < 0) throw new InvalidArchiveError('bad size', name);

    if (type === 'x' || type === 'g' || type === 'L' || type === 'K') {
      if (size > 1024 * 1024) throw new InvalidArchiveError('extended header larger than 1 MiB', name);
      const data = await reader.read(size + padding(size));
      if (data.length < size + padding(size))
        throw new InvalidArchiveError('the archive ends inside a header', name);
      const body = data.subarray(0, size);
      if (type === 'x') for (const [k, v] of parsePax(body, () => name)) pax.set(k, v);
      else if (type === 'L') longName = cString(body, 0, body.length);
      else if (type === 'K') longLink = cString(body, 0, body.length);
      continue; // 'g': dropped
    }
    if (!ENTRY_TYPES.has(type) || [...pax.keys()].some((k) => k.startsWith('GNU.sparse'))) {
      throw new InvalidArchiveError(`entry type ${JSON.stringify(type)} is not written into volumes`, name);
    }

    const parts = components(name, name, 'the name');
    const path = parts.join('/');
    const isDir = type === '5';
    if (parts.length === 0 && !isDir)
      throw new InvalidArchiveError('the root of the archive is not a directory', name);
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join('/');
      if (symlinks.has(parent)) throw new InvalidArchiveError(`it goes through the symlink ${parent}`, name);
    }
    const newName = Buffer.from(
      parts.length === 0 ? `${base}/` : `${base}/${path}${isDir ? '/' : ''}`,
      'latin1',
    );

    let newLink: Buffer | undefined;
    const link = (pax.get('linkpath') ?? longLink ?? cString(block, 157, 100)).toString('latin1');
    if (type === '1') {
      const target = components(link, name, 'the hard-link target');
      if (target.length === 0) throw new InvalidArchiveError('the hard-link target is the root', name);
      for (let i = 1; i <= target.length; i++) {
        const parent = target.slice(0, i).join('/');
        if (i < target.length && symlinks.has(parent)) {
          throw new InvalidArchiveError(`the hard-link target goes through the symlink ${parent}`, name);
        }
      }
      // A hard link to a symlink is a symlink.
      if (symlinks.has(target.join('/'))) symlinks.add(path);
      else symlinks.delete(path);
      newLink = Buffer.from(`${base}/${target.join('/')}`, 'latin1');
    } else if (type === '2') {
      symlinks.add(path);
      newLink = Buffer.from(link, 'latin1');
    } else {
      symlinks.delete(path);
    }

    const dataSize = HEADER_ONLY_TYPES.has(type) ? 0 : size;
    const extra = new Map(
      [...pax].filter(([k]) => k !== 'path' && k !== 'linkpath' && (k !== 'size' || dataSize > 0)),
    );
    if (newName.length > 100) extra.set('path', newName);
    if (newLink && newLink.length > 100) extra.set('linkpath', newLink);
    const header = Buffer.from(block);
    header.fill(0, 0, 100);
    newName.copy(header, 0, 0, Math.min(100, newName.length));
    header.fill(0, 157, 257);
    if (newLink) newLink.copy(header, 157, 0, Math.min(100, newLink.length));
    if (posix) header.fill(0, 345, 500);
    // Written as 0 for entries without data, so no reader can take what follows for their data.
    if (dataSize === 0) header.write('00000000000\0', 124, 'latin1');
    writeChecksum(header);
    if (extra.size > 0) {
      const records = encodePax(extra);
      yield paxHeaderBlock(records.length, block);
      yield Buffer.concat([records, Buffer.alloc(padding(records.length))]);
    }
    yield header;
    const entry = name;
    yield* reader.pieces(dataSize + padding(dataSize), () => entry);

    entries++;
    pax = new Map();
    longName = undefined;
    longLink = undefined;
  }
  yield END_OF_ARCHIVE;
}
