import { readFileSync } from 'node:fs';

/**
 * Node's command-line flags for a service (`libs/process/service-node-flags`, one line): every
 * launcher puts them before the service's `main.ts` — the {@link Supervisor} of `npm start`, the
 * test stacks, and the image's entry point (`deploy/image/entrypoint.sh`, which reads the same
 * file). They are flags V8 reads only when it sets up its heap; the ones it also takes later are
 * set by the service itself (`@volback/runtime`).
 *
 * `--max-semi-space-size=8`: a young generation of 8 MiB semi-spaces in every thread. Node 24's
 * V8 grows it to 64 MiB semi-spaces (128 MiB of new space, measured) on a machine of this size,
 * which a service that moves blobs fills and sweeps all the time, so each service carried about
 * 100 MiB of it at its peak. End to end, 4 GiB `many-small`, peak RSS MiB without and with
 * (bench/README.md, "Young generation and mmap threshold round"): agent backup 430 → 352–368,
 * restore 461 → 359–378; gateway backup 499 → 408–423, restore 537 → 405–427 (1 GiB: agent
 * restore 429 → 303–322); CPU within the runs' spread.
 */
export function serviceNodeFlags(): string[] {
  const file = new URL('../service-node-flags', import.meta.url);
  return readFileSync(file, 'utf8').split(/\s+/).filter(Boolean);
}

/**
 * The environment a service starts with unless its launcher's own sets the same names
 * (`libs/process/service-env`, `NAME=value` lines), read by the same launchers.
 *
 * `MALLOC_MMAP_THRESHOLD_=4194304`: glibc gives every allocation of 4 MiB or more its own mapping,
 * returned to the kernel when freed. By default the threshold follows the largest block freed (up
 * to 32 MiB), so once a pack-sized block has been freed, blocks as large come from the main heap
 * too, and what they leave between smaller blocks stays with the process: that heap was 228–239
 * MiB at the gateway's peaks of a 4 GiB `many-small` backup and restore, with 58–101 MiB of
 * ArrayBuffers alive. End to end, 4 GiB, peak RSS MiB without and with (bench/README.md, "Young
 * generation and mmap threshold round"): gateway backup 408–423 → 353, 379, restore 405–427 →
 * 362, 389 (its `brk` heap 166–215); the agent's within its spread; CPU and wall time too. A
 * threshold of 1 MiB took the gateway lower still but cost it 6 more system-s in the backup (a
 * fresh mapping faults in every page).
 */
export function serviceEnv(): Record<string, string> {
  const file = new URL('../service-env', import.meta.url);
  const settings: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    const match = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
    if (!match) throw new Error(`${file.pathname}: not a NAME=value line: ${JSON.stringify(line)}`);
    settings[match[1]!] = match[2]!;
  }
  return settings;
}
