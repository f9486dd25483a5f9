// Writes one JSON Schema file per message into libs/contracts/schemas/ (`npm run contracts:schemas`).
// With --check, writes nothing and exits 1 when the committed files differ from the schemas.
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { allJsonSchemaFiles } from '../json-schema.ts';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'schemas');
const check = process.argv.includes('--check');
const wanted = allJsonSchemaFiles();
const present = new Set((await readdir(dir).catch(() => [])).filter((f) => f.endsWith('.json')));

const stale: string[] = [];
for (const [name, text] of wanted) {
  const current = present.has(name) ? await readFile(join(dir, name), 'utf8') : undefined;
  if (current !== text) stale.push(name);
}
const extra = [...present].filter((name) => !wanted.has(name));

if (check) {
  if (stale.length || extra.length) {
    console.error(
      `libs/contracts/schemas is stale (run \`npm run contracts:schemas\` and commit):\n` +
        [...stale.map((n) => `  changed or missing: ${n}`), ...extra.map((n) => `  no longer a message: ${n}`)].join('\n'),
    );
    process.exit(1);
  }
  console.log(`${wanted.size} JSON Schema files are current`);
} else {
  await mkdir(dir, { recursive: true });
  for (const name of stale) await writeFile(join(dir, name), wanted.get(name)!);
  for (const name of extra) await rm(join(dir, name));
  console.log(`wrote ${stale.length}, removed ${extra.length}, ${wanted.size} JSON Schema files in ${dir}`);
}
