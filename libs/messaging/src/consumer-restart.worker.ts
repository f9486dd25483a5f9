// A consumer process for the restart tests: records each handled event in a file, with the
// stream sequence as its checkpoint, the way a projection commits its checkpoint with its rows.
// Usage: node consumer-restart.worker.ts <natsUrl> <durable> <outFile> <handlerDelayMs>
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { eventSubjectFilter, STREAMS } from '@volback/contracts';
import { connectNats, drainNats, MessagePublisher, startDurableConsumer } from './index.ts';

const [natsUrl, durable, outFile, delay] = process.argv.slice(2) as [string, string, string, string];
const lines = existsSync(outFile) ? readFileSync(outFile, 'utf8').trim().split('\n').filter(Boolean) : [];
let checkpoint = lines.length ? Number(lines.at(-1)!.split(' ')[0]) : 0;

const nc = await connectNats({ servers: natsUrl, name: `worker-${durable}`, connectTimeoutMs: 10_000 });
const consumer = await startDurableConsumer({
  nc,
  stream: STREAMS.events.name,
  durable,
  filterSubjects: [eventSubjectFilter('backup')],
  publisher: new MessagePublisher(nc),
  source: 'volback://test/worker',
  strictOrder: true, // the checkpoint below assumes stream order
  ackWaitMs: 2_000, // a killed worker's messages come back quickly
  async handler(message) {
    if (message.streamSequence <= checkpoint) return; // already applied before a crash
    await sleep(Number(delay));
    appendFileSync(outFile, `${message.streamSequence} ${message.envelope.id}\n`, { flush: true });
    checkpoint = message.streamSequence;
  },
});
process.send?.('ready');
process.on('SIGTERM', () => {
  void consumer
    .stop()
    .then(() => drainNats(nc))
    .then(() => process.exit(0));
});
