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
