// The JSON Schema files are what external subscribers read: one per message, committed under
// libs/contracts/schemas/, always equal to what the zod schemas generate.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import type { z } from 'zod';
import type { MessageDefinition } from './define.ts';
import {
  allJsonSchemaFiles,
  describeStaleJsonSchemas,
  diffJsonSchemaFiles,
  jsonSchemaFileName,
  messageJsonSchema,
} from './json-schema.ts';
import { MESSAGES } from './registry.ts';

const here = dirname(fileURLToPath(import.meta.url));
const SCHEMAS_DIR = join(here, '..', 'schemas');
const WRITE_SCHEMAS = join(here, 'bin', 'write-json-schemas.ts');
const ENVELOPE_REQUIRED = [
  'specversion',
  'id',
  'source',
  'type',
  'time',
  'subject',
  'datacontenttype',
  'data',
];

interface ObjectSchema {
  $id?: string;
  $schema?: string;
  title?: string;
  description?: string;
  type?: string;
  required?: string[];
  properties?: Record<string, ObjectSchema & { const?: unknown }>;
}

function requiredDataFields(def: MessageDefinition): string[] {
  const shape = (def.schema as z.ZodObject).shape as Record<string, z.ZodType>;
  return Object.entries(shape)
    .filter(([, schema]) => !schema.safeParse(undefined).success)
    .map(([key]) => key);
}

function committedFiles(dir = SCHEMAS_DIR): Map<string, string> {
  const files = new Map<string, string>();
  for (const name of readdirSync(dir).filter((f) => f.endsWith('.json'))) {
    files.set(name, readFileSync(join(dir, name), 'utf8'));
  }
  return files;
}

function runWriteSchemas(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const run = spawnSync(process.execPath, [WRITE_SCHEMAS, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

describe('allJsonSchemaFiles', () => {
  const files = allJsonSchemaFiles();

  it('has one file per message, named after its type', () => {
    expect([...files.keys()].sort()).toEqual(MESSAGES.map((def) => `${def.type}.json`).sort());
    expect(jsonSchemaFileName(MESSAGES[0]!)).toBe(`${MESSAGES[0]!.type}.json`);
  });

  it.each(MESSAGES.map((def) => ({ type: def.type, def })))(
    '$type: $id, title, description, type const and the required fields',
    ({ def }) => {
      // given
      const text = files.get(jsonSchemaFileName(def));
      // when
      const schema = JSON.parse(text ?? 'null') as ObjectSchema;
      // then
      expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
      expect(schema.$id).toBe(`https://volback.io/schemas/${def.type}.json`);
      expect(schema.title).toBe(def.name);
      expect(schema.description).toBe(`${def.kind === 'event' ? 'Event' : 'Command'}: ${def.description}`);
      expect(schema.type).toBe('object');
      expect(schema.properties?.['type']?.const).toBe(def.type);
      expect(schema.required).toEqual(expect.arrayContaining(ENVELOPE_REQUIRED));
      const data = schema.properties?.['data'];
      expect(data?.type).toBe('object');
      expect(data?.required ?? []).toEqual(expect.arrayContaining(requiredDataFields(def)));
      expect(Object.keys(data?.properties ?? {}).sort()).toEqual(
        Object.keys((def.schema as z.ZodObject).shape).sort(),
      );
    },
  );

  it('does not require what a sender may leave to a default', () => {
    const backupVolume = MESSAGES.find((def) => def.type === 'io.volback.cmd.backup-volume.v1')!;
    const data = (messageJsonSchema(backupVolume) as ObjectSchema).properties?.['data'];
    expect(data?.required).toEqual(['backupId', 'hostId', 'volumeName', 'trigger']);
  });

  it('pretty-prints with a trailing newline, so diffs of the committed files read well', () => {
    for (const text of files.values()) expect(text).toMatch(/^\{\n {2}"\$schema"[\s\S]*\}\n$/);
  });
});

describe('the committed schema files', () => {
  it('equal what the generator makes (else run `npm run contracts:schemas`)', () => {
    // given
    const wanted = allJsonSchemaFiles();
    // when
    const diff = diffJsonSchemaFiles(wanted, committedFiles());
    // then
    expect(describeStaleJsonSchemas(diff) ?? 'current').toBe('current');
  });

  it('pass `write-json-schemas.ts --check` (exit code 0)', () => {
    const run = runWriteSchemas('--check');
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toBe(`${MESSAGES.length} JSON Schema files are current\n`);
  });
});

describe('diffJsonSchemaFiles and describeStaleJsonSchemas', () => {
  const wanted = new Map([
    ['io.volback.a.done.v1.json', '{"a":1}\n'],
    ['io.volback.b.done.v1.json', '{"b":1}\n'],
    ['io.volback.c.done.v1.json', '{"c":1}\n'],
  ]);

  it('find nothing when the files match', () => {
    const diff = diffJsonSchemaFiles(wanted, new Map(wanted));
    expect(diff).toEqual({ stale: [], extra: [] });
    expect(describeStaleJsonSchemas(diff)).toBeUndefined();
  });

  it('find changed, missing and left-over files, and say how to fix them', () => {
    // given a changed b, a missing c and a file for a message that no longer exists
    const present = new Map([
      ['io.volback.a.done.v1.json', '{"a":1}\n'],
      ['io.volback.b.done.v1.json', '{"b":0}\n'],
      ['io.volback.old.done.v1.json', '{}\n'],
    ]);
    // when
    const diff = diffJsonSchemaFiles(wanted, present);
    // then
    expect(diff).toEqual({
      stale: ['io.volback.b.done.v1.json', 'io.volback.c.done.v1.json'],
      extra: ['io.volback.old.done.v1.json'],
    });
    expect(describeStaleJsonSchemas(diff)).toBe(
      [
        'libs/contracts/schemas is stale (run `npm run contracts:schemas` and commit):',
        '  changed or missing: io.volback.b.done.v1.json',
        '  changed or missing: io.volback.c.done.v1.json',
        '  no longer a message: io.volback.old.done.v1.json',
      ].join('\n'),
    );
  });

  it('treat a whitespace-only change as stale (the files are compared byte for byte)', () => {
    const present = new Map([...wanted].map(([name, text]) => [name, text.trimEnd()]));
    expect(diffJsonSchemaFiles(wanted, present).stale).toHaveLength(3);
  });
});

describe('write-json-schemas.ts on a copy of the schema directory', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('exits 1 with the files to regenerate when the copy is stale, and fixes it when run without --check', () => {
    // given a copy with one file edited, one removed and one left over
    dir = mkdtempSync(join(tmpdir(), 'volback-schemas-'));
    cpSync(SCHEMAS_DIR, dir, { recursive: true });
    writeFileSync(join(dir, 'io.volback.backup.completed.v1.json'), '{}\n');
    unlinkSync(join(dir, 'io.volback.host.seen.v1.json'));
    writeFileSync(join(dir, 'io.volback.backup.exploded.v1.json'), '{}\n');

    // when checking
    const check = runWriteSchemas('--check', `--dir=${dir}`);

    // then it fails and names each file
    expect(check.status).toBe(1);
    expect(check.stdout).toBe('');
    expect(check.stderr).toContain('run `npm run contracts:schemas` and commit');
    expect(check.stderr).toContain('changed or missing: io.volback.backup.completed.v1.json');
    expect(check.stderr).toContain('changed or missing: io.volback.host.seen.v1.json');
    expect(check.stderr).toContain('no longer a message: io.volback.backup.exploded.v1.json');

    // when regenerating
    const write = runWriteSchemas(`--dir=${dir}`);

    // then the copy equals the committed files again
    expect(write.status).toBe(0);
    expect(write.stdout).toContain('wrote 2, removed 1');
    expect(committedFiles(dir)).toEqual(committedFiles());
    expect(runWriteSchemas('--check', `--dir=${dir}`).status).toBe(0);
  });
});

describe('the README', () => {
  it('lists every event and command type (its table is written from the registry)', () => {
    const readme = readFileSync(join(here, '..', 'README.md'), 'utf8');
    const missing = MESSAGES.filter((def) => !readme.includes(`\`${def.type}\``)).map((def) => def.type);
    expect(missing, 'add these rows to libs/contracts/README.md').toEqual([]);
  });
});
