/** How a command prints: tables and a progress line for people, JSON for scripts. */
export interface Output {
  readonly json: boolean;
  /** A result: JSON (one line) or text. */
  result(value: unknown, text: () => string): void;
  /** A transient progress line on a terminal's stderr; silent otherwise. */
  progress(line: string): void;
  /** A warning on stderr. */
  warn(message: string): void;
  /** A note on stderr that is not a warning (a list was cut, a stream reconnected). */
  notice(message: string): void;
}

/**
 * Ends the process quietly (exit 0) when stdout's reader goes away (`volback … | head -1`): a
 * closed pipe is the reader's choice, not an error to print a stack trace for.
 */
export function quietOnClosedStdout(stdout: NodeJS.WriteStream = process.stdout): void {
  stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE' || error.code === 'ERR_STREAM_DESTROYED') process.exit(0);
    throw error;
  });
}

/** Writes results to stdout, progress and warnings to stderr. */
export function createOutput(json: boolean, stdout = process.stdout, stderr = process.stderr): Output {
  const tty = Boolean(stderr.isTTY) && !json;
  let last = 0;
  let shown = false;
  return {
    json,
    result(value, text) {
      if (shown) {
        stderr.write('\r\x1b[K');
        shown = false;
      }
      stdout.write(json ? `${JSON.stringify(value)}\n` : `${text()}\n`);
    },
    progress(line) {
      if (!tty) return;
      const now = Date.now();
      if (now - last < 100) return;
      last = now;
      const width = (stderr.columns ?? 80) - 1;
      stderr.write(`\r\x1b[K${line.length > width ? `${line.slice(0, width - 1)}…` : line}`);
      shown = true;
    },
    warn(message) {
      if (shown) {
        stderr.write('\r\x1b[K');
        shown = false;
      }
      stderr.write(`warning: ${message}\n`);
    },
    notice(message) {
      if (shown) {
        stderr.write('\r\x1b[K');
        shown = false;
      }
      stderr.write(`volback: ${message}\n`);
    },
  };
}

/** Left-aligned columns with a header row. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** 1536 → "1.5 KiB". */
export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${n} B` : `${value.toFixed(1)} ${units[unit]}`;
}
