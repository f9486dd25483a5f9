/** Docker's multiplexed stream types (the first byte of each frame header). */
const STDIN = 0;
const STDOUT = 1;
const STDERR = 2;
const HEADER_LENGTH = 8;

/** The engine's exec stream did not follow its framing (a TTY exec, or a cut connection). */
export class ExecStreamError extends Error {
  override readonly name = 'ExecStreamError';
}

/**
 * Splits the engine's multiplexed exec stream (8-byte frame headers: type, 3 zero bytes, length)
 * into stdout, yielded as it arrives, and stderr, handed to `onStderr`. Unlike dockerode's
 * `demuxStream` it keeps backpressure: the next bytes are read from the engine only when the
 * consumer asks for more, so a dump of any size passes through in bounded memory.
 */
export async function* demuxExecStream(
  stream: AsyncIterable<Buffer>,
  onStderr: (chunk: Buffer) => void,
): AsyncGenerator<Buffer> {
  let header = Buffer.alloc(0);
  let frameType = STDOUT;
  let frameLeft = 0;
  for await (const data of stream) {
    let offset = 0;
    while (offset < data.length) {
      if (frameLeft === 0) {
        const take = Math.min(HEADER_LENGTH - header.length, data.length - offset);
        header = Buffer.concat([header, data.subarray(offset, offset + take)]);
        offset += take;
        if (header.length < HEADER_LENGTH) break;
        frameType = header[0]!;
        if (frameType !== STDIN && frameType !== STDOUT && frameType !== STDERR) {
          throw new ExecStreamError(`exec stream frame of unknown type ${frameType}`);
        }
        frameLeft = header.readUInt32BE(4);
        header = Buffer.alloc(0);
        continue;
      }
      const take = Math.min(frameLeft, data.length - offset);
      const part = data.subarray(offset, offset + take);
      offset += take;
      frameLeft -= take;
      if (frameType === STDOUT) yield part;
      else if (frameType === STDERR) onStderr(part);
    }
  }
  if (header.length > 0 || frameLeft > 0) throw new ExecStreamError('exec stream ended inside a frame');
}

/** Keeps the last `limit` bytes written to it. */
export class ByteTail {
  readonly #limit: number;
  #chunks: Buffer[] = [];
  #length = 0;

  constructor(limit: number) {
    this.#limit = limit;
  }

  push(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#length += chunk.length;
    if (this.#length > 2 * this.#limit) {
      const all = Buffer.concat(this.#chunks);
      this.#chunks = [all.subarray(all.length - this.#limit)];
      this.#length = this.#limit;
    }
  }

  text(): string {
    const all = Buffer.concat(this.#chunks);
    return all.subarray(Math.max(0, all.length - this.#limit)).toString('utf8');
  }
}
