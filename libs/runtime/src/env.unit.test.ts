import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_NATS_URL, envReader } from './env.ts';

class TestConfigError extends Error {
  override readonly name = 'TestConfigError';
  readonly variable: string;
  constructor(variable: string, message: string) {
    super(`${variable}: ${message}`);
    this.variable = variable;
  }
}

const reader = (env: NodeJS.ProcessEnv, cwd = '/srv') => envReader(env, cwd, TestConfigError);

describe('envReader', () => {
  it('reads a trimmed value; unset and blank are the same', () => {
    const read = reader({ A: '  x ', B: '   ' });
    expect(read.value('A')).toBe('x');
    expect(read.value('B')).toBeUndefined();
    expect(read.value('C')).toBeUndefined();
  });

  it('reads whole numbers within bounds, else names the variable', () => {
    const read = reader({ N: '42', BIG: '70000', NEG: '-1', F: '1.5' });
    expect(read.integer('N', 1, 0, 100)).toBe(42);
    expect(read.integer('UNSET', 7, 0, 100)).toBe(7);
    expect(() => read.integer('BIG', 1, 0, 65_535)).toThrow(
      new TestConfigError('BIG', '"70000" is not a whole number from 0 to 65535'),
    );
    expect(() => read.integer('NEG', 1, 0, 10)).toThrow(/^NEG: /);
    expect(() => read.integer('F', 1, 0, 10)).toThrow(TestConfigError);
  });

  it('reads fractions from 0 to 1', () => {
    const read = reader({ A: '0.25', B: '.5', C: '1.5', D: 'half' });
    expect(read.fraction('A', 0)).toBe(0.25);
    expect(read.fraction('B', 0)).toBe(0.5);
    expect(read.fraction('UNSET', 0.05)).toBe(0.05);
    expect(() => read.fraction('C', 0)).toThrow(/^C: "1.5" is not a number from 0 to 1$/);
    expect(() => read.fraction('D', 0)).toThrow(TestConfigError);
  });

  it('reads flags in any case, with a fallback', () => {
    const read = reader({ Y: 'YES', T: 'true', O: '1', N: 'no', Z: '0', BAD: 'maybe' });
    expect([read.flag('Y'), read.flag('T'), read.flag('O')]).toEqual([true, true, true]);
    expect([read.flag('N', true), read.flag('Z', true)]).toEqual([false, false]);
    expect(read.flag('UNSET')).toBe(false);
    expect(read.flag('UNSET', true)).toBe(true);
    expect(() => read.flag('BAD')).toThrow(/^BAD: "maybe" is not 1\/true\/yes or 0\/false\/no$/);
  });

  it('resolves paths against the working directory', () => {
    const read = reader({ REL: 'secrets/a', ABS: '/etc/b' }, '/srv');
    expect(read.path('REL')).toBe('/srv/secrets/a');
    expect(read.path('ABS')).toBe('/etc/b');
    expect(read.path('UNSET')).toBeUndefined();
  });

  describe('secret', () => {
    const dir = mkdtempSync(join(tmpdir(), 'volback-env-'));
    writeFileSync(join(dir, 'password'), 'correct horse\n');
    writeFileSync(join(dir, 'empty'), '\n');

    it('comes from the variable as given, or from the file <name>_FILE names, less one newline', () => {
      expect(reader({ PW: ' spaced ' }).secret('PW')).toBe(' spaced ');
      expect(reader({ PW_FILE: 'password' }, dir).secret('PW')).toBe('correct horse');
      expect(reader({}).secret('PW')).toBeUndefined();
    });

    it('refuses both at once, an unreadable file and an empty one, without the secret in the message', () => {
      const both = () => reader({ PW: 'hunter2', PW_FILE: 'password' }, dir).secret('PW');
      expect(both).toThrow(/^PW_FILE: set either PW or PW_FILE, not both$/);
      expect(() => reader({ PW_FILE: 'missing' }, dir).secret('PW')).toThrow(
        /^PW_FILE: cannot read missing: ENOENT$/,
      );
      expect(() => reader({ PW_FILE: 'empty' }, dir).secret('PW')).toThrow(/^PW_FILE: empty is empty$/);
    });
  });

  describe('nats', () => {
    it('defaults to the local NATS without an identity', () => {
      expect(reader({}).nats()).toEqual({ natsServers: [DEFAULT_NATS_URL], natsAuth: {} });
    });

    it('reads several URLs and the identity files, resolved against the working directory', () => {
      const settings = reader(
        {
          VOLBACK_NATS_URL: 'tls://a:4222, nats://b:4222,',
          VOLBACK_NATS_NKEY_FILE: 'nats/gateway.nk',
          VOLBACK_NATS_CA_FILE: '/etc/volback/ca.pem',
        },
        '/srv',
      ).nats();
      expect(settings).toEqual({
        natsServers: ['tls://a:4222', 'nats://b:4222'],
        natsAuth: { nkeyFile: '/srv/nats/gateway.nk', caFile: '/etc/volback/ca.pem' },
      });
      expect(reader({ VOLBACK_NATS_CREDS: 'user.creds' }, '/srv').nats().natsAuth).toEqual({
        credsFile: '/srv/user.creds',
      });
    });

    it('names VOLBACK_NATS_URL when one is not a NATS URL', () => {
      expect(() => reader({ VOLBACK_NATS_URL: 'nats://a:4222,localhost:4222' }).nats()).toThrow(
        /^VOLBACK_NATS_URL: "localhost:4222" is not a nats:\/\/host:port URL$/,
      );
    });
  });
});
