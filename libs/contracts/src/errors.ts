import type { z } from 'zod';

/** Stable codes for messages that break the contract. */
export const ContractErrorCode = {
  /** The bytes are not JSON. */
  InvalidJson: 'VOLBACK_CONTRACT_INVALID_JSON',
  /** Not a CloudEvents 1.0 envelope as volback writes them. */
  InvalidEnvelope: 'VOLBACK_CONTRACT_INVALID_ENVELOPE',
  /** A well-formed envelope whose `type` no schema describes (unknown, or a newer version). */
  UnknownType: 'VOLBACK_CONTRACT_UNKNOWN_TYPE',
  /** The `data` does not match the schema of its `type`. */
  InvalidData: 'VOLBACK_CONTRACT_INVALID_DATA',
  /**
   * A valid event that cannot have come from who may say it: on another aggregate's or another
   * host's subject, a source of another agent, or dated ahead of its storage (`checkEventOrigin`).
   */
  WrongOrigin: 'VOLBACK_CONTRACT_WRONG_ORIGIN',
} as const;
/** One of {@link ContractErrorCode}. */
export type ContractErrorCode = (typeof ContractErrorCode)[keyof typeof ContractErrorCode];

/** One problem found in a message: where, and what is wrong. */
export interface ContractIssue {
  /** Dotted path inside the message, e.g. `data.volumeName`; empty for the whole message. */
  readonly path: string;
  readonly message: string;
}

/** A message that does not satisfy the contract; `message` names the fields and what is wrong. */
export class ContractViolationError extends Error {
  override readonly name = 'ContractViolationError';
  readonly code: ContractErrorCode;
  readonly issues: readonly ContractIssue[];
  /** The `type` the message claimed, when it got that far. */
  readonly messageType: string | undefined;

  constructor(
    code: ContractErrorCode,
    issues: readonly ContractIssue[],
    messageType?: string,
    options?: { cause?: unknown },
  ) {
    const what = messageType ? `${messageType}: ` : '';
    super(
      `${what}${issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ')}`,
      options,
    );
    this.code = code;
    this.issues = issues;
    this.messageType = messageType;
  }
}

/** Turns zod issues into {@link ContractIssue}s, with paths under `prefix`. */
export function toContractIssues(error: z.ZodError, prefix = ''): ContractIssue[] {
  return error.issues.map((issue) => ({
    path: [prefix, ...issue.path.map(String)].filter(Boolean).join('.'),
    message: issue.message,
  }));
}
