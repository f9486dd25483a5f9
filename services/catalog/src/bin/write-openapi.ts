// Writes the catalog's OpenAPI document (what `GET /openapi.json` serves) to a file, without NATS
// or a database: the dashboard's build generates its client types from it (scripts/build-web.sh).
// Usage: node services/catalog/src/bin/write-openapi.ts <file>
import { writeFileSync } from 'node:fs';
import { buildApi, type ApiOptions } from '../http/api.ts';

const out = process.argv[2];
if (!out) {
  console.error('usage: write-openapi.ts <file>');
  process.exit(2);
}
// Routes reach these only while answering a request; the document comes from the schemas alone.
const unused = {} as never;
const app = await buildApi({
  queries: unused,
  commands: unused,
  reader: unused,
  live: unused,
  history: unused,
  notifications: unused,
  access: { tokens: [] },
  version: process.env['npm_package_version'] ?? '0.1.0',
} satisfies ApiOptions);
await app.ready();
writeFileSync(out, `${JSON.stringify(app.swagger(), null, 2)}\n`);
await app.close();
