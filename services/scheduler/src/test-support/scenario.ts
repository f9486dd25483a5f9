// A scheduler in a test: a state fed with events and a fake clock; what a tick decides is fed back
// into the state, as the projection would read it from the log.
import {
  decideCommand,
  decideConfiguredDefault,
  decideScheduleAnnouncements,
  decideTakeover,
  decideTick,
  DEFAULT_SETTINGS,
  evolve,
  initialState,
  type Decision,
  type LoggedEvent,
  type SchedulerCommand,
  type SchedulerSettings,
  type SchedulerState,
} from '../domain/index.ts';
import { eventsOf } from './events.ts';

/** Settings for tests: the defaults with some overridden. */
export function testSettings(overrides: Partial<SchedulerSettings> = {}): SchedulerSettings {
  return { ...DEFAULT_SETTINGS, ...overrides };
}

export interface Scenario {
  readonly state: SchedulerState;
  readonly settings: SchedulerSettings;
  given(...events: LoggedEvent[]): Scenario;
  /** decideTick at `now`; its events are applied to the state. */
  tick(now: string | number): Decision[];
  /** Ticks every `stepMs` from `from` to `to` (inclusive) and returns every decision. */
  run(from: string | number, to: string | number, stepMs: number): Decision[];
  command(command: SchedulerCommand, now: string | number): Decision[];
  takeover(now: string | number): Decision[];
  /** decideScheduleAnnouncements at `now` (what the leader publishes after a round); applied to the state. */
  announce(now: string | number): Decision[];
}

const ms = (t: string | number) => (typeof t === 'number' ? t : Date.parse(t));

/**
 * A scheduler whose configured default is in the log already (a leader publishes it in its first
 * round), so a test's ticks show only what its own events call for. `publishedDefault: false`
 * starts from an empty log.
 */
export function scenario(
  settings: SchedulerSettings = testSettings(),
  { publishedDefault = true }: { publishedDefault?: boolean } = {},
): Scenario {
  const state = initialState();
  const apply = (decisions: Decision[]) => {
    for (const event of eventsOf(decisions)) evolve(state, event);
    return decisions;
  };
  if (publishedDefault) apply(decideConfiguredDefault(state, 0, settings));
  const self: Scenario = {
    state,
    settings,
    given(...events) {
      for (const event of events) evolve(state, event);
      return self;
    },
    tick: (now) => apply(decideTick(state, ms(now), settings)),
    run(from, to, stepMs) {
      const all: Decision[] = [];
      for (let t = ms(from); t <= ms(to); t += stepMs) all.push(...self.tick(t));
      return all;
    },
    command: (command, now) => apply(decideCommand(command, state, ms(now), settings)),
    takeover: (now) => decideTakeover(state, ms(now), settings),
    announce: (now) => apply(decideScheduleAnnouncements(state, ms(now), settings)),
  };
  return self;
}
