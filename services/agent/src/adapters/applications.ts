import type Dockerode from 'dockerode';
import type { ContainerState } from '../domain/inventory.ts';
import type { SetContainer } from '../domain/backup-set.ts';
import { isBuiltInNetworkMode, type RecreationPlan } from '../domain/container-recreation.ts';
import { statusOf } from './engine-errors.ts';
import { HookRunner } from './hook-runner.ts';
import { HELPER_LABELS } from './volume-access.ts';

/** A container as a set sees it. */
export type SetCandidate = SetContainer & { readonly id: string; readonly state: ContainerState };

/**
 * The engine as applications need it: every container and volume with their labels (to find a
 * backup set's members), and creating containers again from their recorded configuration.
 */
export class ApplicationEngine {
  readonly #docker: Dockerode;
  readonly #hooks: HookRunner;

  /** `local`: the engine runs on this machine (a command that runs out of time can be killed). */
  constructor(docker: Dockerode, local = false) {
    this.#docker = docker;
    this.#hooks = new HookRunner(docker, local);
  }

  /** Every container (helpers excluded) with the named volumes it mounts, and every volume. */
  async inventory(): Promise<{
    containers: SetCandidate[];
    volumes: { name: string; labels: Record<string, string> }[];
  }> {
    const listed = await this.#docker.listContainers({ all: true });
    const containers: SetCandidate[] = [];
    for (const summary of listed) {
      if (summary.Labels?.[HELPER_LABELS.helper]) continue;
      containers.push({
        id: summary.Id,
        name: (summary.Names[0] ?? summary.Id).replace(/^\//, ''),
        state: summary.State as ContainerState,
        labels: summary.Labels ?? {},
        volumes: (summary.Mounts ?? []).flatMap((m) => (m.Type === 'volume' && m.Name ? [m.Name] : [])),
      });
    }
    const { Volumes } = await this.#docker.listVolumes();
    const volumes = (Volumes ?? []).map((v) => ({ name: v.Name, labels: { ...(v.Labels ?? {}) } }));
    return { containers, volumes };
  }

  async imageExists(image: string): Promise<boolean> {
    return this.#exists(() => this.#docker.getImage(image).inspect());
  }

  async networkExists(name: string): Promise<boolean> {
    return isBuiltInNetworkMode(name) || this.#exists(() => this.#docker.getNetwork(name).inspect());
  }

  async containerExists(name: string): Promise<boolean> {
    return this.#exists(() => this.#docker.getContainer(name).inspect());
  }

  async #exists(inspect: () => Promise<unknown>): Promise<boolean> {
    try {
      await inspect();
      return true;
    } catch (error) {
      if (statusOf(error) === 404) return false;
      throw error;
    }
  }

  /**
   * Creates the planned container on its network mode (`none` when that network is missing),
   * then connects it to its other networks that exist. Returns its id.
   */
  async create(plan: RecreationPlan, present: ReadonlySet<string>): Promise<string> {
    const mode = plan.create.HostConfig.NetworkMode ?? 'default';
    const body = {
      ...plan.create,
      HostConfig: { ...plan.create.HostConfig, NetworkMode: present.has(mode) ? mode : 'none' },
    };
    const container = await this.#docker.createContainer(body as Dockerode.ContainerCreateOptions);
    if (!isBuiltInNetworkMode(body.HostConfig.NetworkMode)) {
      for (const network of plan.networks.slice(1)) {
        if (present.has(network) && !isBuiltInNetworkMode(network)) {
          await this.#docker.getNetwork(network).connect({ Container: container.id });
        }
      }
    }
    return container.id;
  }

  async start(id: string): Promise<void> {
    await this.#docker.getContainer(id).start();
  }

  /** Removes a container, running or not, and its anonymous volumes; a missing one is no error. */
  async remove(id: string): Promise<void> {
    try {
      await this.#docker.getContainer(id).remove({ force: true, v: true });
    } catch (error) {
      if (statusOf(error) !== 404) throw error;
    }
  }

  /**
   * Waits until the container runs and, when its image has a HEALTHCHECK, reports healthy.
   * Resolves to undefined when it does, else to why not (exited, unhealthy, out of time).
   */
  async waitHealthy(id: string, timeoutMs: number): Promise<string | undefined> {
    const deadline = Date.now() + timeoutMs;
    let last = 'did not start';
    for (;;) {
      const { State } = await this.#docker.getContainer(id).inspect();
      const health = State.Health?.Status;
      if (!State.Running) return `is not running (status ${State.Status}, exit code ${State.ExitCode})`;
      if (health === undefined || health === 'healthy') return undefined;
      if (health === 'unhealthy') return 'its HEALTHCHECK reports unhealthy';
      last = `its HEALTHCHECK still reports ${health}`;
      if (Date.now() >= deadline) return `${last} after ${Math.round(timeoutMs / 1000)} s`;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }

  /** Runs `sh -c command` in the container within the time; throws unless it exits 0 (its output's end is kept). */
  async check(id: string, name: string, command: string, timeoutSeconds: number): Promise<void> {
    await this.#hooks.run(id, name, command, timeoutSeconds, 'post');
  }
}
