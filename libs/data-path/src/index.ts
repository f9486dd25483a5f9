/**
 * The data path between agents and storage gateways (DESIGN.md §2–3): the wire codec both sides
 * use, and the agent's client. This file is the library's only public entry point.
 */
export * from './errors.ts';
export * from './byte-budget.ts';
export * from './codec.ts';
export * from './client.ts';
export * from './gateway-blob-store.ts';
