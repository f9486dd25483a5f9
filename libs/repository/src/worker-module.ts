/**
 * A worker thread's module, beside the module that starts it (`from`, its `import.meta.url`): the
 * TypeScript source, or, when that module runs from the command line's bundle (tools/cli/dist,
 * scripts/build-cli.sh), the bundled worker `<name>.js` beside it.
 */
export function workerModule(name: 'chunk-worker' | 'seal-worker', from: string): URL {
  return new URL(from.endsWith('.ts') ? `./${name}.ts` : `./${name}.js`, from);
}
