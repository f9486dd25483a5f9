import { setIdOf } from '@volback/contracts';
import { describe, expect, it } from 'vitest';
import { ConsistencyLabelError } from '../errors.ts';
import { setConsistencyPlan, setMembers, stopOrder, type SetContainer } from './backup-set.ts';

const permissions = { volumeName: 'shop_db, shop_uploads', allowed: [] };

function service(name: string, labels: Record<string, string> = {}, volumes: string[] = []): SetContainer {
  return {
    name,
    labels: { 'com.docker.compose.project': 'shop', 'com.docker.compose.service': name, ...labels },
    volumes,
    state: 'running',
  };
}

describe('set membership', () => {
  it('given volback.group and a compose project, the group wins; a bad group name is no set', () => {
    expect(setIdOf({ 'com.docker.compose.project': 'shop' })).toBe('compose:shop');
    expect(setIdOf({ 'com.docker.compose.project': 'shop', 'volback.group': 'billing' })).toBe(
      'group:billing',
    );
    expect(setIdOf({ 'volback.group': 'no/slash' })).toBeUndefined();
    expect(setIdOf({})).toBeUndefined();
  });

  it("given containers and volumes, the set holds its containers' volumes and its labelled volumes", () => {
    const members = setMembers(
      'compose:shop',
      [service('db', {}, ['shop_db']), { name: 'other', labels: {}, volumes: ['other_data'] }],
      [
        { name: 'shop_cache', labels: { 'com.docker.compose.project': 'shop' } },
        { name: 'other_data', labels: {} },
      ],
    );
    expect(members.containers.map((c) => c.name)).toEqual(['db']);
    expect(members.volumes).toEqual(['shop_cache', 'shop_db']);
  });
});

describe('stop order', () => {
  it('given web depends on worker and db, and worker on db: web stops first, the database last', () => {
    const order = stopOrder([
      service('db'),
      service('worker', { 'com.docker.compose.depends_on': 'db:service_started:false' }),
      service('web', {
        'com.docker.compose.depends_on': 'db:service_started:false,worker:service_healthy:true',
      }),
    ]);
    expect(order.map((c) => c.name)).toEqual(['web', 'worker', 'db']);
  });

  it('given volback.set.order, it comes before the dependencies; ties go by name', () => {
    const order = stopOrder([service('b'), service('a'), service('db', { 'volback.set.order': '-1' })]);
    expect(order.map((c) => c.name)).toEqual(['db', 'a', 'b']);
  });

  it('given a dependency cycle, every container still gets a place', () => {
    const order = stopOrder([
      service('a', { 'com.docker.compose.depends_on': 'b:service_started:false' }),
      service('b', { 'com.docker.compose.depends_on': 'a:service_started:false' }),
    ]);
    expect(order.map((c) => c.name).sort()).toEqual(['a', 'b']);
  });
});

describe('the set consistency plan', () => {
  it('given each container labelled, hooks first, then stops and pauses in stop order', () => {
    const plan = setConsistencyPlan(
      [
        service('db', { 'volback.consistency': 'stop' }),
        service('web', {
          'com.docker.compose.depends_on': 'db:service_started:false',
          'volback.consistency': 'pause',
        }),
        service('cache', { 'volback.hooks.pre': 'redis-cli save' }),
        service('static'),
      ],
      permissions,
    );
    expect(plan.steps.map((s) => `${s.kind}:${s.container.name}`)).toEqual([
      'hooks:cache',
      'pause:web',
      'stop:db',
    ]);
    expect(plan.mode).toBe('mixed');
  });

  it('given a bad label, it throws naming the container', () => {
    expect(() =>
      setConsistencyPlan([service('db', { 'volback.consistency': 'freeze' })], permissions),
    ).toThrow(ConsistencyLabelError);
  });
});
