import { describe, expect, it } from 'vitest';
import { ByteTail, demuxExecStream, ExecStreamError } from './exec-stream.ts';

/** One frame of the engine's multiplexed stream. */
function frame(type: number, payload: string | Buffer): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const header = Buffer.alloc(8);
  header[0] = type;
  header.writeUInt32BE(body.length, 4);
  return Buffer.concat([header, body]);
}

/** The same bytes cut into pieces of `size` (1: every header split byte by byte). */
async function* pieces(bytes: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

async function demux(bytes: Buffer, size: number): Promise<{ stdout: string; stderr: string }> {
  let stderr = '';
  let stdout = '';
  for await (const chunk of demuxExecStream(pieces(bytes, size), (c) => (stderr += c.toString()))) {
    stdout += chunk.toString();
  }
  return { stdout, stderr };
}

describe('demuxExecStream', () => {
  const wire = Buffer.concat([
    frame(1, 'CREATE TABLE t;\n'),
    frame(2, 'pg_dump: warning\n'),
    frame(1, ''),
    frame(1, 'INSERT 1;\n'),
    frame(0, 'ignored stdin echo'),
    frame(2, 'done\n'),
  ]);

  it.each([1, 3, 7, 8, 9, 64, wire.length])(
    'given the stream in pieces of %i bytes, then stdout and stderr come apart intact',
    async (size) => {
      expect(await demux(wire, size)).toEqual({
        stdout: 'CREATE TABLE t;\nINSERT 1;\n',
        stderr: 'pg_dump: warning\ndone\n',
      });
    },
  );

  it('given a large frame, then its payload is passed on as it arrives, not gathered', async () => {
    const payload = Buffer.alloc(1024 * 1024, 7);
    const yielded: number[] = [];
    for await (const chunk of demuxExecStream(pieces(frame(1, payload), 64 * 1024), () => undefined)) {
      yielded.push(chunk.length);
    }
    expect(yielded.length).toBeGreaterThan(10);
    expect(yielded.reduce((a, b) => a + b, 0)).toBe(payload.length);
  });

  it('given a stream cut inside a frame, then it is an error, not a short dump', async () => {
    const cut = frame(1, 'abcdef').subarray(0, 11);
    await expect(demux(cut, 4)).rejects.toThrow(ExecStreamError);
    await expect(demux(Buffer.from([1, 0, 0]), 4)).rejects.toThrow('exec stream ended inside a frame');
  });

  it('given bytes that are no frame (a TTY exec), then it is an error', async () => {
    await expect(demux(Buffer.from('plain text output'), 64)).rejects.toThrow(
      'exec stream frame of unknown type 112',
    );
  });
});

describe('ByteTail', () => {
  it('keeps the last bytes only', () => {
    const tail = new ByteTail(10);
    for (let i = 0; i < 100; i++) tail.push(Buffer.from(`line ${i}\n`));
    expect(tail.text()).toBe('8\nline 99\n');
    expect(Buffer.byteLength(tail.text())).toBe(10);
  });
});
