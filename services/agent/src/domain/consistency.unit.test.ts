import { consistency } from '@volback/contracts';
import { describe, expect, it } from 'vitest';
import { AgentErrorCode, ConsistencyLabelError, HookNotAllowedError } from '../errors.ts';
import {
  CONSISTENCY_DEFAULTS,
  resolveConsistency,
  stopPlan,
  type CommandConsistency,
  type ConsistencyCandidate,
  type HookPermissions,
} from './consistency.ts';

const none: CommandConsistency = { mode: 'none' };
/** No container on the agent's allow-list. */
const permissions: HookPermissions = { volumeName: 'shop-data', allowed: [] };

function container(
  name: string,
  labels: Record<string, string> = {},
  extra: Partial<ConsistencyCandidate> = {},
) {
  return { name, labels, ...extra };
}

function labelError(containers: ConsistencyCandidate[]): ConsistencyLabelError {
  try {
    resolveConsistency(none, containers, permissions);
  } catch (error) {
    if (error instanceof ConsistencyLabelError) return error;
    throw error;
  }
  throw new Error('expected a ConsistencyLabelError');
}

describe('resolveConsistency', () => {
  it('has the defaults of the command schema', () => {
    expect(consistency.parse({ mode: 'stop' })).toMatchObject({
      timeoutSeconds: CONSISTENCY_DEFAULTS.stopTimeoutSeconds,
    });
    expect(consistency.parse({ mode: 'hooks', container: 'db' })).toMatchObject({
      timeoutSeconds: CONSISTENCY_DEFAULTS.hookTimeoutSeconds,
    });
  });

  describe('given a command that leaves the choice to labels', () => {
    it('when no container has labels, then nothing is done', () => {
      expect(resolveConsistency(none, [container('app'), container('worker')], permissions)).toEqual({
        mode: 'none',
        source: 'labels',
        steps: [],
        warnings: [],
      });
    });

    it('when no container uses the volume, then nothing is done', () => {
      expect(resolveConsistency(none, [], permissions)).toMatchObject({ mode: 'none', steps: [] });
    });

    it('when a container asks to be stopped, then it is stopped with its timeout (30 s by default)', () => {
      const plan = resolveConsistency(
        none,
        [
          container(
            'db',
            { 'volback.consistency': 'stop', 'volback.stop.timeout': '120' },
            { id: 'a'.repeat(64) },
          ),
          container('cache', { 'volback.consistency': 'stop' }),
          container('reader'),
        ],
        permissions,
      );
      expect(plan).toEqual({
        mode: 'stop',
        source: 'labels',
        steps: [
          { kind: 'stop', container: { name: 'cache' }, timeoutSeconds: 30 },
          { kind: 'stop', container: { name: 'db', id: 'a'.repeat(64) }, timeoutSeconds: 120 },
        ],
        warnings: [],
      });
    });

    it('when a container asks to be paused, then it is paused', () => {
      expect(
        resolveConsistency(none, [container('app', { 'volback.consistency': ' pause ' })], permissions),
      ).toEqual({
        mode: 'pause',
        source: 'labels',
        steps: [{ kind: 'pause', container: { name: 'app' } }],
        warnings: [],
      });
    });

    it('when a container has hooks, then they run in that container (300 s each by default)', () => {
      const plan = resolveConsistency(
        none,
        [
          container('db', {
            'volback.consistency': 'hooks',
            'volback.hooks.pre': 'pg_dumpall -U postgres > /var/lib/postgresql/data/dump.sql',
            'volback.hooks.post': 'rm /var/lib/postgresql/data/dump.sql',
          }),
        ],
        permissions,
      );
      expect(plan.steps).toEqual([
        {
          kind: 'hooks',
          container: { name: 'db' },
          pre: ['pg_dumpall -U postgres > /var/lib/postgresql/data/dump.sql'],
          post: ['rm /var/lib/postgresql/data/dump.sql'],
          timeoutSeconds: 300,
        },
      ]);
      expect(plan.mode).toBe('hooks');
    });

    it('when only hook labels are set, then they are hooks (a pre hook is not written to be ignored)', () => {
      const plan = resolveConsistency(
        none,
        [container('db', { 'volback.hooks.pre': 'sync', 'volback.hooks.timeout': '5' })],
        permissions,
      );
      expect(plan.steps).toEqual([
        { kind: 'hooks', container: { name: 'db' }, pre: ['sync'], post: [], timeoutSeconds: 5 },
      ]);
    });

    it('when containers ask for different things, then hooks come first, then stops and pauses', () => {
      const plan = resolveConsistency(
        none,
        [
          container('a-web', { 'volback.consistency': 'stop' }),
          container('b-db', { 'volback.hooks.pre': 'flush' }),
          container('c-cache', { 'volback.consistency': 'pause' }),
        ],
        permissions,
      );
      expect(plan.mode).toBe('mixed');
      expect(plan.steps.map((s) => [s.kind, s.container.name])).toEqual([
        ['hooks', 'b-db'],
        ['stop', 'a-web'],
        ['pause', 'c-cache'],
      ]);
    });

    it('when a labelled container is not running, then it is left alone and the plan says so', () => {
      const plan = resolveConsistency(
        none,
        [
          container('old', { 'volback.consistency': 'stop' }, { state: 'exited' }),
          container('frozen', { 'volback.consistency': 'pause' }, { state: 'paused' }),
          container('db', { 'volback.hooks.pre': 'sync' }, { state: 'created' }),
          container('live', { 'volback.consistency': 'stop' }, { state: 'running' }),
        ],
        permissions,
      );
      expect(plan.steps).toEqual([{ kind: 'stop', container: { name: 'live' }, timeoutSeconds: 30 }]);
      expect(plan.warnings).toEqual([
        'db: hooks not run, it is created',
        'frozen: not paused, it is paused',
        'old: not stopped, it is exited',
      ]);
    });

    it('when labels of another mode are set, then they are ignored with a warning', () => {
      const plan = resolveConsistency(
        none,
        [
          container('app', {
            'volback.consistency': 'pause',
            'volback.stop.timeout': '10',
            'volback.hooks.pre': 'sync',
          }),
        ],
        permissions,
      );
      expect(plan.steps).toEqual([{ kind: 'pause', container: { name: 'app' } }]);
      expect(plan.warnings).toEqual([
        'app: volback.stop.timeout, volback.hooks.pre ignored (volback.consistency is pause)',
      ]);
    });

    it('when volback.consistency is none, then hook labels are ignored with a warning', () => {
      const plan = resolveConsistency(
        none,
        [container('app', { 'volback.consistency': 'none', 'volback.hooks.pre': 'sync' })],
        permissions,
      );
      expect(plan).toMatchObject({ mode: 'none', steps: [] });
      expect(plan.warnings).toHaveLength(1);
    });

    it('gives the same plan whatever order the containers come in', () => {
      const containers = [
        container('b', { 'volback.consistency': 'stop' }),
        container('a', { 'volback.consistency': 'stop' }),
      ];
      expect(resolveConsistency(none, containers, permissions)).toEqual(
        resolveConsistency(none, [...containers].reverse(), permissions),
      );
    });
  });

  describe('given a bad label value', () => {
    it.each([
      [{ 'volback.consistency': 'freeze' }, 'volback.consistency', 'expected none, stop, pause or hooks'],
      [{ 'volback.consistency': 'Stop' }, 'volback.consistency', 'expected none, stop, pause or hooks'],
      [
        { 'volback.consistency': 'stop', 'volback.stop.timeout': '0' },
        'volback.stop.timeout',
        'from 1 to 86400',
      ],
      [
        { 'volback.consistency': 'stop', 'volback.stop.timeout': '1.5' },
        'volback.stop.timeout',
        'whole number',
      ],
      [
        { 'volback.consistency': 'stop', 'volback.stop.timeout': '30s' },
        'volback.stop.timeout',
        'whole number',
      ],
      [
        { 'volback.hooks.pre': 'sync', 'volback.hooks.timeout': '86401' },
        'volback.hooks.timeout',
        'from 1 to 86400',
      ],
      [{ 'volback.hooks.pre': '  ' }, 'volback.hooks.pre', 'is empty'],
      [
        { 'volback.consistency': 'hooks' },
        'volback.consistency',
        'neither volback.hooks.pre nor volback.hooks.post',
      ],
    ])('when labels are %o, then the error names the container, %s and why', (labels, label, why) => {
      const error = labelError([container('ok'), container('shop-db-1', labels)]);
      expect(error).toMatchObject({
        code: AgentErrorCode.ConsistencyLabelInvalid,
        container: 'shop-db-1',
        label,
      });
      expect(error.message).toContain('container shop-db-1: label ' + label);
      expect(error.message).toContain(why);
    });

    it('when the container is not running, then its bad value still fails the backup', () => {
      // A typo must not go unnoticed until the day the container runs during a backup.
      expect(
        labelError([
          container(
            'db',
            { 'volback.consistency': 'stop', 'volback.stop.timeout': 'x' },
            { state: 'exited' },
          ),
        ]).label,
      ).toBe('volback.stop.timeout');
    });
  });

  describe('given a command that chooses a mode', () => {
    const users = [
      container('db', { 'volback.consistency': 'freeze' }, { id: 'd'.repeat(64) }),
      container('app', {}, { state: 'running' }),
      container('old', {}, { state: 'exited' }),
    ];

    it('when it says stop, then every running container using the volume is stopped, labels unread', () => {
      expect(resolveConsistency({ mode: 'stop', timeoutSeconds: 5 }, users, permissions)).toEqual({
        mode: 'stop',
        source: 'command',
        steps: [
          { kind: 'stop', container: { name: 'db', id: 'd'.repeat(64) }, timeoutSeconds: 5 },
          { kind: 'stop', container: { name: 'app' }, timeoutSeconds: 5 },
        ],
        warnings: ['old: not stopped, it is exited'],
      });
    });

    it('when it says pause, then every running container is paused', () => {
      expect(resolveConsistency({ mode: 'pause' }, users, permissions).steps).toEqual([
        { kind: 'pause', container: { name: 'db', id: 'd'.repeat(64) } },
        { kind: 'pause', container: { name: 'app' } },
      ]);
    });

    it('when it says hooks for a container that opted in by label, then they run there', () => {
      const optedIn = [
        ...users,
        container('cache', { 'volback.hooks.allow': 'true' }, { id: 'c'.repeat(64) }),
      ];
      expect(
        resolveConsistency(
          { mode: 'hooks', container: 'cache', pre: ['a', 'b'], timeoutSeconds: 60 },
          optedIn,
          permissions,
        ).steps,
      ).toEqual([
        {
          kind: 'hooks',
          container: { name: 'cache', id: 'c'.repeat(64) },
          pre: ['a', 'b'],
          post: [],
          timeoutSeconds: 60,
        },
      ]);
    });

    it('when it says hooks for a container on the agent allow-list (name or id prefix), then they run there', () => {
      const hooks: CommandConsistency = { mode: 'hooks', container: 'db', post: ['c'], timeoutSeconds: 60 };
      for (const allowed of [['db'], ['d'.repeat(12)]]) {
        expect(resolveConsistency(hooks, users, { ...permissions, allowed }).steps).toEqual([
          {
            kind: 'hooks',
            container: { name: 'db', id: 'd'.repeat(64) },
            pre: [],
            post: ['c'],
            timeoutSeconds: 60,
          },
        ]);
      }
    });

    it.each([
      ['a container that did not opt in', 'app', {}, 'has not opted in to hooks sent with a command'],
      ['a container opted out by label', 'app', { 'volback.hooks.allow': 'false' }, 'has not opted in'],
      ['a container that does not mount the volume', 'elsewhere', {}, 'does not mount volume shop-data'],
      ['an id prefix too short to name one container', 'db', { allowed: ['ddd'] }, 'has not opted in'],
    ])(
      'when it says hooks for %s, then it is refused and the reason does not echo the command',
      (_, name, extra, why) => {
        const labels = 'volback.hooks.allow' in extra ? (extra as Record<string, string>) : {};
        const allowed = 'allowed' in extra ? (extra as { allowed: string[] }).allowed : [];
        const candidates = users.map((c) => (c.name === name ? { ...c, labels } : c));
        let refused: unknown;
        try {
          resolveConsistency(
            { mode: 'hooks', container: name, pre: ['cat /etc/shadow'], timeoutSeconds: 60 },
            candidates,
            { ...permissions, allowed },
          );
        } catch (error) {
          refused = error;
        }
        expect(refused).toBeInstanceOf(HookNotAllowedError);
        expect(refused).toMatchObject({ code: AgentErrorCode.HookNotAllowed, container: name });
        expect((refused as Error).message).toContain(why);
        expect((refused as Error).message).not.toContain('shadow');
      },
    );

    it('when a container opted in to hooks with a value that is not a yes or no, then the label is refused', () => {
      expect(() =>
        resolveConsistency(
          { mode: 'hooks', container: 'app', pre: ['x'], timeoutSeconds: 60 },
          [container('app', { 'volback.hooks.allow': 'maybe' })],
          permissions,
        ),
      ).toThrow(ConsistencyLabelError);
    });

    it('when only volback.hooks.allow is set, then labels alone ask for nothing', () => {
      expect(
        resolveConsistency(none, [container('app', { 'volback.hooks.allow': 'true' })], permissions),
      ).toMatchObject({ mode: 'none', steps: [], warnings: [] });
    });
  });
});

describe('stopPlan', () => {
  it('stops the containers given, 30 s by default', () => {
    expect(stopPlan([{ name: 'app', id: 'a'.repeat(64) }])).toEqual({
      mode: 'stop',
      source: 'command',
      steps: [{ kind: 'stop', container: { name: 'app', id: 'a'.repeat(64) }, timeoutSeconds: 30 }],
      warnings: [],
    });
    expect(stopPlan([], 5)).toMatchObject({ mode: 'none', steps: [] });
  });
});
