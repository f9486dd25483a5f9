import { describe, expect, it } from 'vitest';
import { CONTAINERS_JSON_ENV_LABEL, recordedContainer } from './container-record.ts';

function inspect(labels: Record<string, string> = {}) {
  return {
    Id: 'a'.repeat(64),
    Name: '/shop-db',
    Config: {
      Image: 'postgres:16',
      Env: ['POSTGRES_PASSWORD=hunter2', 'PATH=/usr/bin', 'EMPTY=', 'FLAG'],
      Labels: labels,
      Cmd: ['postgres'],
    },
    HostConfig: { Binds: ['shop-data:/var/lib/postgresql/data'] },
  };
}

describe('what containers.json records of a container', () => {
  it('given no label and the default include, then the inspect is kept whole', () => {
    const whole = inspect();
    expect(recordedContainer(whole, 'include')).toEqual({ record: whole, envExcluded: false });
  });

  it('given the label exclude, then env values are replaced by their names and the rest is kept', () => {
    const { record, envExcluded } = recordedContainer(
      inspect({ [CONTAINERS_JSON_ENV_LABEL]: 'exclude' }),
      'include',
    );
    expect(envExcluded).toBe(true);
    expect(record.Config.Env).toEqual(['POSTGRES_PASSWORD', 'PATH', 'EMPTY', 'FLAG']);
    expect(record).toMatchObject({ Id: 'a'.repeat(64), Config: { Image: 'postgres:16', Cmd: ['postgres'] } });
    expect(JSON.stringify(record)).not.toContain('hunter2');
  });

  it('given the agent default exclude, then a container labelled include keeps its env', () => {
    expect(recordedContainer(inspect(), 'exclude').record.Config.Env).toEqual([
      'POSTGRES_PASSWORD',
      'PATH',
      'EMPTY',
      'FLAG',
    ]);
    const kept = recordedContainer(inspect({ [CONTAINERS_JSON_ENV_LABEL]: ' Include ' }), 'exclude');
    expect(kept.record.Config.Env).toContain('POSTGRES_PASSWORD=hunter2');
  });

  it('given a label value that is neither, then env values are left out and a warning says why', () => {
    const result = recordedContainer(inspect({ [CONTAINERS_JSON_ENV_LABEL]: 'hide' }), 'include');
    expect(result.envExcluded).toBe(true);
    expect(JSON.stringify(result.record)).not.toContain('hunter2');
    expect(result.warning).toContain('"hide"');
  });
});
