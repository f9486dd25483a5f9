import { RepositoryError, RepositoryErrorCode, type BlobSink } from '@volback/repository';

/**
 * A backup or restore cut short because the agent is stopping. It is not a failure: no
 * `…Failed` event is published, and the command goes back to NATS (not acknowledged) so the
 * agent runs it again at its next start, the chunks already stored not sent twice.
 */
export class WorkInterruptedError extends RepositoryError {
  override readonly name = 'WorkInterruptedError';
  /** Tells the durable consumer to give the command back without counting it as a failure. */
  readonly handBack = true;

  constructor(workId: string) {
    // A repository error, so that the walkers end the run instead of skipping one file; the
    // code is never published (an interrupted run publishes no outcome).
    super(RepositoryErrorCode.BackendUnavailable, `${workId} was interrupted: the agent is stopping`);
  }
}

/**
 * A sink that refuses new blobs once `signal` is aborted: the walk over a volume stops at the
 * next chunk instead of reading on while the agent shuts down. Blobs already taken are still
 * stored (drain), so the next run finds them in the repository.
 */
export function interruptible(sink: BlobSink, signal: AbortSignal, workId: string): BlobSink {
  return {
    get chunkerPolynomial() {
      return sink.chunkerPolynomial;
    },
    get bytesAdded() {
      return sink.bytesAdded;
    },
    async saveBlob(type, data, id, options) {
      if (signal.aborted) throw new WorkInterruptedError(workId);
      return sink.saveBlob(type, data, id, options);
    },
    hasBlobs: (type, ids) => sink.hasBlobs(type, ids),
    loadTree: (id) => sink.loadTree(id),
    drain: () => sink.drain(),
  };
}
