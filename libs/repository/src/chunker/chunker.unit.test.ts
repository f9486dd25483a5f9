import { Readable } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { RepositoryErrorCode } from '../errors.ts';
import {
  CHUNKER_MAX_SIZE,
  CHUNKER_MIN_SIZE,
  chunkBoundaries,
  Chunker,
  chunkStream,
  type Chunk,
  type ChunkBoundary,
  type ChunkerOptions,
} from './chunker.ts';
import { nativeRabin } from './native.ts';
import { goMathRandBytes, pseudoRandomBytes, sha256Hex } from './test-data.ts';

/** A chunk as restic's chunker_test.go states it: length, cut fingerprint, SHA-256. */
type Expected = [length: number, cut: number, sha256: string];

// restic/chunker's chunker_test.go: polynomial and expectations for 32 MiB of Go's math/rand
// Uint32() seeded with 23 (`getRandom(23, 32*1024*1024)`).
const TEST_POL = 0x3da3358b4dc173n;

/** Default parameters: window 64, average 1 MiB, 512 KiB to 8 MiB. */
const chunks1: Expected[] = [
  [2163460, 0x000b98d4cdf00000, '4b94cb2cf293855ea43bf766731c74969b91aa6bf3c078719aabdd19860d590d'],
  [643703, 0x000d4e8364d00000, '5727a63c0964f365ab8ed2ccf604912f2ea7be29759a2b53ede4d6841e397407'],
  [1528956, 0x0015a25c2ef00000, 'a73759636a1e7a2758767791c69e81b69fb49236c6929e5d1b654e06e37674ba'],
  [1955808, 0x00102a8242e00000, 'c955fb059409b25f07e5ae09defbbc2aadf117c97a3724e06ad4abd2787e6824'],
  [2222372, 0x00045da878000000, '6ba5e9f7e1b310722be3627716cf469be941f7f3e39a4c3bcefea492ec31ee56'],
  [2538687, 0x00198a8179900000, '8687937412f654b5cfe4a82b08f28393a0c040f77c6f95e26742c2fc4254bfde'],
  [609606, 0x001d4e8d17100000, '5da820742ff5feb3369112938d3095785487456f65a8efc4b96dac4be7ebb259'],
  [1205738, 0x000a7204dd600000, 'cc70d8fad5472beb031b1aca356bcab86c7368f40faa24fe5f8922c6c268c299'],
  [959742, 0x00183e71e1400000, '4065bdd778f95676c92b38ac265d361f81bff17d76e5d9452cf985a2ea5a4e39'],
  [4036109, 0x001fec043c700000, 'b9cf166e75200eb4993fc9b6e22300a6790c75e6b0fc8f3f29b68a752d42f275'],
  [1525894, 0x000b1574b1500000, '2f238180e4ca1f7520a05f3d6059233926341090f9236ce677690c1823eccab3'],
  [1352720, 0x00018965f2e00000, 'afd12f13286a3901430de816e62b85cc62468c059295ce5888b76b3af9028d84'],
  [811884, 0x00155628aa100000, '42d0cdb1ee7c48e552705d18e061abb70ae7957027db8ae8db37ec756472a70a'],
  [1282314, 0x001909a0a1400000, '819721c2457426eb4f4c7565050c44c32076a56fa9b4515a1c7796441730eb58'],
  [1318021, 0x001cceb980000000, '842eb53543db55bacac5e25cb91e43cc2e310fe5f9acc1aee86bdf5e91389374'],
  [948640, 0x0011f7a470a00000, 'b8e36bf7019bb96ac3fb7867659d2167d9d3b3148c09fe0de45850b8fe577185'],
  [645464, 0x00030ce2d9400000, '5584bd27982191c3329f01ed846bfd266e96548dfa87018f745c33cfc240211d'],
  [533758, 0x0004435c53c00000, '4da778a25b72a9a0d53529eccfe2e5865a789116cb1800f470d8df685a8ab05d'],
  [1128303, 0x0000c48517800000, '08c6b0b38095b348d80300f0be4c5184d2744a17147c2cba5cc4315abf4c048f'],
  [800374, 0x000968473f900000, '820284d2c8fd243429674c996d8eb8d3450cbc32421f43113e980f516282c7bf'],
  [2453512, 0x001e197c92600000, '5fa870ed107c67704258e5e50abe67509fb73562caf77caa843b5f243425d853'],
  [2651975, 0x000ae6c868000000, '181347d2bbec32bef77ad5e9001e6af80f6abcf3576549384d334ee00c1988d8'],
  [237392, 0x0000000000000001, 'fcd567f5d866357a8e299fd5b2359bb2c8157c30395229c4e9b0a353944a7978'],
];

/** Zero bytes, a multiple of the minimum size long: every chunk is cut at the minimum. */
const chunks2: Expected[] = Array.from({ length: 4 }, () => [
  CHUNKER_MIN_SIZE,
  0,
  '07854d2fef297a06ba81685e660c332de36d5d18d546927d30daad6d7fda1541',
]);

/** As chunks1, with 19 average bits. */
const chunks3: Expected[] = [
  [1491586, 0x00023e586ea80000, '4c008237df602048039287427171cef568a6cb965d1b5ca28dc80504a24bb061'],
  [671874, 0x000b98d4cdf00000, 'fa8a42321b90c3d4ce9dd850562b2fd0c0fe4bdd26cf01a24f22046a224225d3'],
  [643703, 0x000d4e8364d00000, '5727a63c0964f365ab8ed2ccf604912f2ea7be29759a2b53ede4d6841e397407'],
  [1284146, 0x0012b527e4780000, '16d04cafecbeae9eaedd49da14c7ad7cdc2b1cc8569e5c16c32c9fb045aa899a'],
  [823366, 0x000d1d6752180000, '48662c118514817825ad4761e8e2e5f28f9bd8281b07e95dcafc6d02e0aa45c3'],
  [810134, 0x0016071b6e180000, 'f629581aa05562f97f2c359890734c8574c5575da32f9289c5ba70bfd05f3f46'],
  [567118, 0x00102a8242e00000, 'd4f0797c56c60d01bac33bfd49957a4816b6c067fc155b026de8a214cab4d70a'],
  [821315, 0x001b3e42c8180000, '8ebd0fd5db0293bd19140da936eb8b1bbd3cd6ffbec487385b956790014751ca'],
  [1401057, 0x00045da878000000, '001360af59adf4871ef138cfa2bb49007e86edaf5ac2d6f0b3d3014510991848'],
  [2311122, 0x0005cbd885380000, '8276d489b566086d9da95dc5c5fe6fc7d72646dd3308ced6b5b6ddb8595f0aa1'],
  [608723, 0x001cfcd86f280000, '518db33ba6a79d4f3720946f3785c05b9611082586d47ea58390fc2f6de9449e'],
  [980456, 0x0013edb7a7f80000, '0121b1690738395e15fecba1410cd0bf13fde02225160cad148829f77e7b6c99'],
  [1140278, 0x0001f9f017e80000, '28ca7c74804b5075d4f5eeb11f0845d99f62e8ea3a42b9a05c7bd5f2fca619dd'],
  [2015542, 0x00097bf5d8180000, '6fe8291f427d48650a5f0f944305d3a2dbc649bd401d2655fc0bdd42e890ca5a'],
  [904752, 0x000e1863eff80000, '62af1f1eb3f588d18aff28473303cc4731fc3cafcc52ce818fee3c4c2820854d'],
  [713072, 0x001f3bb1b9b80000, '4bda9dc2e3031d004d87a5cc93fe5207c4b0843186481b8f31597dc6ffa1496c'],
  [675937, 0x001fec043c700000, '5299c8c5acec1b90bb020cd75718aab5e12abb9bf66291465fd10e6a823a8b4a'],
  [1525894, 0x000b1574b1500000, '2f238180e4ca1f7520a05f3d6059233926341090f9236ce677690c1823eccab3'],
  [1352720, 0x00018965f2e00000, 'afd12f13286a3901430de816e62b85cc62468c059295ce5888b76b3af9028d84'],
  [811884, 0x00155628aa100000, '42d0cdb1ee7c48e552705d18e061abb70ae7957027db8ae8db37ec756472a70a'],
  [1282314, 0x001909a0a1400000, '819721c2457426eb4f4c7565050c44c32076a56fa9b4515a1c7796441730eb58'],
  [1093738, 0x0017f5d048880000, '5dddfa7a241b68f65d267744bdb082ee865f3c2f0d8b946ea0ee47868a01bbff'],
  [962003, 0x000b921f7ef80000, '0cb5c9ebba196b441c715c8d805f6e7143a81cd5b0d2c65c6aacf59ca9124af9'],
  [856384, 0x00030ce2d9400000, '7734b206d46f3f387e8661e81edf5b1a91ea681867beb5831c18aaa86632d7fb'],
  [533758, 0x0004435c53c00000, '4da778a25b72a9a0d53529eccfe2e5865a789116cb1800f470d8df685a8ab05d'],
  [1128303, 0x0000c48517800000, '08c6b0b38095b348d80300f0be4c5184d2744a17147c2cba5cc4315abf4c048f'],
  [800374, 0x000968473f900000, '820284d2c8fd243429674c996d8eb8d3450cbc32421f43113e980f516282c7bf'],
  [2453512, 0x001e197c92600000, '5fa870ed107c67704258e5e50abe67509fb73562caf77caa843b5f243425d853'],
  [665901, 0x00118c842cb80000, 'deceec26163842fdef6560311c69bf8a9871a56e16d719e2c4b7e4d668ceb61f'],
  [1986074, 0x000ae6c868000000, '64cd64bf3c3bc389eb20df8310f0427d1c36ab2eaaf09e346bfa7f0453fc1a18'],
  [237392, 0x0000000000000001, 'fcd567f5d866357a8e299fd5b2359bb2c8157c30395229c4e9b0a353944a7978'],
];

/** As chunks1, with chunks between 16 and 32 MiB. */
const chunks4: Expected[] = [
  [17864181, 0x001fec043c700000, '4a43d4eccaa3b88514f54d3becddc6ef5e06fbb2de8161b0129888dbae4430a7'],
  [15690251, 0x0000000000000001, '4ca32142da6f9130dc9a5d0df82a3c9e359cc4f1f480f4e52042ec0e8ecd3cc0'],
];

const MiB = 1024 * 1024;

/** What restic's test compares: length, cut and digest of each chunk, and that they tile the input. */
function describeChunks(input: Uint8Array, boundaries: readonly ChunkBoundary[]): Expected[] {
  let offset = 0;
  for (const boundary of boundaries) {
    expect(boundary.offset).toBe(offset);
    offset += boundary.length;
  }
  expect(offset).toBe(input.length);
  return boundaries.map(({ offset: start, length, cut }) => [
    length,
    cut,
    sha256Hex(input.subarray(start, start + length)),
  ]);
}

/** Feeds `input` in pieces of the given sizes (the last piece takes what is left). */
function chunkInPieces(input: Uint8Array, sizes: Iterable<number>, options?: ChunkerOptions): Chunk[] {
  const chunker = new Chunker(TEST_POL, options);
  const chunks: Chunk[] = [];
  let offset = 0;
  for (const size of sizes) {
    if (offset >= input.length) break;
    chunks.push(...chunker.push(input.subarray(offset, offset + size)));
    offset += size;
  }
  if (offset < input.length) chunks.push(...chunker.push(input.subarray(offset)));
  const last = chunker.finish();
  if (last) chunks.push(last);
  return chunks;
}

/** Deterministic piece sizes mixing 1–64 bytes (shorter than the window), up to 4 KiB and up to 2 MiB. */
function* randomPieceSizes(seed: string): Generator<number> {
  const stream = pseudoRandomBytes(64 * 1024, seed);
  for (let i = 0; i + 4 <= stream.length; i += 4) {
    const r = stream.readUInt32LE(i);
    if (r % 4 === 0) yield 1 + (r % 64);
    else if (r % 4 === 1) yield 1 + (r % 4096);
    else yield 1 + (r % (2 * MiB));
  }
}

/** Sizes that put a piece edge at, and 1, 2, 63, 64 and 65 bytes either side of, each offset. */
function* piecesAround(offsets: readonly number[], total: number): Generator<number> {
  const distances = [-65, -64, -63, -2, -1, 0, 1, 2, 63, 64, 65];
  const edges = new Set(
    offsets.flatMap((offset) => distances.map((d) => offset + d)).filter((edge) => edge > 0 && edge < total),
  );
  let previous = 0;
  for (const edge of [...edges].sort((a, b) => a - b)) {
    yield edge - previous;
    previous = edge;
  }
}

let goRandom: Buffer;
beforeAll(() => {
  goRandom = goMathRandBytes(23, 32 * MiB);
});

// Every implementation of the hot loop must cut exactly where restic does.
describe.each([
  { loop: 'the native loop', native: true },
  { loop: 'the JavaScript loop', native: false },
])('with $loop', ({ native }) => {
  const impl: ChunkerOptions = { native };

  describe("restic's chunker vectors (polynomial 0x3DA3358B4DC173, Go math/rand seeded with 23)", () => {
    it('cuts 32 MiB with the default parameters exactly where restic does', () => {
      expect(describeChunks(goRandom, chunkBoundaries(TEST_POL, goRandom, impl))).toEqual(chunks1);
    });

    it('cuts zero bytes at the minimum size, with fingerprint 0, and adds no empty last chunk', () => {
      const zeros = Buffer.alloc(chunks2.length * CHUNKER_MIN_SIZE);

      expect(describeChunks(zeros, chunkBoundaries(TEST_POL, zeros, impl))).toEqual(chunks2);
    });

    it('cuts as restic does with 19 average bits', () => {
      const boundaries = chunkBoundaries(TEST_POL, goRandom, { ...impl, averageBits: 19 });

      expect(describeChunks(goRandom, boundaries)).toEqual(chunks3);
    });

    it('cuts as restic does with chunks between 16 and 32 MiB', () => {
      const boundaries = chunkBoundaries(TEST_POL, goRandom, {
        ...impl,
        minSize: 16 * MiB,
        maxSize: 32 * MiB,
      });

      expect(describeChunks(goRandom, boundaries)).toEqual(chunks4);
    });
  });

  describe('independence from how the input is split', () => {
    it('gives the same chunks whatever the sizes of the buffers fed', () => {
      const whole = chunkBoundaries(TEST_POL, goRandom, impl);

      for (const seed of ['pieces-1', 'pieces-2', 'pieces-3']) {
        const chunks = chunkInPieces(goRandom, randomPieceSizes(seed), impl);

        expect(chunks.map(({ offset, length, cut }) => ({ offset, length, cut }))).toEqual(whole);
        expect(chunks.map((chunk) => sha256Hex(chunk.data))).toEqual(chunks1.map(([, , sha256]) => sha256));
      }
    });

    it('gives the same chunks when buffers end right at, before or after a cut or the window', () => {
      const whole = chunkBoundaries(TEST_POL, goRandom, impl);
      const offsets = whole.flatMap(({ offset, length }) => [
        offset + length,
        offset + CHUNKER_MIN_SIZE - 64,
        offset + CHUNKER_MIN_SIZE,
      ]);

      const chunks = chunkInPieces(goRandom, piecesAround(offsets, goRandom.length), impl);

      expect(chunks.map(({ offset, length, cut }) => ({ offset, length, cut }))).toEqual(whole);
      expect(Buffer.concat(chunks.map((chunk) => chunk.data)).equals(goRandom)).toBe(true);
    });

    it('gives the same chunks fed one byte at a time', () => {
      // Small chunks, so that many cuts and restarts fall inside the one-byte buffers
      const options: ChunkerOptions = { ...impl, minSize: 4096, maxSize: 65536, averageBits: 12 };
      const input = goRandom.subarray(0, 512 * 1024);
      const chunker = new Chunker(TEST_POL, options);
      const chunks: Chunk[] = [];

      for (let i = 0; i < input.length; i++) chunks.push(...chunker.push(input.subarray(i, i + 1)));
      const last = chunker.finish();
      if (last) chunks.push(last);

      const whole = chunkBoundaries(TEST_POL, input, options);
      expect(whole.length).toBeGreaterThan(50);
      expect(chunks.map(({ offset, length, cut }) => ({ offset, length, cut }))).toEqual(whole);
    });

    it('chunks a Node stream of a file as restic would', async () => {
      // Given a stream in 64 KiB buffers, as fs.createReadStream reads
      function* fileReads(): Generator<Buffer> {
        for (let offset = 0; offset < goRandom.length; offset += 64 * 1024) {
          yield goRandom.subarray(offset, offset + 64 * 1024);
        }
      }
      const chunks: Chunk[] = [];

      for await (const chunk of chunkStream(Readable.from(fileReads()), TEST_POL, impl)) chunks.push(chunk);

      expect(describeChunks(goRandom, chunks)).toEqual(chunks1);
    });
  });
});

describe('chunk edges and data', () => {
  it('makes no chunk of an empty file', () => {
    expect(chunkBoundaries(TEST_POL, Buffer.alloc(0))).toEqual([]);
    expect(new Chunker(TEST_POL).finish()).toBeUndefined();
  });

  it('makes one chunk of a file shorter than the minimum size, without hashing it', () => {
    const input = goRandom.subarray(0, 1000);

    expect(chunkBoundaries(TEST_POL, input)).toEqual([{ offset: 0, length: 1000, cut: 1 }]);
  });

  it('cuts at the maximum size when the fingerprint never allows a cut', () => {
    // Given 20 MiB whose fingerprint never has its low 32 bits zero
    const input = pseudoRandomBytes(20 * MiB, 'max-size');

    // When it is chunked with a 32-bit split mask
    const lengths = chunkBoundaries(TEST_POL, input, { averageBits: 32 }).map((chunk) => chunk.length);

    // Then every chunk but the last is exactly 8 MiB
    expect(lengths).toEqual([CHUNKER_MAX_SIZE, CHUNKER_MAX_SIZE, 20 * MiB - 2 * CHUNKER_MAX_SIZE]);
  });

  it('hands out views of the input when a chunk lies within one buffer, and joins pieces otherwise', () => {
    // Given the first 3 MiB in one buffer (chunks 1 and 2 end inside it), then the rest in two
    const chunker = new Chunker(TEST_POL);
    const [first, second] = chunker.push(goRandom.subarray(0, 3 * MiB));
    const rest = [goRandom.subarray(3 * MiB, 3 * MiB + 100_000), goRandom.subarray(3 * MiB + 100_000)];

    // When the third chunk (starting in the first buffer, ending in the third) completes
    const [third] = rest.flatMap((piece) => chunker.push(piece));

    // Then the first two are views of the input and the third a copy of its pieces
    expect(first?.data.buffer).toBe(goRandom.buffer);
    expect(second?.data.buffer).toBe(goRandom.buffer);
    expect(second?.data.byteOffset).toBe(goRandom.byteOffset + chunks1[0]![0]);
    expect(third?.data.buffer).not.toBe(goRandom.buffer);
    expect(third?.offset).toBe(chunks1[0]![0] + chunks1[1]![0]);
    expect(third && sha256Hex(third.data)).toBe(chunks1[2]![2]);
  });

  it('starts over after finish, ready for the next file', () => {
    const chunker = new Chunker(TEST_POL);
    const input = goRandom.subarray(0, 4 * MiB);
    const run = (): ChunkBoundary[] => {
      const chunks = chunker.push(input);
      const last = chunker.finish();
      return [...chunks, ...(last ? [last] : [])].map(({ offset, length, cut }) => ({ offset, length, cut }));
    };

    expect(run()).toEqual(run());
  });
});

describe("a changed chunk's cut from the windows over its changes (firstCutIn)", () => {
  /**
   * Rewrites bytes of each chunk at each place, and checks that firstCutIn over the windows that
   * see them decides what chunking the changed chunk from its start decides: a new cut inside
   * (where), the same end, or no cut where it ended. Returns how often each happened.
   */
  function expectAgreement(
    options: ChunkerOptions,
    input: Buffer,
    lengths: readonly number[],
    places: (length: number) => Array<[at: number, count: number]>,
  ): Record<'same' | 'moved' | 'gone', number> {
    const outcomes = { same: 0, moved: 0, gone: 0 };
    let start = 0;
    for (const [k, length] of lengths.entries()) {
      for (const [at, count] of places(length)) {
        const changed = Buffer.from(input.subarray(start, start + length + 64 * 1024));
        pseudoRandomBytes(count, `chunk ${k} at ${at}`).copy(changed, at);
        const truth = new Chunker(TEST_POL, options).push(changed)[0]?.length ?? Infinity;

        const to = at + count + 64;
        const cut = new Chunker(TEST_POL, options).firstCutIn(changed.subarray(0, length), at, to);

        if (truth < length) expect(cut).toBe(truth);
        expect(cut >= 0 ? cut === length : to < length).toBe(truth === length);
        outcomes[truth === length ? 'same' : truth < length ? 'moved' : 'gone'] += 1;
      }
      start += length;
    }
    return outcomes;
  }

  for (const native of [true, false]) {
    const loop = native ? 'native' : 'JavaScript';
    it(`decides as chunking from the chunk's start, restic's parameters (${loop} loop)`, () => {
      // Restic's vector chunks, rewritten where it matters: in the part restic skips, across its
      // end, in the middle, just before and inside the last window
      const lengths = chunks1.slice(0, 8).map(([length]) => length);
      const outcomes = expectAgreement({ native }, goRandom, lengths, (length) => [
        [0, 8192],
        [CHUNKER_MIN_SIZE - 64 - 100, 200],
        [CHUNKER_MIN_SIZE, 300_000],
        [Math.floor(length / 2), 8192],
        [Math.floor(length / 2), 1],
        [length - 64 - 8192 - 1, 8192],
        [length - 64 - 8192, 8192],
        [length - 70, 1],
        [length - 64, 1],
        [length - 1, 1],
      ]);
      expect(outcomes.same).toBeGreaterThan(0);
      expect(outcomes.moved).toBeGreaterThan(0);
      expect(outcomes.gone).toBeGreaterThan(0);
    });

    it(`decides as chunking from the chunk's start, a cut every ~256 bytes (${loop} loop)`, () => {
      // Cuts so frequent that a fingerprint wrong at a few windows would show
      const options: ChunkerOptions = { native, minSize: 1024, maxSize: 4096, averageBits: 8 };
      const input = goRandom.subarray(0, 1 * MiB);
      const lengths = chunkBoundaries(TEST_POL, input, options)
        .slice(0, -1)
        .map((chunk) => chunk.length);
      let seed = 1;
      const next = (below: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % below;
      const outcomes = expectAgreement(options, input, lengths.slice(0, 300), (length) =>
        Array.from({ length: 4 }, () => {
          const at = next(length);
          return [at, 1 + next(Math.min(100, length - at))];
        }),
      );
      expect(outcomes.same).toBeGreaterThan(500);
      expect(outcomes.moved).toBeGreaterThan(50);
      expect(outcomes.gone).toBeGreaterThan(10);
    });
  }

  it('rolls nothing for changes in the bytes restic skips, and leaves the chunker as new', () => {
    const chunker = new Chunker(TEST_POL);
    const first = chunks1[0]![0];
    expect(chunker.firstCutIn(goRandom.subarray(0, first), 1000, 9000)).toBe(-1);
    expect(chunker.firstCutIn(goRandom.subarray(0, first), 0, first + 64)).toBe(first);
    expect(chunker.push(goRandom.subarray(0, 3 * MiB)).map((c) => c.length)).toEqual([first, chunks1[1]![0]]);
  });
});

describe('the native loop rolling stretches in pieces side by side', () => {
  it.each([11, 13, 15, 17])('cuts where the JavaScript loop does, %i average bits', (averageBits) => {
    // Cuts every 2–128 KiB on average: first in any of the pieces a stretch is cut into, or in none.
    const input = goRandom.subarray(0, 8 * MiB);
    const options = { minSize: 128, maxSize: MiB, averageBits };
    const native = chunkInPieces(input, randomPieceSizes(`lanes-${averageBits}`), {
      ...options,
      native: true,
    });
    const javascript = chunkBoundaries(TEST_POL, input, { ...options, native: false });
    expect(native.map(({ offset, length, cut }) => ({ offset, length, cut }))).toEqual(javascript);
    expect(javascript.length).toBeGreaterThan((8 * MiB) / 2 ** (averageBits + 1));
  });
});

describe('parameters', () => {
  it('has the native loop the project scripts build, unless turned off', () => {
    if (process.env['VOLBACK_NATIVE'] === 'off') expect(nativeRabin).toBeUndefined();
    else expect(nativeRabin, 'run scripts/build-native.sh (needs a C compiler)').toBeDefined();
  });

  it('refuses bad arguments in the native loop instead of reading outside the input', () => {
    const tables = new BigUint64Array(512);
    const state = new Int32Array(2);
    expect(() => nativeRabin?.roll(new Uint8Array(100), 64, 101, 0, tables, state, 1)).toThrow(
      /out of range/,
    );
    expect(() => nativeRabin?.roll(new Uint8Array(100), 10, 20, 0, tables, state, 1)).toThrow(/out of range/);
    expect(() => nativeRabin?.roll(new Uint8Array(100), 64, 80, 0, new BigUint64Array(2), state, 1)).toThrow(
      /tables/,
    );
    // Tables or a state that could push a fingerprint past 53 bits, and the mod table's index past 255.
    expect(() => nativeRabin?.roll(new Uint8Array(100), 64, 80, 0, tables, state, 1)).toThrow(/not restic's/);
    const shaped = new BigUint64Array(512);
    for (let b = 0; b < 256; b++) shaped[256 + b] = BigInt(b) << 53n;
    expect(() =>
      nativeRabin?.roll(new Uint8Array(100), 64, 80, 0, shaped, new Int32Array([1 << 21, 0]), 1),
    ).toThrow(/not a fingerprint/);
    expect(nativeRabin?.roll(new Uint8Array(100).fill(255), 64, 100, 0, shaped, state, 0)).toBe(65);
  });

  it('refuses a polynomial of a degree the chunker cannot use', () => {
    expect(() => new Chunker(0b111n)).toThrow(
      expect.objectContaining({ code: RepositoryErrorCode.Unsupported }),
    );
    expect(() => new Chunker(1n << 60n)).toThrow(
      expect.objectContaining({ code: RepositoryErrorCode.Unsupported }),
    );
  });

  it.each<ChunkerOptions>([
    { minSize: 63 },
    { minSize: 1024, maxSize: 1023 },
    { averageBits: 0 },
    { averageBits: 33 },
  ])('refuses options %j', (options) => {
    expect(() => new Chunker(TEST_POL, options)).toThrow(RangeError);
  });
});
