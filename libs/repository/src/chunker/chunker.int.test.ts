import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { RESTIC, resolveBinary } from '@volback/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chunkStream } from './chunker.ts';
import { parseChunkerPolynomial, type Pol } from './polynomial.ts';
import { pseudoRandomBytes, sha256Hex } from './test-data.ts';

const run = promisify(execFile);
const MiB = 1024 * 1024;

/** A data blob as a file's content lists it: id (SHA-256 of the plaintext) and plaintext length. */
interface Blob {
  id: string;
  length: number;
}

interface ResticTreeNode {
  name: string;
  type: string;
  content?: string[] | null;
}

interface ResticIndex {
  packs: { blobs: { id: string; type: string; length: number; uncompressed_length?: number }[] }[];
}

let workDir: string;
let dataDir: string;
let restic: (...args: string[]) => Promise<string>;

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'volback-chunker-'));
  dataDir = join(workDir, 'data');
  await mkdir(dataDir);
  const binary = resolveBinary(RESTIC);
  const env = {
    ...process.env,
    RESTIC_REPOSITORY: join(workDir, 'repo'),
    RESTIC_PASSWORD: 'chunker-interop',
  };
  restic = async (...args) =>
    (await run(binary, ['--no-cache', ...args], { env, cwd: dataDir, maxBuffer: 64 * MiB })).stdout;
});

afterAll(async () => {
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

/** Our chunks of a file, read as the agent reads it: a file stream in 64 KiB buffers. */
async function ourBlobs(path: string, pol: Pol): Promise<Blob[]> {
  const blobs: Blob[] = [];
  for await (const chunk of chunkStream(createReadStream(path), pol)) {
    blobs.push({ id: sha256Hex(chunk.data), length: chunk.length });
  }
  return blobs;
}

/** The data blobs restic made for each file of a snapshot's root tree, with lengths from the index. */
async function resticBlobs(snapshotId: string): Promise<Map<string, Blob[]>> {
  const snapshot = JSON.parse(await restic('cat', 'snapshot', snapshotId)) as { tree: string };
  const tree = JSON.parse(await restic('cat', 'blob', snapshot.tree)) as { nodes: ResticTreeNode[] };

  const lengths = new Map<string, number>();
  for (const indexId of (await restic('list', 'index')).split('\n').filter(Boolean)) {
    const index = JSON.parse(await restic('cat', 'index', indexId)) as ResticIndex;
    for (const blob of index.packs.flatMap((pack) => pack.blobs)) {
      // Stored length = plaintext (compressed or not) + 16 bytes IV + 16 bytes MAC.
      lengths.set(blob.id, blob.uncompressed_length ?? blob.length - 32);
    }
  }

  const files = new Map<string, Blob[]>();
  for (const node of tree.nodes.filter((n) => n.type === 'file')) {
    files.set(
      node.name,
      (node.content ?? []).map((id) => ({ id, length: lengths.get(id) ?? Number.NaN })),
    );
  }
  return files;
}

describe('interoperability with restic', () => {
  it('chunks files exactly as restic backs them up: same boundaries, same blob ids', async () => {
    // Given a fresh restic repository and its random chunker polynomial
    await restic('init', '--repository-version', '2');
    const config = JSON.parse(await restic('cat', 'config')) as { chunker_polynomial: string };
    const pol = parseChunkerPolynomial(config.chunker_polynomial);

    // And 20 MiB of pseudo-random data, the same with 16 bytes changed in the middle, and edge cases
    const original = pseudoRandomBytes(20 * MiB, 'restic-interop');
    const edited = Buffer.from(original);
    edited.fill(0x5a, 10 * MiB, 10 * MiB + 16);
    const files: Record<string, Buffer> = {
      'original.bin': original,
      'edited.bin': edited,
      'zeros.bin': Buffer.alloc(3 * 512 * 1024 + 100),
      'small.bin': original.subarray(0, 1000),
      'empty.bin': Buffer.alloc(0),
    };
    for (const [name, bytes] of Object.entries(files)) await writeFile(join(dataDir, name), bytes);

    // When restic backs them up
    const summary = (await restic('backup', '--json', ...Object.keys(files)))
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { message_type: string; snapshot_id?: string })
      .find((message) => message.message_type === 'summary');
    expect(summary?.snapshot_id).toBeTruthy();
    const theirs = await resticBlobs(summary!.snapshot_id!);

    // Then our chunker, with the repository's polynomial, makes the very same blobs for every file
    for (const name of Object.keys(files)) {
      expect({ name, blobs: await ourBlobs(join(dataDir, name), pol) }).toEqual({
        name,
        blobs: theirs.get(name),
      });
    }

    // And the 20 MiB files were cut into many chunks, of which the edit changed only one or two
    const originalIds = theirs.get('original.bin')!.map((blob) => blob.id);
    const editedIds = theirs.get('edited.bin')!.map((blob) => blob.id);
    expect(originalIds.length).toBeGreaterThanOrEqual(8);
    const changed = editedIds.filter((id) => !originalIds.includes(id));
    expect(changed.length).toBeGreaterThanOrEqual(1);
    expect(changed.length).toBeLessThanOrEqual(2);
    expect(editedIds.length - changed.length).toBeGreaterThanOrEqual(originalIds.length - 2);
  }, 180_000);
});
