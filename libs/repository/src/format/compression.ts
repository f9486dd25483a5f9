// zstd as restic's format version 2 uses it: blobs in packs (compressed when it pays), and the
// unpacked files (index, snapshot, lock).
import { constants, zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import { RepositoryError, RepositoryErrorCode } from '../errors.ts';
import { detach, RELEASE_FROM } from './release.ts';

/** restic's "auto" compression is zstd's default speed, level 3. */
export const ZSTD_LEVEL = 3;

/** zstd-compresses a blob or file body. */
export function compress(data: Uint8Array): Buffer {
  const frame = zstdCompressSync(data, {
    params: { [constants.ZSTD_c_compressionLevel]: ZSTD_LEVEL },
    chunkSize: outputChunk(data.length + (data.length >> 7) + 1024),
  });
  // The frame is a view of an output buffer as large as the input: alone it would keep all of
  // that alive until the next garbage collection, so it moves to a buffer of its own size.
  if (frame.buffer.byteLength - frame.byteLength < RELEASE_FROM) return frame;
  const own = Buffer.allocUnsafeSlow(frame.byteLength);
  own.set(frame);
  detach(frame.buffer);
  return own;
}

/** {@link compressBlob}: blobs shorter than this are always compressed (sampling would not pay). */
const SAMPLE_FROM = 64 * 1024;
const SAMPLE_BYTES = 16 * 1024;
/** Samples that shrink by less than this share make a blob count as incompressible. */
const INCOMPRESSIBLE = 0.97;

/**
 * A blob's zstd frame, or undefined when it is better stored uncompressed (format v2 allows both
 * in one pack; restic reads either). Already-compressed and random data (media, archives,
 * encrypted files) gain nothing from zstd but cost its time: four 16 KiB samples spread over the
 * blob are compressed at zstd's fastest level first, and a blob whose samples shrink by less than
 * 3% is not compressed at all. A frame no shorter than the blob is dropped as well.
 */
export function compressBlob(data: Uint8Array): Buffer | undefined {
  if (data.length >= SAMPLE_FROM) {
    const step = Math.floor((data.length - SAMPLE_BYTES) / 3);
    let sampled = 0;
    for (let i = 0; i < 4; i++) {
      const sample = data.subarray(i * step, i * step + SAMPLE_BYTES);
      sampled += zstdCompressSync(sample, {
        params: { [constants.ZSTD_c_compressionLevel]: 1 },
        chunkSize: outputChunk(SAMPLE_BYTES * 2),
      }).length;
    }
    if (sampled >= INCOMPRESSIBLE * 4 * SAMPLE_BYTES) return undefined;
  }
  const frame = compress(data);
  return frame.length < data.length ? frame : undefined;
}

/**
 * zlib's sync calls write into `chunkSize` pieces and join them at the end (16 KiB by default:
 * hundreds of buffers and a copy for a 4 MiB blob). One piece that holds all of the output
 * (zstd's bound for compressing; the index's length, plus one, for decompressing) avoids both.
 */
function outputChunk(bytes: number): number {
  return Math.min(Math.max(bytes, 64), 64 * 1024 * 1024);
}

/** Decompresses a zstd frame; a damaged frame is a `VOLBACK_REPO_MALFORMED` error. */
export function decompress(data: Uint8Array, expectedLength?: number): Buffer {
  let out: Buffer;
  try {
    out = zstdDecompressSync(
      data,
      expectedLength === undefined ? {} : { chunkSize: outputChunk(expectedLength + 1) },
    );
  } catch (cause) {
    throw new RepositoryError(
      RepositoryErrorCode.Malformed,
      `zstd data does not decompress: ${(cause as Error).message}`,
      {
        cause,
      },
    );
  }
  if (expectedLength !== undefined && out.length !== expectedLength) {
    throw new RepositoryError(
      RepositoryErrorCode.Malformed,
      `decompressed to ${out.length} bytes, expected ${expectedLength}`,
    );
  }
  return out;
}
