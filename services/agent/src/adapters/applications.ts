import type Dockerode from 'dockerode';
import type { ContainerState } from '../domain/inventory.ts';
import type { SetContainer } from '../domain/backup-set.ts';
import { isBuiltInNetworkMode, type RecreationPlan } from '../domain/container-recreation.ts';
import { statusOf } from './engine-errors.ts';
import { HELPER_LABELS } from './volume-access.ts';

/** A container as a set sees it. */
export type SetCandidate = SetContainer & { readonly id: string; readonly state: ContainerState };

/**
 * The engine as applications need it: every container and volume with their labels (to find a
 * backup set's members), and creating containers again from their recorded configuration.
 */
export class ApplicationEngine {
  readonly #docker: Dockerode;

  constructor(docker: Dockerode) {
    this.#docker = docker;
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
}
