// The `volback` command as installed (bin/volback runs it after scripts/env.sh has brought the
// bundle up to date): Node's compile cache first, so the bundle's compiled code is kept between
// runs, then the bundle (tools/cli/dist, scripts/build-cli.sh). `node tools/cli/src/main.ts` runs
// the same command from the TypeScript sources.
import { enableCompileCache } from 'node:module';
import { join } from 'node:path';
import process from 'node:process';

const cacheRoot = process.env['VOLBACK_CACHE_DIR'];
enableCompileCache(cacheRoot ? join(cacheRoot, 'compile-cache') : undefined);
// The repository's key derived while the rest loads (src/key-ahead.ts).
const { startKeyAhead } = await import('../dist/key-ahead.js');
startKeyAhead(process.argv.slice(2), process.env);
await import('../dist/cli.js');
