import { z } from 'zod';
import { envelopeSchema } from './envelope.ts';
import type { MessageDefinition } from './define.ts';
import { MESSAGES } from './registry.ts';

/** The file name of a message's JSON Schema in `libs/contracts/schemas/`, e.g. `io.volback.backup.completed.v1.json`. */
export function jsonSchemaFileName(def: MessageDefinition): string {
  return `${def.type}.json`;
}

/** JSON Schema (draft 2020-12) of a whole message: the CloudEvents envelope with this type's data. */
export function messageJsonSchema(def: MessageDefinition): Record<string, unknown> {
  const full = envelopeSchema.extend({ type: z.literal(def.type), data: def.schema });
  const schema = z.toJSONSchema(full, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return {
    $schema: schema['$schema'],
    $id: `https://volback.io/schemas/${jsonSchemaFileName(def)}`,
    title: def.name,
    description: `${def.kind === 'event' ? 'Event' : 'Command'}: ${def.description}`,
    ...Object.fromEntries(Object.entries(schema).filter(([key]) => key !== '$schema')),
  };
}

/** Every message's schema file, name → pretty JSON text, in a stable order. */
export function allJsonSchemaFiles(): Map<string, string> {
  const files = new Map<string, string>();
  for (const def of [...MESSAGES].sort((a, b) => a.type.localeCompare(b.type))) {
    files.set(jsonSchemaFileName(def), `${JSON.stringify(messageJsonSchema(def), null, 2)}\n`);
  }
  return files;
}

/** How the schema files on disk differ from {@link allJsonSchemaFiles}. */
export interface JsonSchemaFilesDiff {
  /** Files whose text differs from the generated one, or that are missing. */
  readonly stale: readonly string[];
  /** `.json` files on disk that no message describes any more. */
  readonly extra: readonly string[];
}

/** Compares generated schema files with the ones on disk (name → text; `.json` files only). */
export function diffJsonSchemaFiles(
  wanted: ReadonlyMap<string, string>,
  present: ReadonlyMap<string, string>,
): JsonSchemaFilesDiff {
  return {
    stale: [...wanted].filter(([name, text]) => present.get(name) !== text).map(([name]) => name),
    extra: [...present.keys()].filter((name) => !wanted.has(name)).sort(),
  };
}

/** The `--check` failure text: what to run, then every file that is out of step; undefined when current. */
export function describeStaleJsonSchemas(diff: JsonSchemaFilesDiff): string | undefined {
  if (diff.stale.length === 0 && diff.extra.length === 0) return undefined;
  return (
    'libs/contracts/schemas is stale (run `npm run contracts:schemas` and commit):\n' +
    [
      ...diff.stale.map((name) => `  changed or missing: ${name}`),
      ...diff.extra.map((name) => `  no longer a message: ${name}`),
    ].join('\n')
  );
}
