import { loadNativeAddon } from './native-addon.ts';

/** libs/repository/native/memory.c (see there). */
interface NativeMemory {
  mmapThreshold(bytes: number): boolean;
}

/**
 * Blocks from this size on are mapped on their own by the C allocator, and unmapped when freed.
 * 64 KiB: a NATS socket read, and most blobs, packs and replies a service passes through.
 */
export const OWN_MAPPING_FROM = 64 * 1024;

/**
 * Makes the C allocator give freed buffers of {@link OWN_MAPPING_FROM} or more back to the kernel
 * (glibc's `M_MMAP_THRESHOLD`, fixed instead of rising with each such buffer freed); true when it
 * took the setting, false without the addon or on another C library. A process that passes
 * volumes through (a service, the command line) calls it first thing: ArrayBuffers are the C
 * heap's, and freed ones stayed resident there. During a backup of 1 GiB of small files the
 * storage gateway's main C heap held 308 MiB while 95 MiB of ArrayBuffers were alive; with the
 * setting, 66 MiB while 191 MiB were, backing up 4 GiB (bench/README.md, "Allocator round").
 */
export function returnFreedBuffers(): boolean {
  return loadNativeAddon<NativeMemory>('memory')?.mmapThreshold(OWN_MAPPING_FROM) ?? false;
}
