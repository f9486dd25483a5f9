import { createRequire } from 'node:module';

/**
 * An addon scripts/build-native.sh builds into libs/repository/native/build/ (every project
 * command runs it first), or undefined: without a C compiler, or with `VOLBACK_NATIVE=off`,
 * each caller falls back to what it does without it.
 */
export function loadNativeAddon<T>(
  name: 'rabin' | 'xattr' | 'times' | 'zstd' | 'scan' | 'write' | 'blobs',
): T | undefined {
  if (process.env['VOLBACK_NATIVE'] === 'off') return undefined;
  try {
    // By the package's name, so that the command line's bundle (tools/cli/dist) finds them too.
    return createRequire(import.meta.url)(`@volback/repository/native/build/${name}.node`) as T;
  } catch {
    return undefined;
  }
}
