import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * This replica's id, kept in the data directory so a restart resumes the same durable consumer;
 * replicas with their own data directories get their own ids (and consumers).
 */
export async function loadOrCreateInstanceId(dataDir: string): Promise<string> {
  const file = join(dataDir, 'catalog-id');
  try {
    const id = (await readFile(file, 'utf8')).trim();
    if (/^[A-Za-z0-9_-]{1,64}$/.test(id)) return id;
    throw new Error(`${file} does not hold a catalog id; remove it to get a new one`);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const id = randomBytes(6).toString('hex');
  await writeFile(file, `${id}\n`, { mode: 0o600, flag: 'wx' }).catch(
    async (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error;
    },
  );
  return (await readFile(file, 'utf8')).trim();
}
