import { Readable } from 'node:stream';
import { extract, pack, type Header } from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { AgentErrorCode, InvalidArchiveError } from '../errors.ts';
import { rebaseTar } from './tar-rebase.ts';

type Entry = [Partial<Header> & { name: string; pax?: Record<string, string> }, (string | Buffer)?];

async function tarOf(entries: Entry[]): Promise<Buffer> {
  const archive = pack();
  for (const [header, body] of entries) archive.entry(header, body ?? Buffer.alloc(0));
  archive.finalize();
  return collect(archive);
}

async function collect(source: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of source) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

/** The input in chunks of awkward sizes, to exercise reads across chunk borders. */
async function* chunked(data: Buffer, size = 77): AsyncGenerator<Buffer> {
  for (let at = 0; at < data.length; at += size) yield data.subarray(at, at + size);
}

async function rebase(data: Buffer, chunkSize?: number): Promise<Buffer> {
  return collect(rebaseTar(chunked(data, chunkSize), 'volume'));
}

interface Listed {
  header: Header;
  body: Buffer;
}

async function list(data: Buffer): Promise<Listed[]> {
  const listed: Listed[] = [];
  const reader = extract();
  Readable.from([data]).pipe(reader);
  for await (const entry of reader) listed.push({ header: entry.header, body: await collect(entry) });
  return listed;
}

/** A raw ustar header block, for what tar-stream will not write (GNU long names, bad types). */
function rawHeader(fields: {
  name: Buffer | string;
  type: string;
  size?: number;
  linkname?: string;
}): Buffer {
  const block = Buffer.alloc(512);
  Buffer.from(fields.name as string, typeof fields.name === 'string' ? 'utf8' : undefined).copy(
    block,
    0,
    0,
    100,
  );
  block.write('0000644\0', 100, 'latin1');
  block.write('0001750\0', 108, 'latin1');
  block.write('0001750\0', 116, 'latin1');
  block.write(`${(fields.size ?? 0).toString(8).padStart(11, '0')}\0`, 124, 'latin1');
  block.write('14000000000\0', 136, 'latin1');
  block.write(fields.type, 156, 'latin1');
  if (fields.linkname) block.write(fields.linkname, 157, 'latin1');
  block.write('ustar\0' + '00', 257, 'latin1');
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return block;
}

function withData(header: Buffer, data: Buffer): Buffer {
  return Buffer.concat([header, data, Buffer.alloc((512 - (data.length % 512)) % 512)]);
}

const END = Buffer.alloc(1024);

async function refusal(data: Buffer): Promise<InvalidArchiveError> {
  const error = await rebase(data).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(InvalidArchiveError);
  expect((error as InvalidArchiveError).code).toBe(AgentErrorCode.ArchiveInvalid);
  return error as InvalidArchiveError;
}

describe('rebaseTar', () => {
  it('moves every entry, the root and hard-link targets under the base, keeping all else', async () => {
    const mtime = new Date('2001-02-03T04:05:06Z');
    const big = Buffer.alloc(300_000, 7);
    const input = await tarOf([
      [{ name: './', type: 'directory', mode: 0o750, uid: 42, gid: 43, mtime }],
      [{ name: './dir/', type: 'directory', mode: 0o755, mtime }],
      [
        {
          name: './dir/f',
          mode: 0o640,
          uid: 1234,
          gid: 5678,
          mtime,
          pax: { mtime: '981173106.123456789', 'SCHILY.xattr.user.k': 'v' },
        },
        big,
      ],
      [{ name: './dir/link', type: 'symlink', linkname: '../outside/is/not/followed', mtime }],
      [{ name: './dir/hard', type: 'link', linkname: './dir/f', mode: 0o640, uid: 1234, gid: 5678, mtime }],
      [{ name: 'plain', type: 'fifo', mode: 0o600, mtime }],
      [{ name: 'dev', type: 'character-device', devmajor: 1, devminor: 3, mtime }],
    ]);
    const output = await list(await rebase(input));
    expect(output.map((e) => [e.header.name, e.header.type, e.header.linkname])).toEqual([
      ['volume/', 'directory', null],
      ['volume/dir/', 'directory', null],
      ['volume/dir/f', 'file', null],
      ['volume/dir/link', 'symlink', '../outside/is/not/followed'],
      ['volume/dir/hard', 'link', 'volume/dir/f'],
      ['volume/plain', 'fifo', null],
      ['volume/dev', 'character-device', null],
    ]);
    expect(output[0]!.header).toMatchObject({ mode: 0o750, uid: 42, gid: 43, mtime });
    expect(output[2]!.header).toMatchObject({ mode: 0o640, uid: 1234, gid: 5678, size: big.length });
    expect(output[2]!.header.pax).toEqual({ mtime: '981173106.123456789', 'SCHILY.xattr.user.k': 'v' });
    expect(output[2]!.body.equals(big)).toBe(true);
    expect(output[6]!.header).toMatchObject({ devmajor: 1, devminor: 3 });
  });

  it('gives the same bytes whatever the input chunk sizes', async () => {
    const input = await tarOf([
      [{ name: 'a' }, Buffer.alloc(10_000, 1)],
      [{ name: 'b' }, 'x'],
    ]);
    const reference = await rebase(input, input.length);
    for (const size of [1, 511, 512, 513, 4096])
      expect((await rebase(input, size)).equals(reference)).toBe(true);
  });

  it('keeps long names, GNU long names and link targets through PAX', async () => {
    const long = `${'d'.repeat(150)}/${'f'.repeat(120)}`;
    const gnuName = Buffer.from(`${'g'.repeat(200)}\0`);
    const input = Buffer.concat([
      await tarOf([
        [{ name: long }, 'long'],
        [{ name: 'to-long', type: 'link', linkname: long }],
        [{ name: 'sym', type: 'symlink', linkname: 's'.repeat(150) }],
      ]).then((b) => b.subarray(0, b.length - 1024)),
      withData(rawHeader({ name: '././@LongLink', type: 'L', size: gnuName.length }), gnuName),
      withData(rawHeader({ name: 'ggg', type: '0', size: 3 }), Buffer.from('gnu')),
      END,
    ]);
    const output = await list(await rebase(input));
    expect(output.map((e) => [e.header.name, e.header.linkname])).toEqual([
      [`volume/${long}`, null],
      ['volume/to-long', `volume/${long}`],
      ['volume/sym', 's'.repeat(150)],
      [`volume/${'g'.repeat(200)}`, null],
    ]);
    expect(output[3]!.body.toString()).toBe('gnu');
  });

  it('keeps the bytes of names that are not UTF-8', async () => {
    const name = Buffer.from([0x63, 0x61, 0x66, 0xe9]); // "café" in latin1
    const output = await rebase(
      Buffer.concat([withData(rawHeader({ name, type: '0', size: 1 }), Buffer.from('x')), END]),
    );
    expect(output.subarray(0, 11)).toEqual(Buffer.concat([Buffer.from('volume/'), name]));
  });

  it('drops global PAX headers, adds a missing end marker and ignores what follows one', async () => {
    const records = Buffer.from('19 comment=ignored\n');
    const input = Buffer.concat([
      withData(rawHeader({ name: 'pax_global_header', type: 'g', size: records.length }), records),
      withData(rawHeader({ name: 'a', type: '0', size: 1 }), Buffer.from('a')),
    ]);
    const output = await rebase(input);
    expect((await list(output)).map((e) => e.header.name)).toEqual(['volume/a']);
    expect(output.subarray(-1024).equals(END)).toBe(true);
    expect((await rebase(Buffer.concat([input, END, Buffer.from('trailing garbage')]))).equals(output)).toBe(
      true,
    );
  });

  it.each([
    ['an absolute name', [[{ name: '/etc/passwd' }, 'x']], 'is absolute'],
    [
      'a name with ..',
      [
        [{ name: 'ok' }, 'x'],
        [{ name: 'a/../../escape' }, 'x'],
      ],
      'contains ..',
    ],
    [
      'a root that is a file',
      [[{ name: './', type: 'file' }, 'x']],
      'root of the archive is not a directory',
    ],
    [
      'a name through a symlink of the archive',
      [[{ name: 'a', type: 'symlink', linkname: '/etc' }], [{ name: 'a/passwd' }, 'x']],
      'goes through the symlink a',
    ],
    [
      'a name through a hard link to a symlink',
      [
        [{ name: 'a', type: 'symlink', linkname: '/' }],
        [{ name: 'b', type: 'link', linkname: 'a' }],
        [{ name: 'b/etc/x' }, 'x'],
      ],
      'goes through the symlink b',
    ],
    [
      'a hard link out',
      [[{ name: 'h', type: 'link', linkname: '../etc/passwd' }]],
      'hard-link target contains ..',
    ],
    [
      'a hard link to an absolute path',
      [[{ name: 'h', type: 'link', linkname: '/etc/passwd' }]],
      'hard-link target is absolute',
    ],
    [
      'a hard link through a symlink',
      [
        [{ name: 'a', type: 'symlink', linkname: '/etc' }],
        [{ name: 'h', type: 'link', linkname: 'a/passwd' }],
      ],
      'goes through the symlink a',
    ],
    ['a sparse file', [[{ name: 's', pax: { 'GNU.sparse.major': '1' } }, 'x']], 'not written into volumes'],
  ] as [string, Entry[], string][])('refuses %s', async (_what, entries, why) => {
    const error = await refusal(await tarOf(entries));
    expect(error.message).toContain(why);
    expect(error.entry).toBeDefined();
  });

  it('allows a symlink to be replaced by a directory, and names under it after that', async () => {
    const input = await tarOf([
      [{ name: 'a', type: 'symlink', linkname: '/etc' }],
      [{ name: 'a/', type: 'directory' }],
      [{ name: 'a/x' }, 'x'],
    ]);
    expect((await list(await rebase(input))).map((e) => e.header.name)).toEqual([
      'volume/a',
      'volume/a/',
      'volume/a/x',
    ]);
  });

  it.each([
    ['not a tar archive', Buffer.from('hello world'.repeat(100)), 'bad header checksum'],
    [
      'a GNU sparse entry',
      Buffer.concat([rawHeader({ name: 's', type: 'S' }), END]),
      'not written into volumes',
    ],
    [
      'an archive cut inside a file',
      withData(rawHeader({ name: 'a', type: '0', size: 5000 }), Buffer.alloc(100)).subarray(0, 1024),
      'ends inside it',
    ],
    [
      'an archive cut inside a header',
      rawHeader({ name: 'a', type: '0' }).subarray(0, 300),
      'ends inside a header',
    ],
  ])('refuses %s', async (_what, data, why) => {
    expect((await refusal(data)).message).toContain(why);
  });

  it('reads no data for header-only entries whatever their size field says', async () => {
    const input = Buffer.concat([
      rawHeader({ name: 'd/', type: '5', size: 4096 }),
      withData(rawHeader({ name: 'd/f', type: '0', size: 1 }), Buffer.from('f')),
      END,
    ]);
    expect((await list(await rebase(input))).map((e) => e.header.name)).toEqual(['volume/d/', 'volume/d/f']);
  });
});
