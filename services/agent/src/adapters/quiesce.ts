import type Dockerode from 'dockerode';
import type { ConsistencyPlan, ConsistencyStep, ContainerRef } from '../domain/consistency.ts';
import { HookFailedError, QuiesceError } from '../errors.ts';
import { engineMessage, statusOf } from './engine-errors.ts';
import { HookRunner, type HookRun } from './hook-runner.ts';
import { journalFileName, QuiesceJournals, type Journal, type JournalEntry } from './quiesce-journal.ts';

/** Runs volback stopped that are remembered per container, and containers remembered. */
const STOPPED_RUNS_PER_CONTAINER = 8;
const STOPPED_RUNS_CONTAINERS = 1000;

/** A container that could not be resumed, or a post hook that failed. */
export interface ResumeFailure {
  readonly container: string;
  readonly message: string;
  /** An error code (`VOLBACK_HOOK_FAILED` for a post hook) when there is one. */
  readonly code?: string;
}

/** What resuming did. */
export interface ResumeReport {
  /** Containers started or unpaused again (names). */
  readonly resumed: string[];
  /** Containers left for another backup that still holds them stopped or paused. */
  readonly stillHeld: string[];
  /** Containers removed while they were quiesced. */
  readonly gone: string[];
  readonly postHooks: HookRun[];
  readonly errors: ResumeFailure[];
}

/** Containers quiesced for one backup, and the way back. */
export interface Quiesced {
  /** Names of the containers stopped or paused (by this backup, or held by another one). */
  readonly quiesced: string[];
  readonly preHooks: HookRun[];
  /** What was not done and why (a container no longer running, already paused, gone). */
  readonly notes: string[];
  /**
   * Starts and unpauses what was stopped and paused, then runs the post hooks; deletes the
   * journal. Call it on every path (success, failure, timeout); later calls return the first
   * call's report.
   */
  resume(): Promise<ResumeReport>;
}

/** One container a crashed run had quiesced, and what recovery found. */
export interface RecoveredContainer {
  readonly workId: string;
  readonly container: string;
  readonly containerId: string;
  readonly action: 'stop' | 'pause';
  /** `resumed`; `running` (nothing to do); `gone`; `changed` (it ran again since: left alone). */
  readonly outcome: 'resumed' | 'running' | 'gone' | 'changed';
}

/** What {@link Quiescer.recover} found and did. */
export interface RecoveryReport {
  readonly containers: RecoveredContainer[];
  /** Journals that could not be read (renamed `*.corrupt`) or containers that could not be resumed. */
  readonly errors: { readonly file: string; readonly container?: string; readonly message: string }[];
}

/** Options of {@link Quiescer}. */
export interface QuiescerOptions {
  /** The agent's state dir; journals go to `<stateDir>/quiesced/`. */
  readonly stateDir: string;
  /**
   * Whether the engine runs on this machine, so a hook that runs out of time can be killed
   * through `/proc` (default: the engine is reached through a unix socket). Otherwise it is
   * abandoned and may go on running in its container.
   */
  readonly local?: boolean;
}

interface Held {
  readonly action: 'stop' | 'pause';
  readonly name: string;
  readonly holders: Set<string>;
}

interface Session {
  readonly workId: string;
  readonly journal: Journal;
  /** Containers this backup holds (it quiesced them, or joined another backup holding them). */
  readonly held: { readonly id: string; readonly name: string }[];
  /** Hook steps whose pre hooks all succeeded: their post hooks run on resume. */
  readonly hooked: { readonly step: Extract<ConsistencyStep, { kind: 'hooks' }>; readonly id: string }[];
}

/**
 * Keeps volumes consistent during backups: runs pre hooks, stops or pauses the containers of a
 * {@link ConsistencyPlan}, and resumes them. Before it stops or pauses a container it records
 * that in a journal (`<stateDir>/quiesced/<workId>.json`, written aside, synced, renamed), so an
 * agent that crashed meanwhile resumes them at its next start ({@link recover}). A container two
 * backups quiesce at once is resumed when the last of them is done.
 */
export class Quiescer {
  readonly #docker: Dockerode;
  readonly #journals: QuiesceJournals;
  readonly #hooks: HookRunner;
  readonly #held = new Map<string, Held>();
  readonly #active = new Set<string>();
  /** Runs this agent stopped, by container id: their `State.StartedAt` (see {@link stoppedRuns}). */
  readonly #stoppedRuns = new Map<string, Set<string>>();

  constructor(docker: Dockerode, options: QuiescerOptions) {
    this.#docker = docker;
    this.#journals = new QuiesceJournals(options.stateDir);
    this.#hooks = new HookRunner(
      docker,
      options.local ?? Boolean((docker.modem as { socketPath?: unknown }).socketPath),
    );
  }

  /** Whether a backup of this process holds the container stopped or paused now. */
  isHeld(containerId: string): boolean {
    return this.#held.has(containerId);
  }

  /**
   * The runs volback stopped, by container id: the `State.StartedAt` of each run it ended (for a
   * backup or a restore, or found so in a crashed run's journal). Discovery publishes the stop of
   * such a run with `byVolback`. Only the last few runs per container are kept: discovery needs
   * them until its next look.
   */
  stoppedRuns(): ReadonlyMap<string, ReadonlySet<string>> {
    return new Map([...this.#stoppedRuns].map(([id, runs]) => [id, new Set(runs)]));
  }

  #recordStop(containerId: string, startedAt: string): void {
    const runs = this.#stoppedRuns.get(containerId) ?? new Set();
    this.#stoppedRuns.delete(containerId);
    runs.add(startedAt);
    if (runs.size > STOPPED_RUNS_PER_CONTAINER) runs.delete(runs.values().next().value!);
    this.#stoppedRuns.set(containerId, runs);
    if (this.#stoppedRuns.size > STOPPED_RUNS_CONTAINERS) {
      this.#stoppedRuns.delete(this.#stoppedRuns.keys().next().value!);
    }
  }

  #forgetStop(containerId: string, startedAt: string): void {
    this.#stoppedRuns.get(containerId)?.delete(startedAt);
  }

  /**
   * Runs the plan's pre hooks, then stops and pauses its containers (only those running now).
   * A failing pre hook throws {@link HookFailedError} (with its output) and a failing stop or
   * pause {@link QuiesceError}; either way what was done before is undone first (containers
   * resumed, post hooks of the hooks that ran) and nothing else runs.
   */
  async quiesce(workId: string, plan: ConsistencyPlan): Promise<Quiesced> {
    if (this.#active.has(workId)) throw new Error(`work ${workId} is quiesced already`);
    this.#active.add(workId);
    const session: Session = {
      workId,
      journal: { version: 1, workId, containers: [] },
      held: [],
      hooked: [],
    };
    const quiesced: string[] = [];
    const preHooks: HookRun[] = [];
    const notes: string[] = [];
    try {
      // A journal of the same work left by a crash: put its containers back first.
      await this.#recoverFile(journalFileName(workId), { containers: [], errors: [] }, true);
      for (const step of plan.steps) {
        if (step.kind === 'hooks') await this.#runPreHooks(session, step, preHooks, notes);
      }
      for (const step of plan.steps) {
        if (step.kind !== 'hooks') await this.#hold(session, step, quiesced, notes);
      }
    } catch (error) {
      await this.#resume(session);
      throw error;
    }
    let resumed: Promise<ResumeReport> | undefined;
    return {
      quiesced,
      preHooks,
      notes,
      resume: () => (resumed ??= this.#resume(session)),
    };
  }

  async #inspect(ref: ContainerRef): Promise<Dockerode.ContainerInspectInfo | undefined> {
    try {
      return await this.#docker.getContainer(ref.id ?? ref.name).inspect();
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw error;
    }
  }

  async #runPreHooks(
    session: Session,
    step: Extract<ConsistencyStep, { kind: 'hooks' }>,
    runs: HookRun[],
    notes: string[],
  ): Promise<void> {
    const name = step.container.name;
    const info = await this.#inspect(step.container);
    const failure = (why: string) =>
      new HookFailedError({ phase: 'pre', container: name, command: step.pre[0] ?? '', output: '', why });
    if (!info) throw failure('could not run: no such container');
    if (this.#held.has(info.Id)) {
      notes.push(
        `${name}: hooks not run, another backup holds it ${this.#held.get(info.Id)!.action === 'stop' ? 'stopped' : 'paused'}`,
      );
      return;
    }
    if (info.State.Status !== 'running')
      throw failure(`could not run: the container is ${info.State.Status}`);
    for (const command of step.pre)
      runs.push(await this.#hooks.run(info.Id, name, command, step.timeoutSeconds, 'pre'));
    session.hooked.push({ step, id: info.Id });
  }

  async #hold(
    session: Session,
    step: Extract<ConsistencyStep, { kind: 'stop' | 'pause' }>,
    quiesced: string[],
    notes: string[],
  ): Promise<void> {
    const name = step.container.name;
    const info = await this.#inspect(step.container);
    if (!info) {
      notes.push(`${name}: gone`);
      return;
    }
    const held = this.#held.get(info.Id);
    const entry = (action: 'stop' | 'pause'): JournalEntry => ({
      id: info.Id,
      name,
      action,
      startedAt: info.State.StartedAt,
      at: new Date().toISOString(),
    });
    if (held) {
      // Another backup of this process stopped or paused it: hold it too, resume it last.
      held.holders.add(session.workId);
      session.held.push({ id: info.Id, name });
      session.journal.containers.push(entry(held.action));
      await this.#journals.write(session.journal);
      quiesced.push(name);
      return;
    }
    if (info.State.Status !== 'running') {
      notes.push(`${name}: not ${step.kind === 'stop' ? 'stopped' : 'paused'}, it is ${info.State.Status}`);
      return;
    }
    this.#held.set(info.Id, { action: step.kind, name, holders: new Set([session.workId]) });
    session.held.push({ id: info.Id, name });
    session.journal.containers.push(entry(step.kind));
    await this.#journals.write(session.journal);
    const container = this.#docker.getContainer(info.Id);
    // Known before the engine reports the stop, so discovery never sees it unexplained.
    if (step.kind === 'stop') this.#recordStop(info.Id, info.State.StartedAt);
    try {
      if (step.kind === 'stop') await container.stop({ t: step.timeoutSeconds });
      else await container.pause();
    } catch (error) {
      if (step.kind === 'stop') this.#forgetStop(info.Id, info.State.StartedAt);
      if (step.kind === 'stop' && statusOf(error) === 304) {
        // It stopped on its own meanwhile: resuming it will start it, as its journal entry says.
      } else {
        throw new QuiesceError(name, `could not ${step.kind} it: ${engineMessage(error)}`, { cause: error });
      }
    }
    quiesced.push(name);
  }

  async #resume(session: Session): Promise<ResumeReport> {
    const report: ResumeReport = { resumed: [], stillHeld: [], gone: [], postHooks: [], errors: [] };
    const failed: JournalEntry[] = [];
    for (const { id, name } of [...session.held].reverse()) {
      const held = this.#held.get(id);
      if (!held) continue;
      held.holders.delete(session.workId);
      if (held.holders.size > 0) {
        report.stillHeld.push(name);
        continue;
      }
      this.#held.delete(id);
      try {
        const outcome = await this.#resumeContainer(id, held.action);
        if (outcome === 'gone') report.gone.push(name);
        else report.resumed.push(name);
      } catch (error) {
        report.errors.push({
          container: name,
          message: `could not ${held.action === 'stop' ? 'start' : 'unpause'} it: ${engineMessage(error)}`,
        });
        const entry = session.journal.containers.find((c) => c.id === id);
        if (entry) failed.push(entry);
      }
    }
    for (const { step, id } of [...session.hooked].reverse()) {
      for (const command of step.post) {
        try {
          report.postHooks.push(
            await this.#hooks.run(id, step.container.name, command, step.timeoutSeconds, 'post'),
          );
        } catch (error) {
          const hook = error as HookFailedError;
          report.errors.push({ container: step.container.name, message: hook.message, code: hook.code });
          break;
        }
      }
    }
    try {
      // Containers that could not be resumed stay in the journal, for the next start to retry.
      if (failed.length > 0) await this.#journals.write({ ...session.journal, containers: failed });
      else await this.#journals.delete(journalFileName(session.workId));
    } catch (error) {
      report.errors.push({ container: '', message: `journal: ${(error as Error).message}` });
    }
    this.#active.delete(session.workId);
    return report;
  }

  /** Starts or unpauses; `gone` when the container was removed. "Already running" is fine. */
  async #resumeContainer(id: string, action: 'stop' | 'pause'): Promise<'resumed' | 'gone'> {
    const container = this.#docker.getContainer(id);
    try {
      if (action === 'stop') await container.start();
      else await container.unpause();
    } catch (error) {
      if (statusOf(error) === 404) return 'gone';
      if (action === 'stop' && statusOf(error) === 304) return 'resumed';
      if (action === 'pause' && /is not paused/i.test(engineMessage(error))) return 'resumed';
      throw error;
    }
    return 'resumed';
  }

  /**
   * At agent start: resumes the containers that journals of crashed runs list and that are still
   * stopped or paused since (a container that ran again since, by its `StartedAt`, is left
   * alone), then deletes those journals. A journal that cannot be read is renamed `*.corrupt`.
   */
  async recover(): Promise<RecoveryReport> {
    const report: RecoveryReport = { containers: [], errors: [] };
    for (const file of await this.#journals.files()) await this.#recoverFile(file, report, false);
    return report;
  }

  /** Recovers one journal; one of a work in progress here is left alone unless `own`. */
  async #recoverFile(file: string, report: RecoveryReport, own: boolean): Promise<void> {
    let journal;
    try {
      journal = await this.#journals.read(file);
    } catch (error) {
      report.errors.push({
        file,
        message: `unreadable journal, renamed ${file}.corrupt: ${(error as Error).message}`,
      });
      await this.#journals.setAside(file);
      return;
    }
    if (!journal) return;
    if (!own && this.#active.has(journal.workId)) return;
    const failed: JournalEntry[] = [];
    const seen = new Set<string>();
    for (const entry of journal.containers) {
      if (seen.has(entry.id)) continue;
      seen.add(entry.id);
      const base = {
        workId: journal.workId,
        container: entry.name,
        containerId: entry.id,
        action: entry.action,
      };
      try {
        const info = await this.#inspect({ name: entry.name, id: entry.id });
        let outcome: RecoveredContainer['outcome'];
        if (!info) outcome = 'gone';
        else if (entry.startedAt && info.State.StartedAt !== entry.startedAt) outcome = 'changed';
        else if (entry.action === 'stop' ? info.State.Status === 'exited' : info.State.Status === 'paused') {
          // Still stopped since the run the journal names: the crashed run stopped it.
          if (entry.action === 'stop' && entry.startedAt) this.#recordStop(entry.id, entry.startedAt);
          outcome = (await this.#resumeContainer(entry.id, entry.action)) === 'gone' ? 'gone' : 'resumed';
        } else outcome = 'running';
        report.containers.push({ ...base, outcome });
      } catch (error) {
        failed.push(entry);
        report.errors.push({ file, container: entry.name, message: engineMessage(error) });
      }
    }
    if (failed.length > 0) await this.#journals.write({ ...journal, containers: failed });
    else await this.#journals.delete(file);
  }
}
