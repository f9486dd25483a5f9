import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { flagOf, inCliWords } from './api-fields.ts';
import { sinceOf } from './event-commands.ts';
import { createProgressView } from './progress-view.ts';

/** A stderr that keeps what is written to it. */
function captured(): { stream: NodeJS.WriteStream; text: () => string } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (d: Buffer) => (text += d.toString()));
  return { stream: stream as unknown as NodeJS.WriteStream, text: () => text };
}

describe('progress view', () => {
  it('given polls that still say Queued after the agent reports quiescing, when shown as lines, then phases never go back', () => {
    const err = captured();
    let now = 0;
    const view = createProgressView('backing up db', 'lines', undefined, err.stream, () => now);
    view.phase('Queued');
    view.update({ phase: 'quiescing' });
    view.phase('Queued');
    now = 1000;
    view.update({ phase: 'reading', files: 3, bytes: 1024 });
    view.phase('Running');
    view.update({ phase: 'reading', files: 4, bytes: 2048 });
    view.update({ phase: 'committing', bytes: 4096 });
    expect(err.text().split('\n').filter(Boolean)).toEqual([
      'backing up db: queued',
      'backing up db: quiescing',
      'backing up db: reading (1.0 KiB so far)',
      'backing up db: committing (4.0 KiB so far)',
    ]);
  });

  it('given a known total, when shown as JSON lines, then each line has the total, a percentage, a rate and an ETA', () => {
    const err = captured();
    let now = 0;
    const view = createProgressView('restoring into db', 'json', { bytes: 10_000 }, err.stream, () => now);
    view.phase('Queued');
    now = 2000;
    view.update({ phase: 'reading', files: 1, bytes: 2500 });
    const lines = err
      .text()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.at(-1)).toEqual({
      type: 'progress',
      phase: 'reading',
      files: 1,
      bytes: 2500,
      totalBytes: 10_000,
      percent: 25,
      bytesPerSecond: 1250,
      etaSeconds: 6,
    });
  });

  it('given a total in files (a backup reads only changed bytes), then the percentage and ETA count files', () => {
    const err = captured();
    let now = 0;
    const view = createProgressView('backing up db', 'json', { files: 400 }, err.stream, () => now);
    now = 4000;
    view.update({ phase: 'reading', files: 100, bytes: 50 });
    const last = JSON.parse(err.text().trim().split('\n').at(-1)!) as Record<string, unknown>;
    expect(last).toMatchObject({ totalFiles: 400, percent: 25, etaSeconds: 12, bytes: 50 });
    expect(last).not.toHaveProperty('totalBytes');
  });
});

describe("the CLI's words for API fields", () => {
  it('names flags instead of request fields and API values', () => {
    expect(flagOf('body.target.volumeName')).toBe('--to-volume');
    expect(flagOf('body.target.stopContainers')).toBe('--stop-containers');
    expect(flagOf('body.policy.schedule.timezone')).toBe('--timezone');
    expect(flagOf('query.host')).toBe('--host');
    expect(inCliWords('restore into a new name or use existing-volume')).toBe(
      'restore into a new name or use --existing',
    );
  });

  it('reads --since as a duration back from now or as a time', () => {
    const now = new Date('2026-01-02T00:00:00Z');
    expect(sinceOf('2h', now).toISOString()).toBe('2026-01-01T22:00:00.000Z');
    expect(sinceOf('1d', now).toISOString()).toBe('2026-01-01T00:00:00.000Z');
    expect(sinceOf('2025-12-31T12:00:00Z', now).toISOString()).toBe('2025-12-31T12:00:00.000Z');
    expect(() => sinceOf('yesterday', now)).toThrow(/--since/);
  });
});
