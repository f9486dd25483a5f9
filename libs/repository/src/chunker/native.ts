import { loadNativeAddon } from '../native-addon.ts';

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

/** Without the addon (no C compiler, or `VOLBACK_NATIVE=off`) the JavaScript loop does the same work. */
export const nativeRabin: NativeRabin | undefined = loadNativeAddon<NativeRabin>('rabin');
