import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

/**
 * A child process that allocates 200 MiB of 96 KiB buffers, frees nine in ten (the tenth keeps
 * the freed ones apart, as live buffers do in a service), collects, and prints its RSS in MiB:
 * with `setting`, after {@link returnFreedBuffers}.
 */
function residentAfterFreeing(setting: boolean): number {
  const script = `
    import { returnFreedBuffers } from ${JSON.stringify(new URL('./memory.ts', import.meta.url).pathname)};
    if (${setting} && !returnFreedBuffers()) throw new Error('the allocator did not take the setting');
    let buffers = Array.from({ length: 2133 }, () => Buffer.alloc(96 * 1024, 1));
    buffers = buffers.filter((_, i) => i % 10 === 0);
    for (let i = 0; i < 3; i++) globalThis.gc();
    await new Promise((resolve) => setTimeout(resolve, 200));
    for (let i = 0; i < 3; i++) globalThis.gc();
    console.log(Math.round(process.memoryUsage().rss / 2 ** 20), buffers.length);`;
  const out = execFileSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], {
    encoding: 'utf8',
  });
  return Number(out.split(' ')[0]);
}

describe('freed buffers', () => {
  it('go back to the kernel once the allocator is set (glibc, the addon built)', () => {
    const without = residentAfterFreeing(false);
    const withSetting = residentAfterFreeing(true);
    // About 200 MiB of freed buffers stay resident without the setting; a tenth of them is alive.
    expect(without - withSetting).toBeGreaterThan(120);
  });
});
