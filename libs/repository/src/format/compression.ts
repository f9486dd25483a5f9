// zstd as restic's format version 2 uses it: blobs in packs (compressed when it pays), and the
// unpacked files (index, snapshot, lock).
import { constants, zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import * as zstdWasm from '@bokuweb/zstd-wasm';
import { RepositoryError, RepositoryErrorCode } from '../errors.ts';
import { loadNativeAddon } from '../native-addon.ts';
import { detach, RELEASE_FROM } from './release.ts';

/** restic's "auto" compression is zstd's default speed, level 3. */
export const ZSTD_LEVEL = 3;

/**
 * zstd with a compression and a decompression context kept per thread (native/zstd.c, the zstd of
 * the node binary itself), when it was built. node:zlib's sync calls build both anew for every
 * call: 42 against 17 µs to compress a 6 KiB blob here, 24 against 7 µs to decompress it.
 */
export interface NativeZstd {
  compress(src: Uint8Array, level: number): Buffer;
  compressedSize(src: Uint8Array, level: number): number;
  /** Exactly `length` bytes from exactly one frame, or undefined (node:zlib then decides). */
  decompress(src: Uint8Array, length: number): Buffer | undefined;
}
export const nativeZstd = loadNativeAddon<NativeZstd>('zstd');

/** zstd-compresses a blob or file body. */
export function compress(data: Uint8Array): Buffer {
  if (nativeZstd) return nativeZstd.compress(data, ZSTD_LEVEL);
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
      if (nativeZstd) {
        sampled += nativeZstd.compressedSize(sample, 1);
        continue;
      }
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

/**
 * Without the native addon, frames of at most this many bytes of plaintext go to the WebAssembly
 * build of zstd (the reference decoder) once it is loaded. node:zlib builds a stream object and a
 * decoder context for every call: about 22 µs here for a 4 KiB blob against 9 µs, which a restore
 * of tens of thousands of small files pays once per file. Larger frames stay with node:zlib.
 */
const SMALL_FRAME = 64 * 1024;
/** The WebAssembly decoder once loaded; until then (or when it cannot load) node:zlib decodes all. */
let smallFrames: Promise<boolean> | undefined;
let smallFramesLoaded = false;

/**
 * Loads the decoder of small frames (once; {@link decompress} starts it on first use, not at import,
 * so that a command that reads no blob does not pay for it). Resolves to whether it is in use.
 */
export function loadSmallFrameDecoder(): Promise<boolean> {
  smallFrames ??= zstdWasm.init().then(
    () => (smallFramesLoaded = true),
    () => false,
  );
  return smallFrames;
}

/** Whether the decoder of small frames is loaded; starts loading it when not (the next frames use it). */
function smallFrameDecoderReady(): boolean {
  if (!smallFramesLoaded) void loadSmallFrameDecoder();
  return smallFramesLoaded;
}

/**
 * The content size a zstd frame's header declares (RFC 8878, 3.1.1.1), or undefined when the
 * header does not declare one or is not a frame header.
 */
export function frameContentSize(frame: Uint8Array): number | undefined {
  if (frame.length < 6 || frame[0] !== 0x28 || frame[1] !== 0xb5 || frame[2] !== 0x2f || frame[3] !== 0xfd)
    return undefined;
  const descriptor = frame[4]!;
  const singleSegment = (descriptor & 0x20) !== 0;
  const fieldBytes = [singleSegment ? 1 : 0, 2, 4, 8][descriptor >> 6]!;
  if (fieldBytes === 0) return undefined;
  const at = 5 + (singleSegment ? 0 : 1) + [0, 1, 2, 4][descriptor & 0x03]!;
  if (frame.length < at + fieldBytes) return undefined;
  let size = 0;
  for (let i = fieldBytes - 1; i >= 0; i--) size = size * 256 + frame[at + i]!;
  return fieldBytes === 2 ? size + 256 : size;
}

/** Decompresses a zstd frame; a damaged frame is a `VOLBACK_REPO_MALFORMED` error. */
export function decompress(data: Uint8Array, expectedLength?: number): Buffer {
  if (expectedLength !== undefined && nativeZstd) {
    const plain = nativeZstd.decompress(data, expectedLength);
    if (plain) return plain;
  } else if (expectedLength !== undefined && expectedLength <= SMALL_FRAME && smallFrameDecoderReady()) {
    // Only a frame that declares no size or the expected one: the decoder allocates what it declares.
    const declared = frameContentSize(data);
    if (declared === undefined || declared === expectedLength) {
      try {
        const plain = zstdWasm.decompress(data, { defaultHeapSize: expectedLength });
        if (plain.length === expectedLength)
          return Buffer.from(plain.buffer, plain.byteOffset, plain.byteLength);
      } catch {
        // Damaged or unexpected: node:zlib below decides, and words the error as it always has.
      }
    }
  }
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
