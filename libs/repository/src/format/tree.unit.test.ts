import { describe, expect, it } from 'vitest';
import { RepositoryErrorCode } from '../errors.ts';
import {
  decodeTree,
  encodeTree,
  nameFromBytes,
  nodeNameBytes,
  plainTreeNodes,
  treeSchema,
  type TreeNode,
} from './tree.ts';
import { expectFastPathSound } from '../test-support/fast-path.ts';

const latin1 = (text: string) => Buffer.from(text, 'latin1');
const symlink = (name: string): TreeNode => ({ name, type: 'symlink', uid: 0, gid: 0, content: null });
const wireNames = (bytes: Buffer) =>
  (JSON.parse(bytes.toString('utf8')) as { nodes: Array<{ name: string }> }).nodes.map((n) => n.name);

describe('tree node names', () => {
  it('leaves ordinary names and the JSON as they were', () => {
    expect(encodeTree([symlink('b'), symlink('a.txt')]).toString('utf8')).toBe(
      '{"nodes":[{"name":"a.txt","type":"symlink","uid":0,"gid":0,"content":null},' +
        '{"name":"b","type":"symlink","uid":0,"gid":0,"content":null}]}\n',
    );
  });

  it('writes names Go-quoted, as restic does, and reads them back', () => {
    const nodes = ['a\\b', 'q"x', 'tab\there', 'line\nbreak', 'nb\u00a0sp', '😀', 'plain'].map(symlink);
    nodes.push({ ...symlink('ignored'), ...nameFromBytes(latin1('f\x80\xff')) });
    const bytes = encodeTree(nodes);
    expect(wireNames(bytes)).toEqual([
      'a\\\\b',
      'f\\x80\\xff',
      'line\\nbreak',
      'nb\\u00a0sp',
      'plain',
      'q\\"x',
      'tab\\there',
      '😀',
    ]);
    const decoded = decodeTree(bytes, 'tree-1');
    expect(decoded.map((n) => nodeNameBytes(n).toString('hex'))).toEqual(
      [
        Buffer.from('a\\b'),
        latin1('f\x80\xff'),
        Buffer.from('line\nbreak'),
        Buffer.from('nb\u00a0sp'),
        Buffer.from('plain'),
        Buffer.from('q"x'),
        Buffer.from('tab\there'),
        Buffer.from('😀'),
      ].map((b) => b.toString('hex')),
    );
    // A name that is not UTF-8 shows U+FFFD for each invalid byte; the others are plain strings.
    expect(decoded[1]).toMatchObject({ name: 'f\ufffd\ufffd', nameBytes: latin1('f\x80\xff') });
    expect(decoded.filter((n) => n.nameBytes)).toHaveLength(1);
    expect(decoded[0]!.name).toBe('a\\b');
  });

  it('sorts by the name bytes, as Go compares strings', () => {
    // UTF-16 order would put U+1F600 (a surrogate pair) before U+FFFD; bytes put it after.
    const nodes = ['\u{1f600}', '\ufffd', 'z', 'é'].map(symlink);
    nodes.push({ ...symlink('x'), ...nameFromBytes(latin1('\xff')) });
    expect(wireNames(encodeTree(nodes))).toEqual(['z', 'é', '\ufffd', '\u{1f600}', '\\xff']);
  });

  it('refuses a name Go cannot unquote, naming the tree', () => {
    for (const name of ['a"b', 'bad\\q', 'end\\']) {
      const blob = Buffer.from(JSON.stringify({ nodes: [{ ...symlink('x'), name }] }));
      expect(() => decodeTree(blob, 'feedface')).toThrowError(
        expect.objectContaining({
          code: RepositoryErrorCode.Malformed,
          message: expect.stringMatching(/^tree feedface: node name: /),
        }),
      );
    }
  });
});

describe('link targets', () => {
  it('writes a target that is not UTF-8 as linktarget_raw (base64), as restic does, and reads it back', () => {
    const target = latin1('../t\x80rget');
    const node: TreeNode = { ...symlink('link'), linktarget: 'ignored', linktargetBytes: target };
    const bytes = encodeTree([node]);
    const wire = JSON.parse(bytes.toString('utf8')) as { nodes: Array<Record<string, unknown>> };
    expect(wire.nodes[0]).toMatchObject({
      linktarget: '../t\ufffdrget',
      linktarget_raw: target.toString('base64'),
    });
    expect(wire.nodes[0]).not.toHaveProperty('linktargetBytes');
    const [decoded] = decodeTree(bytes, 't');
    expect(decoded).toMatchObject({ linktarget: '../t\ufffdrget', linktargetBytes: target });
    expect(decoded).not.toHaveProperty('linktarget_raw');
  });

  it('lets linktarget_raw override linktarget, and keeps UTF-8 targets plain', () => {
    const blob = (raw: string | null) =>
      Buffer.from(JSON.stringify({ nodes: [{ ...symlink('l'), linktarget: 'shown', linktarget_raw: raw }] }));
    expect(decodeTree(blob(Buffer.from('real').toString('base64')), 't')[0]).toEqual({
      ...symlink('l'),
      linktarget: 'real',
    });
    expect(decodeTree(blob(null), 't')[0]).toEqual({ ...symlink('l'), linktarget: 'shown' });
    expect(() => decodeTree(blob('not base64!'), 't')).toThrowError(
      expect.objectContaining({ code: RepositoryErrorCode.Malformed }),
    );
  });

  it('writes UTF-8 targets without linktarget_raw', () => {
    const bytes = encodeTree([{ ...symlink('l'), linktarget: '../é' }]);
    expect(bytes.toString('utf8')).not.toContain('linktarget_raw');
  });
});

describe('the plain-tree fast path accepts only what the schema accepts', () => {
  const id = 'a'.repeat(64);
  const file = {
    name: 'data.db',
    type: 'file',
    mode: 420,
    mtime: '2024-02-29T12:34:56.123456789Z',
    atime: '2024-02-29T12:34:56.123456789Z',
    ctime: '2024-02-29T12:34:56.123456789Z',
    uid: 999,
    gid: 999,
    inode: 1234,
    device_id: 2049,
    links: 1,
    size: 8192,
    content: [id, 'b'.repeat(64)],
  };
  const dir = { name: 'base', type: 'dir', mode: 2147484141, uid: 0, gid: 0, content: null, subtree: id };
  const changes: Array<[string, unknown]> = [
    ['name', 7],
    ['name', null],
    ['type', 'socket'],
    ['type', 'weird'],
    ['type', 3],
    ['mode', -1],
    ['mode', 1.5],
    ['mode', 2 ** 53],
    ['mode', '420'],
    ['uid', undefined],
    ['uid', null],
    ['gid', -3],
    ['size', 0],
    ['mtime', null],
    ['mtime', 5],
    ['user', 'postgres'],
    ['error', 'unreadable'],
    ['linktarget', 'x'],
    ['linktarget_raw', 'eA=='],
    ['linktarget_raw', null],
    ['linktarget_raw', '%%'],
    ['extended_attributes', [{ name: 'user.a', value: 'eA==' }]],
    ['extended_attributes', null],
    ['content', null],
    ['content', []],
    ['content', [id.toUpperCase()]],
    ['content', [id.slice(1)]],
    ['content', [7]],
    ['content', id],
    ['subtree', null],
    ['subtree', 'zz'],
    ['subtree', id],
    ['device', 2049],
    ['unknown', 1],
    ['__proto__', { polluted: true }],
  ];
  const variants: unknown[] = [
    null,
    [],
    {},
    { nodes: null },
    { nodes: [] },
    { nodes: {} },
    { nodes: [file, dir] },
  ];
  for (const base of [file, dir])
    for (const [key, value] of changes) {
      const node: Record<string, unknown> = JSON.parse(JSON.stringify(base));
      if (value === undefined) delete node[key];
      else node[key] = value;
      // As JSON.parse gives it (an own `__proto__` key included).
      variants.push(JSON.parse(`{"nodes":[${JSON.stringify(dir)},${JSON.stringify(node)}]}`));
      if (key === '__proto__')
        variants.push(
          JSON.parse(`{"nodes":[{"name":"a","type":"file","uid":0,"gid":0,"__proto__":{"x":1}}]}`),
        );
    }
  variants.push({ nodes: [file], extra: true });

  it('every variant the fast path takes, the schema takes, with the same nodes', () => {
    const fast = expectFastPathSound(
      plainTreeNodes,
      treeSchema,
      (data: { nodes: unknown }) => data.nodes,
      variants,
    );
    expect(fast).toBeGreaterThan(20);
  });

  it('trees volback writes take the fast path', () => {
    const written = JSON.parse(encodeTree([file as TreeNode, dir as TreeNode]).toString('utf8')) as unknown;
    expect(plainTreeNodes(written)).toHaveLength(2);
    expect(decodeTree(encodeTree([file as TreeNode, dir as TreeNode]), 'tree')).toEqual([dir, file]);
  });
});
