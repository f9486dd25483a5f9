import { createRequire } from 'node:module';

/** The native hot loop of the chunker (libs/repository/native/rabin.c), when it was built. */
export interface NativeRabin {
  /** As `Chunker.#roll`, with restic's tables as 64-bit entries and the fingerprint in `state`. */
  roll(
    src: Uint8Array,
    from: number,
    to: number,
    firstCutIndex: number,
    tables: BigUint64Array,
    state: Int32Array,
    splitMask: number,
  ): number;
}

/**
 * The addon scripts/build-native.sh builds (every project command runs it first), or undefined:
 * without a C compiler, or with `VOLBACK_NATIVE=off`, the JavaScript loop does the same work.
 */
function load(): NativeRabin | undefined {
  if (process.env['VOLBACK_NATIVE'] === 'off') return undefined;
  try {
    return createRequire(import.meta.url)('../../native/build/rabin.node') as NativeRabin;
  } catch {
    return undefined;
  }
}

export const nativeRabin: NativeRabin | undefined = load();
