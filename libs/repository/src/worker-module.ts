/**
 * A worker thread's module, beside the module that starts it (`from`, its `import.meta.url`): the
 * TypeScript source, or, when that module runs from the command line's bundle (tools/cli/dist,
 * scripts/build-cli.sh), the bundled worker `<name>.js` beside it.
 */
export function workerModule(name: 'chunk-worker' | 'seal-worker', from: string): URL {
  return new URL(from.endsWith('.ts') ? `./${name}.ts` : `./${name}.js`, from);
}

/**
 * `done` (workers terminating), with the process kept alive until it settles. A worker that is
 * terminated no longer keeps the event loop alive, even referenced: a process with nothing else
 * left to do exited before the workers' exit came, its awaited close unsettled (exit code 13,
 * seen when a full repository ended a backup with files still in the chunk workers).
 */
export async function whileAlive<T>(done: Promise<T>): Promise<T> {
  const alive = setInterval(() => undefined, 60_000);
  try {
    return await done;
  } finally {
    clearInterval(alive);
  }
}
