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
 * (bench/README.md, "Young generation round"): agent backup 430 → 352–368, restore 461 → 359–378;
 * gateway backup 499 → 408–423, restore 537 → 405–427 (1 GiB: agent restore 429 → 303–322); CPU
 * within the runs' spread.
 */
export function serviceNodeFlags(): string[] {
  const file = new URL('../service-node-flags', import.meta.url);
  return readFileSync(file, 'utf8').split(/\s+/).filter(Boolean);
}
