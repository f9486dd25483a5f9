import cliProgress from 'cli-progress';
import { bytes } from './output.ts';

/** What a progress message of the live stream carries (libs/contracts `workProgress`). */
export interface ProgressData {
  phase?: string;
  files?: number;
  bytes?: number;
  bytesAdded?: number;
}

/** How progress is shown: a bar on a terminal, a line per phase otherwise, JSON lines for scripts. */
export type ProgressMode = 'bar' | 'lines' | 'json';

/** Phases in the order work passes through them; a later report of an earlier phase is stale. */
const PHASE_ORDER = ['queued', 'running', 'quiescing', 'reading', 'writing', 'committing'];

/** Shows the progress of one backup or restore. */
export interface ProgressView {
  /** A phase learnt from the work's record (`Queued`, `Running`…). */
  phase(phase: string): void;
  /** A progress message from the live stream. */
  update(progress: ProgressData): void;
  /** Removes the bar (before the result is printed). */
  stop(): void;
}

/** Picks the mode: JSON lines with `--json`, a bar on a terminal, plain lines otherwise. */
export function progressMode(json: boolean, stderr: NodeJS.WriteStream = process.stderr): ProgressMode {
  if (json) return 'json';
  return stderr.isTTY ? 'bar' : 'lines';
}

const duration = (seconds: number) => {
  if (!Number.isFinite(seconds) || seconds < 0) return '-';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
};

/**
 * What the work will go through, when known: bytes, or files. A backup counts every file it
 * visits (unchanged ones too) but reads only changed bytes, so its total is in files (the last
 * snapshot's file count); a restore writes every byte.
 */
export interface ProgressTotal {
  bytes?: number | undefined;
  files?: number | undefined;
}

/**
 * A progress view for `what` (`backing up appdata`). With a total come a percentage and an ETA;
 * without one, the bytes done and the rate.
 */
export function createProgressView(
  what: string,
  mode: ProgressMode,
  totalOf: ProgressTotal | undefined,
  stderr: NodeJS.WriteStream = process.stderr,
  now: () => number = Date.now,
): ProgressView {
  const started = now();
  let current = -1;
  let shownPhase = '';
  let latest: ProgressData = {};
  let lastJson = 0;
  let bar: cliProgress.SingleBar | undefined;
  const unit: 'bytes' | 'files' | undefined =
    (totalOf?.bytes ?? 0) > 0 ? 'bytes' : (totalOf?.files ?? 0) > 0 ? 'files' : undefined;
  const total = unit ? totalOf![unit] : undefined;

  const stats = () => {
    const done = latest.bytes ?? 0;
    const seconds = Math.max((now() - started) / 1000, 0.001);
    const rate = done / seconds;
    const counted = unit === 'files' ? (latest.files ?? 0) : done;
    const percent = total ? Math.min(100, (counted / total) * 100) : undefined;
    const perSecond = counted / seconds;
    const eta = total && perSecond > 0 ? Math.max(0, (total - counted) / perSecond) : undefined;
    return { done, counted, rate, percent, eta };
  };

  const ensureBar = () => {
    if (bar) return bar;
    const columns = stderr.columns ?? 80;
    // Narrow terminals get fewer fields instead of a line cut in the middle (cli-progress's own
    // tokens `total`, `eta` and `value` are numbers: the payload uses other names). Each layout
    // leaves room for its longest text around the bar.
    const layouts: Array<[number, string]> = total
      ? [
          [100 + what.length, '{what} {phase} [{bar}] {percentage}% | {progress} | {rate}/s | ETA {left}'],
          [76, '{phase} [{bar}] {percentage}% | {progress} | {rate}/s | ETA {left}'],
          [36, '{phase} [{bar}] {percentage}% ETA {left}'],
          [0, '{percentage}% ETA {left}'],
        ]
      : [
          [70 + what.length, '{what} {phase} | {done} | {files} files | {rate}/s | {elapsed}'],
          [0, '{phase} {done} {rate}/s'],
        ];
    const [room, format] =
      layouts.find(([need, f]) => columns - 1 >= need + (f.includes('{bar}') ? 10 : 0)) ?? layouts.at(-1)!;
    bar = new cliProgress.SingleBar(
      {
        format,
        stream: stderr,
        hideCursor: true,
        clearOnComplete: true,
        barsize: Math.max(10, Math.min(30, columns - 1 - room)),
        fps: 5,
        linewrap: false,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total ?? 1, 0, payload());
    return bar;
  };

  const payload = () => {
    const s = stats();
    return {
      what,
      phase: shownPhase.padEnd(10),
      done: bytes(s.done),
      progress:
        unit === 'files'
          ? `${latest.files ?? 0} of ${total} files, ${bytes(s.done)}`
          : `${bytes(s.done)} of ${total ? bytes(total) : '?'}`,
      files: latest.files ?? 0,
      rate: bytes(Math.round(s.rate)),
      left: s.eta === undefined ? '-' : duration(s.eta),
      elapsed: duration((now() - started) / 1000),
    };
  };

  const emitJson = (force: boolean) => {
    const t = now();
    if (!force && t - lastJson < 500) return;
    lastJson = t;
    const s = stats();
    stderr.write(
      `${JSON.stringify({
        type: 'progress',
        phase: shownPhase,
        files: latest.files ?? 0,
        bytes: s.done,
        ...(latest.bytesAdded !== undefined ? { bytesAdded: latest.bytesAdded } : {}),
        ...(total
          ? {
              [unit === 'files' ? 'totalFiles' : 'totalBytes']: total,
              percent: Math.round((s.percent ?? 0) * 10) / 10,
            }
          : {}),
        bytesPerSecond: Math.round(s.rate),
        ...(s.eta !== undefined ? { etaSeconds: Math.round(s.eta) } : {}),
      })}\n`,
    );
  };

  /** Moves to `phase` unless it lies behind the one shown; true when it moved. */
  const advance = (phase: string): boolean => {
    const index = PHASE_ORDER.indexOf(phase);
    if (index < 0 || index <= current) return false;
    current = index;
    shownPhase = phase;
    return true;
  };

  const render = (moved: boolean) => {
    if (mode === 'json') emitJson(moved);
    else if (mode === 'lines') {
      if (!moved) return;
      const s = stats();
      stderr.write(
        `${what}: ${shownPhase}${s.done ? ` (${bytes(s.done)} so far${s.percent !== undefined ? `, ${s.percent.toFixed(0)}%` : ''})` : ''}\n`,
      );
    } else ensureBar().update(Math.min(stats().counted, total ?? 1), payload());
  };

  return {
    phase(phase) {
      render(advance(phase.toLowerCase()));
    },
    update(progress) {
      const moved = progress.phase ? advance(progress.phase) : false;
      latest = { ...latest, ...progress };
      render(moved);
    },
    stop() {
      bar?.stop();
      bar = undefined;
    },
  };
}
