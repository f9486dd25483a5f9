import { Writable, type Duplex } from 'node:stream';
import type Dockerode from 'dockerode';
import { HOOK_STDERR_TAIL_LIMIT, HookFailedError } from '../errors.ts';
import { engineMessage } from './engine-errors.ts';
import { execExitCode, killExec } from './exec-process.ts';

/** Most hook output kept (the end of it), stdout and stderr together. */
export const HOOK_OUTPUT_LIMIT = 8 * 1024;

/** A hook that ran. */
export interface HookRun {
  readonly phase: 'pre' | 'post';
  readonly container: string;
  readonly command: string;
  readonly exitCode: number;
  /** Its stdout and stderr interleaved, the last {@link HOOK_OUTPUT_LIMIT} bytes at most. */
  readonly output: string;
  readonly durationMs: number;
}

/** Keeps the last `limit` bytes written to it. */
class OutputTail extends Writable {
  readonly #limit: number;
  #chunks: Buffer[] = [];
  #length = 0;
  #dropped = 0;

  constructor(limit: number) {
    super();
    this.#limit = limit;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: () => void): void {
    this.#chunks.push(chunk);
    this.#length += chunk.length;
    if (this.#length > 2 * this.#limit) {
      const all = Buffer.concat(this.#chunks);
      this.#dropped += all.length - this.#limit;
      this.#chunks = [all.subarray(all.length - this.#limit)];
      this.#length = this.#limit;
    }
    done();
  }

  text(): string {
    const all = Buffer.concat(this.#chunks);
    const cut = Math.max(0, all.length - this.#limit);
    const dropped = this.#dropped + cut;
    const tail = all.subarray(cut).toString('utf8');
    return dropped > 0 ? `[${dropped} bytes cut]\n${tail}` : tail;
  }

  /** The last bytes, without a note of what was cut. */
  tail(): string {
    const all = Buffer.concat(this.#chunks);
    return all.subarray(Math.max(0, all.length - this.#limit)).toString('utf8');
  }
}

/**
 * Runs consistency hooks in containers (`docker exec`) within their time limit, keeping the end
 * of their output. A hook that runs out of time is killed when the engine is local.
 */
export class HookRunner {
  readonly #docker: Dockerode;
  readonly #local: boolean;

  /** `local`: the engine runs on this machine, so its exec pids are host pids (see {@link QuiescerOptions}). */
  constructor(docker: Dockerode, local: boolean) {
    this.#docker = docker;
    this.#local = local;
  }

  /** Runs `sh -c command` in the container; throws {@link HookFailedError} unless it exits 0 in time. */
  async run(
    containerId: string,
    name: string,
    command: string,
    timeoutSeconds: number,
    phase: 'pre' | 'post',
  ): Promise<HookRun> {
    const started = Date.now();
    const output = new OutputTail(HOOK_OUTPUT_LIMIT);
    // Only the end of stderr may reach the failure's message; stdout never does.
    const stderr = new OutputTail(HOOK_STDERR_TAIL_LIMIT * 4);
    const stderrSink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        output.write(chunk);
        stderr.write(chunk);
        done();
      },
    });
    const fail = (why: string, extra: { exitCode?: number; timedOut?: boolean } = {}, cause?: unknown) =>
      new HookFailedError(
        { phase, container: name, command, output: output.text(), stderr: stderr.tail(), why, ...extra },
        { cause },
      );
    let exec: Dockerode.Exec;
    let stream: Duplex;
    try {
      exec = await this.#docker.getContainer(containerId).exec({
        Cmd: ['sh', '-c', command],
        AttachStdin: false,
        AttachStdout: true,
        AttachStderr: true,
        Tty: false,
      });
      stream = (await exec.start({ hijack: true, stdin: false })) as Duplex;
    } catch (error) {
      throw fail(`could not run: ${engineMessage(error)}`, {}, error);
    }
    this.#docker.modem.demuxStream(stream, output, stderrSink);
    let timer: NodeJS.Timeout | undefined;
    const ended = new Promise<'ended'>((resolve) => {
      stream.once('end', () => resolve('ended'));
      stream.once('close', () => resolve('ended'));
      stream.once('error', () => resolve('ended'));
    });
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutSeconds * 1000);
    });
    const outcome = await Promise.race([ended, timedOut]);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      const killed = this.#local && (await killExec(exec, containerId));
      stream.destroy();
      throw fail(
        `did not finish within ${timeoutSeconds} s (${killed ? 'killed' : 'abandoned; it may still run in the container'})`,
        { timedOut: true },
      );
    }
    const exitCode = await execExitCode(exec);
    if (exitCode !== 0) {
      throw fail(exitCode === undefined ? 'ended without an exit status' : `exited with ${exitCode}`, {
        ...(exitCode !== undefined ? { exitCode } : {}),
      });
    }
    return {
      phase,
      container: name,
      command,
      exitCode,
      output: output.text(),
      durationMs: Date.now() - started,
    };
  }
}
