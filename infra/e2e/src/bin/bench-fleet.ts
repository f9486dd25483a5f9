// `npm run bench:fleet [-- --hosts 100 --volumes 50 --max-seconds 900] [-- --cron '*/2 * * * *' --period-seconds 120 --slots 2] [-- --json]`: the
// scheduler at fleet scale. Simulated agents (src/fleet/simulated-agent.ts) announce their hosts and
// volumes, beat, and answer every backup with a real snapshot through the real gateway; the real
// scheduler and catalog run as processes. Prints how late each slot's command went out (p50, p99,
// max), whether the per-host and global limits held, and the catalog's projection rate. Exits 1
// when a slot was missed or sent later than --bound seconds, or a limit was broken.
import { parseArgs } from 'node:util';
import { runFleet } from '../fleet/fleet-run.ts';

const { values } = parseArgs({
  options: {
    hosts: { type: 'string', default: '100' },
    volumes: { type: 'string', default: '50' },
    cron: { type: 'string' },
    'period-seconds': { type: 'string', default: '120' },
    slots: { type: 'string', default: '1' },
    'max-concurrent': { type: 'string', default: '100' },
    'max-per-host': { type: 'string', default: '1' },
    bound: { type: 'string', default: '60' },
    'max-seconds': { type: 'string', default: '900' },
    'cpu-prof-dir': { type: 'string' },
    keep: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});

const count = (name: keyof typeof values): number => {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n < 1)
    throw new Error(`--${name}: not a positive integer: ${String(values[name])}`);
  return n;
};

// Without --cron: one daily slot two minutes from now (after the agents announced everything), so
// a slot of the whole fleet is measured however long it takes, without waiting for the next.
const daily = new Date(Math.ceil((Date.now() + 120_000) / 60_000) * 60_000);
const options = {
  hosts: count('hosts'),
  volumesPerHost: count('volumes'),
  cron: values.cron ?? `0 ${daily.getUTCMinutes()} ${daily.getUTCHours()} * * *`,
  periodMs: values.cron ? count('period-seconds') * 1000 : 86_400_000,
  ...(values.cron ? {} : { firstSlotAt: daily.getTime() }),
  slots: values.cron ? count('slots') : 1,
  maxConcurrent: count('max-concurrent'),
  maxConcurrentPerHost: count('max-per-host'),
};
const boundMs = count('bound') * 1000;
const report = await runFleet({
  ...options,
  ...(values['cpu-prof-dir']
    ? { schedulerNodeOptions: `--cpu-prof --cpu-prof-dir=${values['cpu-prof-dir']}` }
    : {}),
  maxSeconds: count('max-seconds'),
  keep: values.keep,
  progress: (line) => console.error(line),
});
const { dir, ...figures } = report;
const verdict = {
  slotsWithinBound:
    report.slotsMissed === 0 && report.slotsWithoutCommand === 0 && report.commandDelay.max <= boundMs,
  perHostLimitHeld: report.maxRunningPerHost <= options.maxConcurrentPerHost,
  globalLimitHeld: report.maxRunningInAll <= options.maxConcurrent,
};
if (values.json) console.log(JSON.stringify({ bench: 'fleet', ...options, ...figures, ...verdict }));
else {
  const d = report.commandDelay;
  console.log(
    [
      `fleet: ${report.hosts} hosts x ${options.volumesPerHost} volumes, cron '${options.cron}', limits ${options.maxConcurrent} in all / ${options.maxConcurrentPerHost} per host`,
      `slots: expected ${report.slotsExpected}, sent ${d.count}, not requested by the end ${report.slotsMissed}, without command ${report.slotsWithoutCommand}, completed ${report.slotsCompleted}`,
      `command delay after the slot: p50 ${(d.p50 / 1000).toFixed(1)} s, p99 ${(d.p99 / 1000).toFixed(1)} s, max ${(d.max / 1000).toFixed(1)} s (bound ${boundMs / 1000} s)`,
      `the scheduler's reaction (from the slot or the outcome that made room): p50 ${(report.reactionDelay.p50 / 1000).toFixed(2)} s, p99 ${(report.reactionDelay.p99 / 1000).toFixed(2)} s, max ${(report.reactionDelay.max / 1000).toFixed(2)} s; a simulated backup: p50 ${(report.backupDuration.p50 / 1000).toFixed(2)} s, p99 ${(report.backupDuration.p99 / 1000).toFixed(2)} s`,
      `running at once: max ${report.maxRunningPerHost} per host, ${report.maxRunningInAll} in all; backups completed ${report.backupsCompleted}, failed ${report.backupsFailed}`,
      `catalog: ${report.catalogEventsPerSecond.toFixed(0)} events/s applied over ${report.seconds.toFixed(0)} s, max lag ${report.catalogMaxLag} events; ${report.events} events seen`,
      `verdict: ${JSON.stringify(verdict)}${values.keep ? `; kept ${dir}` : ''}`,
    ].join('\n'),
  );
}
process.exitCode = Object.values(verdict).every(Boolean) ? 0 : 1;
