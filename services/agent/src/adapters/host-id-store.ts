import { randomBytes, randomUUID } from 'node:crypto';
import { link, mkdir, open, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { hostId as hostIdSchema } from '@volback/contracts';
import { HostIdError } from '../errors.ts';

/** Name of the file in the state dir that holds the host id. */
export const HOST_ID_FILE = 'host-id';

/** The host id and whether this start created it. */
export interface PersistedHostId {
  readonly hostId: string;
  readonly created: boolean;
  readonly file: string;
}

async function readHostId(file: string): Promise<string | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new HostIdError(file, `cannot read the host id: ${(error as Error).message}`, { cause: error });
  }
  const id = text.trim();
  const parsed = hostIdSchema.safeParse(id);
  if (!parsed.success) {
    // Never replace it silently: a new id would make this host a stranger to everything recorded.
    throw new HostIdError(
      file,
      `does not hold a valid host id (${parsed.error.issues[0]?.message}); fix or remove it`,
    );
  }
  return id;
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * The host's stable id: read from `<stateDir>/host-id`, or created once (a random UUID). The file
 * appears whole or not at all (written aside, synced, then hard-linked into place, which never
 * replaces an existing file: of two agents starting at once on one state dir, both get the id of
 * the first). Mode 0600 in a 0700 directory.
 */
export async function loadOrCreateHostId(
  stateDir: string,
  generate: () => string = randomUUID,
): Promise<PersistedHostId> {
  const file = join(stateDir, HOST_ID_FILE);
  const existing = await readHostId(file);
  if (existing) return { hostId: existing, created: false, file };

  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const id = generate();
  hostIdSchema.parse(id);
  const temp = join(stateDir, `.${HOST_ID_FILE}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const handle = await open(temp, 'wx', 0o600);
  try {
    await handle.writeFile(`${id}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await link(temp, file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    const winner = await readHostId(file);
    if (winner) return { hostId: winner, created: false, file };
    throw error;
  } finally {
    await unlink(temp).catch(() => undefined);
  }
  await syncDir(stateDir);
  return { hostId: id, created: true, file };
}

/**
 * The host id of an agent identity (`volback init agent` wrote `{hostId, name}` into `file`),
 * kept in the state dir like a generated one. A state dir that already holds another id is
 * refused: this identity may only speak for its own host, and the state belongs to another.
 */
export async function loadHostIdFromIdentity(stateDir: string, file: string): Promise<PersistedHostId> {
  let given: unknown;
  try {
    given = (JSON.parse(await readFile(file, 'utf8')) as { hostId?: unknown }).hostId;
  } catch (error) {
    throw new HostIdError(file, `cannot read the agent identity file: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const parsed = hostIdSchema.safeParse(given);
  if (!parsed.success) {
    throw new HostIdError(file, `holds no valid hostId (${parsed.error.issues[0]?.message})`);
  }
  const persisted = await loadOrCreateHostId(stateDir, () => parsed.data);
  if (persisted.hostId !== parsed.data) {
    throw new HostIdError(
      persisted.file,
      `holds host id ${persisted.hostId}, but the identity ${file} is host ${parsed.data}: use this host's own identity (\`volback init agent <name> --host-id ${persisted.hostId}\`), or another state dir`,
    );
  }
  return persisted;
}
