import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type Dockerode from 'dockerode';
import { CONTAINER_STATES, type ContainerState, type ObservedVolume } from '../domain/inventory.ts';
import {
  ArchiveError,
  HelperImageMissingError,
  InvalidArchiveError,
  VolumeExistsError,
  VolumeInUseError,
  VolumeNotFoundError,
} from '../errors.ts';
import { toObservedVolume } from './docker-engine.ts';
import { engineMessage, statusOf } from './engine-errors.ts';
import { rebaseTar } from './tar-rebase.ts';

/** A volume as the engine reports it (`mountpoint` absent when its driver has none). */
export type VolumeInfo = ObservedVolume;

/** Labels on every helper container, so a crashed agent's helpers can be found and removed. */
export const HELPER_LABELS = {
  /** `1` on every helper. */
  helper: 'io.volback.helper',
  /** The host id of the agent that created it. */
  host: 'io.volback.host',
  /** The volume it mounts. */
  volume: 'io.volback.volume',
  /** `export` (read-only mount) or `import` (read-write). */
  purpose: 'io.volback.purpose',
} as const;

/** Where a helper mounts the volume. */
export const HELPER_MOUNT_POINT = '/volume';

/** A container that mounts a volume. */
export interface VolumeUser {
  readonly id: string;
  /** Without Docker's leading `/`. */
  readonly name: string;
  readonly state: ContainerState;
  readonly labels: Readonly<Record<string, string>>;
  /**
   * The engine's whole inspect answer. It holds the container's environment: never put it (or
   * anything taken from it besides names, labels and state) into an event or a log line.
   */
  readonly inspect: Dockerode.ContainerInspectInfo;
}

/** A volume being read as a tar stream through a helper container. */
export interface ArchiveExport {
  /**
   * The volume's content as a tar (GNU/PAX as the engine writes it): names start with `./`, the
   * first entry `./` carries the volume root's metadata, directories end with `/`, hard links
   * point at `./…` names. README, "Reading and writing volumes through the engine".
   */
  readonly stream: Readable;
  /** Ends the stream and removes the helper container; safe to call more than once. */
  close(): Promise<void>;
}

/** What a new volume is made of. */
export interface VolumeSpec {
  readonly name: string;
  /** `local` unless given. */
  readonly driver?: string;
  readonly driverOptions?: Readonly<Record<string, string>>;
  readonly labels?: Readonly<Record<string, string>>;
}

/** Options of {@link VolumeAccess}. */
export interface VolumeAccessOptions {
  /** Image of the helper containers; never started, it must only be on the engine. */
  readonly helperImage: string;
  /** This agent's host id, written on its helpers. */
  readonly hostId: string;
  /**
   * Whether the engine's volumes are on this machine's file system (default: the engine is
   * reached through a unix socket). A remote engine's mountpoint is never read directly, even if
   * the same path exists here.
   */
  readonly local?: boolean;
}

function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new DOMException('aborted', 'AbortError');
}

/**
 * Reading and writing Docker volumes: inspecting them and their users, reading them in place
 * when this process can, or as a tar through the engine's archive API from a helper container
 * that is created but never started (works for remote engines and any volume driver), creating
 * and removing volumes.
 */
export class VolumeAccess {
  readonly #docker: Dockerode;
  readonly #helperImage: string;
  readonly #hostId: string;
  readonly #local: boolean;

  constructor(docker: Dockerode, options: VolumeAccessOptions) {
    this.#docker = docker;
    this.#helperImage = options.helperImage;
    this.#hostId = options.hostId;
    this.#local = options.local ?? Boolean((docker.modem as { socketPath?: unknown }).socketPath);
  }

  /** The volume, or {@link VolumeNotFoundError}. */
  async inspectVolume(name: string): Promise<VolumeInfo> {
    try {
      return toObservedVolume(await this.#docker.getVolume(name).inspect());
    } catch (error) {
      if (statusOf(error) === 404) throw new VolumeNotFoundError(name, { cause: error });
      throw error;
    }
  }

  /** Containers in any state that mount the volume (helpers excluded), sorted by name. */
  async containersUsing(volumeName: string): Promise<VolumeUser[]> {
    const listed = await this.#docker.listContainers({ all: true, filters: { volume: [volumeName] } });
    const users: VolumeUser[] = [];
    for (const summary of listed) {
      if (summary.Labels?.[HELPER_LABELS.helper]) continue;
      let inspect: Dockerode.ContainerInspectInfo;
      try {
        inspect = await this.#docker.getContainer(summary.Id).inspect();
      } catch (error) {
        if (statusOf(error) === 404) continue; // removed since it was listed
        throw error;
      }
      // The engine's filter also matches a mount destination of that name; keep volume mounts only.
      if (!inspect.Mounts.some((m) => m.Type === 'volume' && m.Name === volumeName)) continue;
      const status = inspect.State.Status as ContainerState;
      users.push({
        id: inspect.Id,
        name: inspect.Name.replace(/^\//, ''),
        state: CONTAINER_STATES.includes(status) ? status : inspect.State.Running ? 'running' : 'exited',
        labels: inspect.Config.Labels ?? {},
        inspect,
      });
    }
    return users.sort((a, b) => a.name.localeCompare(b.name));
  }

  /**
   * The volume's mountpoint when this process can read the volume there: a local engine, the
   * `local` driver without mount options (a volume with `type`/`device`/`o` is only mounted while a
   * container uses it, so its directory may be empty), and the mountpoint a readable directory.
   * Otherwise undefined: read it with {@link exportArchive}.
   */
  async directPath(volume: VolumeInfo): Promise<string | undefined> {
    if (!this.#local || !volume.mountpoint || volume.driver !== 'local') return undefined;
    if (Object.keys(volume.driverOptions).length > 0) return undefined;
    try {
      if (!(await stat(volume.mountpoint)).isDirectory()) return undefined;
      await access(volume.mountpoint, constants.R_OK | constants.X_OK);
    } catch {
      return undefined;
    }
    return volume.mountpoint;
  }

  async #createHelper(volumeName: string, purpose: 'export' | 'import'): Promise<Dockerode.Container> {
    try {
      return await this.#docker.createContainer({
        name: `volback-helper-${randomBytes(6).toString('hex')}`,
        Image: this.#helperImage,
        // Never run; a command that cannot exist makes an accidental start fail.
        Cmd: ['/volback-helper-is-never-started'],
        Labels: {
          [HELPER_LABELS.helper]: '1',
          [HELPER_LABELS.host]: this.#hostId,
          [HELPER_LABELS.volume]: volumeName,
          [HELPER_LABELS.purpose]: purpose,
        },
        NetworkDisabled: true,
        HostConfig: {
          NetworkMode: 'none',
          Mounts: [
            {
              Type: 'volume',
              Source: volumeName,
              Target: HELPER_MOUNT_POINT,
              ReadOnly: purpose === 'export',
              // Never copy the helper image's files into an empty volume.
              VolumeOptions: { NoCopy: true } as Dockerode.MountSettings['VolumeOptions'],
            },
          ],
        },
      });
    } catch (error) {
      if (statusOf(error) === 404 && /image/i.test(engineMessage(error))) {
        throw new HelperImageMissingError(this.#helperImage, { cause: error });
      }
      throw error;
    }
  }

  async #removeHelper(helper: Dockerode.Container): Promise<void> {
    try {
      // Never `v: true`: that could remove the volume the helper mounts, were it anonymous.
      await helper.remove({ force: true, v: false });
    } catch (error) {
      if (statusOf(error) === 404) return;
      if (statusOf(error) !== 409 || !/already in progress/.test(engineMessage(error))) throw error;
      // Another removal of it runs: wait until it is gone.
      for (let attempt = 0; attempt < 100; attempt++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        const gone = await helper.inspect().then(
          () => false,
          (e: unknown) => statusOf(e) === 404,
        );
        if (gone) return;
      }
      throw error;
    }
  }

  /**
   * Reads the volume as a tar stream through a helper container that mounts it read-only. Call
   * `close()` on every path; the helper is also removed when the stream ends or fails, and on
   * abort (which destroys the stream with the signal's reason).
   */
  async exportArchive(volumeName: string, signal?: AbortSignal): Promise<ArchiveExport> {
    signal?.throwIfAborted();
    await this.inspectVolume(volumeName); // the engine would create a missing volume for the helper
    const helper = await this.#createHelper(volumeName, 'export');
    let removal: Promise<void> | undefined;
    const remove = () => (removal ??= this.#removeHelper(helper));
    let stream: Readable;
    try {
      signal?.throwIfAborted();
      stream = (await helper.getArchive({
        path: `${HELPER_MOUNT_POINT}/.`,
        ...(signal ? { abortSignal: signal } : {}),
      })) as Readable;
    } catch (error) {
      await remove();
      if (signal?.aborted) throw abortReason(signal);
      throw new ArchiveError(volumeName, `the engine did not give its archive: ${engineMessage(error)}`, {
        cause: error,
      });
    }
    const onAbort = () => stream.destroy(abortReason(signal!));
    signal?.addEventListener('abort', onAbort, { once: true });
    stream.once('close', () => {
      signal?.removeEventListener('abort', onAbort);
      void remove().catch(() => undefined); // close() reports a failure to remove
    });
    return {
      stream,
      async close() {
        if (!stream.destroyed) stream.destroy();
        try {
          await remove();
        } catch {
          removal = undefined; // retry a removal that failed in the background
          await remove();
        }
      },
    };
  }

  /**
   * Writes a tar stream into the volume through a helper container that mounts it read-write.
   * Entries are moved under the mount point on the way ({@link rebaseTar}), so the archive's
   * root entry (`./` or `.`) sets the volume root's owner, mode and times; entries that could land
   * outside the volume fail the import with {@link InvalidArchiveError}. Existing files are
   * replaced, other files are kept. Entries before a failing one have been written.
   */
  async importArchive(volumeName: string, tar: Readable, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    await this.inspectVolume(volumeName);
    const helper = await this.#createHelper(volumeName, 'import');
    let invalid: InvalidArchiveError | undefined;
    const rebased = Readable.from(
      (async function* () {
        try {
          yield* rebaseTar(tar, HELPER_MOUNT_POINT.slice(1));
        } catch (error) {
          if (error instanceof InvalidArchiveError) invalid = error;
          throw error;
        }
      })(),
      { objectMode: false },
    );
    try {
      // Without copyUIDGID: the engine keeps each entry's uid/gid; with it, it would give every
      // file to the helper's user.
      await helper.putArchive(rebased, { path: '/', ...(signal ? { abortSignal: signal } : {}) });
    } catch (error) {
      if (invalid) throw invalid;
      if (signal?.aborted) throw abortReason(signal);
      throw new ArchiveError(volumeName, `the engine refused the archive: ${engineMessage(error)}`, {
        cause: error,
      });
    } finally {
      rebased.destroy();
      if (!tar.destroyed && !tar.readableEnded) tar.destroy();
      await this.#removeHelper(helper);
    }
  }

  /** Whether a volume of that name exists. */
  async volumeExists(name: string): Promise<boolean> {
    return this.inspectVolume(name).then(
      () => true,
      (error: unknown) => {
        if (error instanceof VolumeNotFoundError) return false;
        throw error;
      },
    );
  }

  /** Creates a volume; {@link VolumeExistsError} if the name is taken (nothing is changed then). */
  async createVolume(spec: VolumeSpec): Promise<VolumeInfo> {
    if (await this.volumeExists(spec.name)) throw new VolumeExistsError(spec.name);
    const driver = spec.driver ?? 'local';
    const labels = { ...spec.labels };
    const driverOptions = { ...spec.driverOptions };
    // The engine answers a create of an existing name with that volume: one made in between
    // shows itself by what it holds.
    const volume = await this.#docker.createVolume({
      Name: spec.name,
      Driver: driver,
      DriverOpts: driverOptions,
      Labels: labels,
    });
    const created = toObservedVolume(await volume.inspect());
    const same = (a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>) =>
      JSON.stringify(Object.entries(a).sort()) === JSON.stringify(Object.entries(b).sort());
    if (
      created.driver !== driver ||
      !same(created.labels, labels) ||
      !same(created.driverOptions, driverOptions)
    ) {
      throw new VolumeExistsError(spec.name);
    }
    return created;
  }

  /** Removes a volume: {@link VolumeNotFoundError}, or {@link VolumeInUseError} while a container uses it. */
  async removeVolume(name: string): Promise<void> {
    try {
      await this.#docker.getVolume(name).remove();
    } catch (error) {
      if (statusOf(error) === 404) throw new VolumeNotFoundError(name, { cause: error });
      if (statusOf(error) === 409) throw new VolumeInUseError(name, engineMessage(error), { cause: error });
      throw error;
    }
  }

  /** Removes the helper containers of this host (left by a crash); returns their names. */
  async removeLeftoverHelpers(): Promise<string[]> {
    const helpers = await this.#docker.listContainers({
      all: true,
      filters: { label: [`${HELPER_LABELS.helper}=1`, `${HELPER_LABELS.host}=${this.#hostId}`] },
    });
    const removed: string[] = [];
    for (const helper of helpers) {
      await this.#removeHelper(this.#docker.getContainer(helper.Id));
      removed.push(helper.Names[0]?.replace(/^\//, '') ?? helper.Id);
    }
    return removed;
  }
}
