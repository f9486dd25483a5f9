import type { Duplex } from 'node:stream';
import type Dockerode from 'dockerode';
import { chunkStream, parseChunkerPolynomial, sha256Hex, type BlobSink } from '@volback/repository';
import { DumpErrorCode, type DumpSpec } from '../domain/database-dump.ts';
import { HOOK_STDERR_TAIL_LIMIT } from '../errors.ts';
import { engineMessage } from './engine-errors.ts';
import { execExitCode, killExec } from './exec-process.ts';
import { ByteTail, demuxExecStream } from './exec-stream.ts';

/** A dump that was taken: its file's content in the repository, ready for the snapshot tree. */
export interface TakenDump {
  readonly spec: DumpSpec;
  /** Data blob ids of the file, in order. */
  readonly content: readonly string[];
  readonly sizeBytes: number;
  readonly durationMs: number;
  readonly startedAt: Date;
}

/**
 * A dump that did not give a usable file: it could not run, exited non-zero, or ran out of time.
 * The message carries the exit status and at most the last {@link HOOK_STDERR_TAIL_LIMIT} bytes of
 * its stderr, quoted; never its stdout (the data) nor its script.
 */
export class DumpFailedError extends Error {
  override readonly name = 'DumpFailedError';
  readonly code = DumpErrorCode.Failed;
  readonly container: string;
  readonly exitCode: number | undefined;

  constructor(
    details: { spec: DumpSpec; why: string; exitCode?: number; stderr?: string },
    options?: ErrorOptions,
  ) {
    const stderr = Buffer.from(details.stderr?.trim() ?? '', 'utf8');
    const tail = stderr.subarray(Math.max(0, stderr.length - HOOK_STDERR_TAIL_LIMIT)).toString('utf8');
    super(
      `${details.spec.preset} dump in container ${details.spec.container.name} ${details.why}` +
        (tail ? `; stderr (last ${HOOK_STDERR_TAIL_LIMIT} bytes at most): ${JSON.stringify(tail)}` : ''),
      options,
    );
    this.container = details.spec.container.name;
    this.exitCode = details.exitCode;
  }
}

/**
 * Takes database dumps with `docker exec` and streams their stdout straight into the repository:
 * the exec's output is cut into chunks (restic's chunker) as it arrives and each chunk goes to the
 * sink, which holds back when the gateways are busy, so nothing is copied to the host's disk and
 * memory stays flat whatever the dump's size. The exec's exit status (0) decides success.
 */
export class DatabaseDumper {
  readonly #docker: Dockerode;
  readonly #local: boolean;

  /** `local`: the engine runs on this machine, so a dump that runs out of time can be killed. */
  constructor(docker: Dockerode, options: { local: boolean }) {
    this.#docker = docker;
    this.#local = options.local;
  }

  /** Runs the dump and stores it; throws {@link DumpFailedError}, or the sink's error when storing failed. */
  async take(
    spec: DumpSpec,
    sink: BlobSink,
    options: { signal: AbortSignal; onBytes?: (bytes: number) => void },
  ): Promise<TakenDump> {
    const startedAt = new Date();
    const stderr = new ByteTail(HOOK_STDERR_TAIL_LIMIT * 4);
    let exec: Dockerode.Exec;
    let stream: Duplex;
    try {
      exec = await this.#docker.getContainer(spec.container.id ?? spec.container.name).exec({
        Cmd: ['sh', '-c', spec.script],
        AttachStdin: false,
        AttachStdout: true,
        AttachStderr: true,
        Tty: false,
      });
      stream = (await exec.start({ hijack: true, stdin: false })) as Duplex;
    } catch (error) {
      throw new DumpFailedError({ spec, why: `could not run: ${engineMessage(error)}` }, { cause: error });
    }
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      stream.destroy();
    }, spec.timeoutSeconds * 1000);
    const abort = () => stream.destroy();
    options.signal.addEventListener('abort', abort, { once: true });
    const content: string[] = [];
    let size = 0;
    try {
      const stdout = demuxExecStream(stream as AsyncIterable<Buffer>, (chunk) => stderr.push(chunk));
      for await (const chunk of chunkStream(stdout, parseChunkerPolynomial(sink.chunkerPolynomial))) {
        const id = sha256Hex(chunk.data);
        // Handed over: freed once the gateway has it, not when collected (a dump of 256 MiB
        // otherwise left its chunks for the collector, and the agent's peak ~100 MiB higher).
        await sink.saveBlob('data', chunk.data, id, { handOver: true });
        content.push(id);
        size += chunk.length;
        options.onBytes?.(size);
      }
    } catch (error) {
      stream.destroy();
      if (timedOut) throw await this.#timedOut(exec, spec, stderr, error);
      if (options.signal.aborted) throw error;
      if (error instanceof Error && error.name === 'ExecStreamError') {
        throw new DumpFailedError({ spec, why: error.message, stderr: stderr.text() }, { cause: error });
      }
      throw error;
    } finally {
      clearTimeout(timer);
      options.signal.removeEventListener('abort', abort);
    }
    if (timedOut) throw await this.#timedOut(exec, spec, stderr);
    const exitCode = await execExitCode(exec, 100);
    if (exitCode !== 0) {
      throw new DumpFailedError({
        spec,
        why: exitCode === undefined ? 'ended without an exit status' : `exited with ${exitCode}`,
        ...(exitCode !== undefined ? { exitCode } : {}),
        stderr: stderr.text(),
      });
    }
    return { spec, content, sizeBytes: size, durationMs: Date.now() - startedAt.getTime(), startedAt };
  }

  /** Kills a dump that ran out of time when the engine is local; its output is closed already. */
  async #timedOut(
    exec: Dockerode.Exec,
    spec: DumpSpec,
    stderr: ByteTail,
    cause?: unknown,
  ): Promise<DumpFailedError> {
    const killed =
      this.#local && spec.container.id !== undefined && (await killExec(exec, spec.container.id));
    return new DumpFailedError(
      {
        spec,
        why: `did not finish within ${spec.timeoutSeconds} s (${killed ? 'killed' : 'its output was closed; it may still run in the container'})`,
        stderr: stderr.text(),
      },
      { cause },
    );
  }
}
