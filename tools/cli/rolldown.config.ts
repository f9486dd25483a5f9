// The `volback` command as users run it (tools/cli/bin/volback): the command line and the
// repository library bundled into tools/cli/dist by scripts/build-cli.sh, with the repository's
// worker threads as entries of their own beside it (the pools load `./chunk-worker.js` and
// `./seal-worker.js` next to their bundled module). Packages from node_modules stay outside
// (native addons, and loading them costs the same either way). A bundle starts in about two thirds
// of the time the TypeScript sources take: no type stripping (Node's TypeScript loader is not even
// loaded), no resolution of about 200 files, and one compile-cache entry.
import { defineConfig } from 'rolldown';

/**
 * Packages of plain JavaScript bundled all the same: zod alone is 94 files to resolve and load at
 * every start (`volback repo snapshots` 0.22-0.25 s -> 0.18-0.19 s with these three; tar-stream's
 * and string-width's families as well changed nothing measurable).
 */
const BUNDLED = ['zod', 'commander', 'cli-progress'];

const source = (path: string) => new URL(path, import.meta.url).pathname;

export default defineConfig({
  input: {
    cli: source('./src/cli.ts'),
    // Loaded alone before cli.js (bin/volback.mjs): what it imports stays out of cli.js's chunks.
    'key-ahead': source('./src/key-ahead.ts'),
    'chunk-worker': source('../../libs/repository/src/chunker/chunk-worker.ts'),
    'seal-worker': source('../../libs/repository/src/crypto/seal-worker.ts'),
  },
  platform: 'node',
  // Relative and absolute paths and the workspace's own packages are bundled; the rest is loaded
  // from node_modules at run time.
  external: (id) =>
    !id.startsWith('.') &&
    !id.startsWith('/') &&
    !id.startsWith('@volback/') &&
    !BUNDLED.some((name) => id === name || id.startsWith(`${name}/`)),
  logLevel: 'warn',
  output: {
    dir: process.env['VOLBACK_BUNDLE_DIR'] ?? source('./dist'),
    format: 'esm',
    entryFileNames: '[name].js',
    chunkFileNames: '[name]-[hash].js',
  },
});
