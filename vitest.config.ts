import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['{libs,services,infra,tools}/*/src/**/*.test.ts'],
    // Starts the real servers (NATS, MinIO, a private Docker Engine) once per run.
    globalSetup: ['libs/testing/src/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    reporters: ['default'],
  },
});
