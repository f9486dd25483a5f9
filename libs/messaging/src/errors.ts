/** Stable codes of messaging failures. */
export const MessagingErrorCode = {
  /** The expected last subject sequence did not match: someone appended first. */
  ConcurrencyConflict: 'VOLBACK_CONCURRENCY_CONFLICT',
  /** JetStream refused a publish (no stream, limits, atomic publish disabled…). */
  PublishRejected: 'VOLBACK_PUBLISH_REJECTED',
  /** No NATS server answered before the deadline. */
  ConnectFailed: 'VOLBACK_NATS_CONNECT_FAILED',
  /** A batch is empty or larger than JetStream allows. */
  InvalidBatch: 'VOLBACK_INVALID_BATCH',
} as const;
/** One of {@link MessagingErrorCode}. */
export type MessagingErrorCode = (typeof MessagingErrorCode)[keyof typeof MessagingErrorCode];

/** Base of every error this library raises; `code` is stable, `cause` keeps the NATS error. */
export class MessagingError extends Error {
  override readonly name: string = 'MessagingError';
  readonly code: MessagingErrorCode;

  constructor(code: MessagingErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** Optimistic concurrency: the subject had moved on since the caller read it. */
export class ConcurrencyConflictError extends MessagingError {
  override readonly name = 'ConcurrencyConflictError';
  readonly subject: string;
  readonly expectedLastSubjectSequence: number;

  constructor(subject: string, expected: number, detail: string, options?: { cause?: unknown }) {
    super(
      MessagingErrorCode.ConcurrencyConflict,
      `${subject}: expected last subject sequence ${expected}, ${detail}`,
      options,
    );
    this.subject = subject;
    this.expectedLastSubjectSequence = expected;
  }
}

/** JetStream refused to store a message or batch; `apiErrorCode` is the server's `err_code`. */
export class PublishRejectedError extends MessagingError {
  override readonly name = 'PublishRejectedError';
  readonly apiErrorCode: number | undefined;

  constructor(message: string, apiErrorCode?: number, options?: { cause?: unknown }) {
    super(MessagingErrorCode.PublishRejected, message, options);
    this.apiErrorCode = apiErrorCode;
  }
}

/** NATS server error codes we act on (nats-server `server/errors.json`). */
export const JetStreamErrCode = {
  WrongLastSequence: 10071,
  AtomicPublishDuplicateMessageId: 10201,
  AtomicPublishDisabled: 10174,
} as const;
