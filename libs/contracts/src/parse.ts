import type { MessageDefinition } from './define.ts';
import { envelopeSchema, type Envelope } from './envelope.ts';
import { ContractErrorCode, ContractViolationError, toContractIssues } from './errors.ts';
import { findDefinition } from './registry.ts';

/** A message that passed its envelope and data schemas. */
export interface ParsedMessage {
  readonly definition: MessageDefinition;
  /** The envelope with `data` as the schema output (defaults filled in). */
  readonly envelope: Envelope;
}

/** Outcome of {@link parseMessage}: never throws on bad input. */
export type ParseResult = { ok: true; message: ParsedMessage } | { ok: false; error: ContractViolationError };

/**
 * Validates a received message (raw bytes, a JSON string or an already parsed value): the
 * CloudEvents envelope first, then `data` against the schema of its `type`.
 */
export function parseMessage(raw: Uint8Array | string | unknown): ParseResult {
  let value: unknown = raw;
  if (raw instanceof Uint8Array || typeof raw === 'string') {
    try {
      const text = typeof raw === 'string' ? raw : new TextDecoder('utf-8', { fatal: true }).decode(raw);
      value = JSON.parse(text);
    } catch (cause) {
      const message = cause instanceof Error ? cause.message : String(cause);
      return {
        ok: false,
        error: new ContractViolationError(
          ContractErrorCode.InvalidJson,
          [{ path: '', message: `not UTF-8 JSON: ${message}` }],
          undefined,
          { cause },
        ),
      };
    }
  }
  const env = envelopeSchema.safeParse(value);
  if (!env.success) {
    const type =
      typeof value === 'object' && value !== null && typeof (value as { type?: unknown }).type === 'string'
        ? (value as { type: string }).type
        : undefined;
    return {
      ok: false,
      error: new ContractViolationError(ContractErrorCode.InvalidEnvelope, toContractIssues(env.error), type),
    };
  }
  const definition = findDefinition(env.data.type);
  if (!definition) {
    return {
      ok: false,
      error: new ContractViolationError(
        ContractErrorCode.UnknownType,
        [{ path: 'type', message: `no schema for ${env.data.type} (unknown type or newer version)` }],
        env.data.type,
      ),
    };
  }
  const data = definition.schema.safeParse(env.data.data);
  if (!data.success) {
    return {
      ok: false,
      error: new ContractViolationError(
        ContractErrorCode.InvalidData,
        toContractIssues(data.error, 'data'),
        env.data.type,
      ),
    };
  }
  return { ok: true, message: { definition, envelope: { ...env.data, data: data.data } } };
}

/** Serialises an envelope for the wire. */
export function encodeEnvelope(envelope: Envelope): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(envelope));
}
