// Writes one JSON Schema file per message into libs/contracts/schemas/ (`npm run contracts:schemas`).
// With --check, writes nothing and exits 1 when the committed files differ from the schemas.
// --dir=<path> points at another directory (the tests check a stale copy that way).
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { allJsonSchemaFiles, describeStaleJsonSchemas, diffJsonSchemaFiles } from '../json-schema.ts';

const dirArg = process.argv.find((arg) => arg.startsWith('--dir='));
const dir = dirArg
  ? resolve(dirArg.slice('--dir='.length))
  : join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'schemas');
const check = process.argv.includes('--check');
const wanted = allJsonSchemaFiles();
const present = new Map<string, string>();
for (const name of (await readdir(dir).catch(() => [])).filter((f) => f.endsWith('.json'))) {
  present.set(name, await readFile(join(dir, name), 'utf8'));
}
const diff = diffJsonSchemaFiles(wanted, present);

if (check) {
  const problem = describeStaleJsonSchemas(diff);
  if (problem) {
    console.error(problem);
    process.exit(1);
  }
  console.log(`${wanted.size} JSON Schema files are current`);
} else {
  await mkdir(dir, { recursive: true });
  for (const name of diff.stale) await writeFile(join(dir, name), wanted.get(name)!);
  for (const name of diff.extra) await rm(join(dir, name));
  console.log(
    `wrote ${diff.stale.length}, removed ${diff.extra.length}, ${wanted.size} JSON Schema files in ${dir}`,
  );
}
