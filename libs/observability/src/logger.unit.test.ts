import { hostname } from 'node:os';
import { Writable } from 'node:stream';
import { setImmediate as tick } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { createLogger, InvalidLogLevelError, type LoggerOptions } from './logger.ts';

/** A destination that keeps what the logger writes, as the process's stdout would receive it. */
function capture(): { destination: Writable; text: () => Promise<string> } {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer | string, _encoding, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  return {
    destination,
    // Pretty output passes through a transform stream; give it a few turns to arrive.
    text: async () => {
      for (let i = 0; i < 5; i++) await tick();
      return chunks.join('');
    },
  };
}

function jsonLogger(options: Partial<LoggerOptions> = {}) {
  const out = capture();
  const logger = createLogger({
    service: 'test-svc',
    pretty: false,
    env: {},
    ...options,
    destination: out.destination,
  });
  const lines = async () =>
    (await out.text())
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  return { logger, lines, text: out.text };
}

const PASSWORD = 'correct-horse-battery-staple';

describe('createLogger', () => {
  it('writes one JSON object per line with service, hostname, pid, level and ISO time', async () => {
    const { logger, lines } = jsonLogger();
    logger.info({ volume: 'pgdata' }, 'backup queued');
    const [line] = await lines();
    expect(line).toMatchObject({
      service: 'test-svc',
      hostname: hostname(),
      pid: process.pid,
      level: 'info',
      volume: 'pgdata',
      msg: 'backup queued',
    });
    expect(new Date(String(line?.['time'])).toISOString()).toBe(line?.['time']);
  });

  it('keeps a repository password out of the output wherever it is logged', async () => {
    const { logger, text } = jsonLogger();
    logger.info({ password: PASSWORD }, 'top level');
    logger.info({ repository: { url: 's3://bucket', password: PASSWORD } }, 'nested');
    logger.info({ job: { repository: { config: { password: PASSWORD } } } }, 'three deep');
    logger.info({ env: { RESTIC_PASSWORD: PASSWORD } }, 'environment object');
    logger.info({ container: { Config: { Env: [`RESTIC_PASSWORD=${PASSWORD}`] } } }, 'docker inspect');
    logger.info({ req: { headers: { authorization: `Bearer ${PASSWORD}` } } }, 'request');
    logger.info({ s3: { secretAccessKey: PASSWORD, accessKey: 'AKIA-visible' } }, 'credentials');
    logger.child({ repository: { password: PASSWORD } }).info('child bindings');
    logger.error({ err: Object.assign(new Error('open failed'), { password: PASSWORD }) }, 'error props');
    const output = await text();
    expect(output.split('\n').filter(Boolean)).toHaveLength(9);
    expect(output).not.toContain(PASSWORD);
    expect(output).toContain('[REDACTED]');
    expect(output).toContain('s3://bucket');
    expect(output).toContain('AKIA-visible');
    expect(output).toContain('open failed');
  });

  it('redacts extra keys given by the service, at the same depths', async () => {
    const { logger, text } = jsonLogger({ redact: ['natsSeed'] });
    logger.info({ nats: { natsSeed: PASSWORD } }, 'connecting');
    expect(await text()).not.toContain(PASSWORD);
  });

  it('takes its level from the option, then LOG_LEVEL, then info', async () => {
    const fromDefault = jsonLogger();
    fromDefault.logger.debug('hidden');
    fromDefault.logger.info('shown');
    expect((await fromDefault.lines()).map((l) => l['msg'])).toEqual(['shown']);

    const fromEnv = jsonLogger({ env: { LOG_LEVEL: 'DEBUG' } });
    fromEnv.logger.debug('shown');
    expect((await fromEnv.lines()).map((l) => l['msg'])).toEqual(['shown']);

    const fromOption = jsonLogger({ level: 'warn', env: { LOG_LEVEL: 'debug' } });
    fromOption.logger.info('hidden');
    fromOption.logger.warn('shown');
    expect((await fromOption.lines()).map((l) => l['msg'])).toEqual(['shown']);
  });

  it('refuses an unknown level with a stable error code', () => {
    expect(() => jsonLogger({ env: { LOG_LEVEL: 'verbose' } })).toThrow(InvalidLogLevelError);
    try {
      jsonLogger({ env: { LOG_LEVEL: 'verbose' } });
    } catch (error) {
      expect(error).toMatchObject({ code: 'VOLBACK_INVALID_LOG_LEVEL' });
    }
  });

  it('prints human-readable lines when VOLBACK_LOG_PRETTY=1, still without secrets', async () => {
    const out = capture();
    const logger = createLogger({
      service: 'test-svc',
      env: { VOLBACK_LOG_PRETTY: '1' },
      destination: out.destination,
    });
    logger.warn({ password: PASSWORD, volume: 'pgdata' }, 'snapshot slow');
    const output = await out.text();
    expect(output).toContain('WARN');
    expect(output).toContain('snapshot slow');
    expect(output).toContain('pgdata');
    expect(output).not.toContain(PASSWORD);
    expect(() => JSON.parse(output.split('\n')[0] ?? '')).toThrow();
  });

  it('stays JSON when VOLBACK_LOG_PRETTY=0', async () => {
    const out = capture();
    const logger = createLogger({
      service: 'test-svc',
      env: { VOLBACK_LOG_PRETTY: '0' },
      destination: out.destination,
    });
    logger.info('plain');
    expect(JSON.parse((await out.text()).trim())).toMatchObject({ msg: 'plain' });
  });
});
