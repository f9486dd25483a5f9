import js from '@eslint/js';
import nx from '@nx/eslint-plugin';
import prettier from 'eslint-config-prettier';
import tseslint from 'typescript-eslint';

/** Which project may depend on which: scopes keep services apart, types keep layers apart. */
const depConstraints = [
  { sourceTag: 'scope:shared', onlyDependOnLibsWithTags: ['scope:shared'] },
  { sourceTag: 'scope:agent', onlyDependOnLibsWithTags: ['scope:agent', 'scope:shared'] },
  { sourceTag: 'scope:scheduler', onlyDependOnLibsWithTags: ['scope:scheduler', 'scope:shared'] },
  { sourceTag: 'scope:catalog', onlyDependOnLibsWithTags: ['scope:catalog', 'scope:shared'] },
  { sourceTag: 'scope:gateway', onlyDependOnLibsWithTags: ['scope:gateway', 'scope:shared'] },
  { sourceTag: 'scope:cli', onlyDependOnLibsWithTags: ['scope:cli', 'scope:shared'] },
  {
    sourceTag: 'type:app',
    onlyDependOnLibsWithTags: ['type:domain', 'type:adapter', 'type:contracts', 'type:util', 'type:runtime'],
  },
  {
    sourceTag: 'type:tool',
    onlyDependOnLibsWithTags: ['type:adapter', 'type:contracts', 'type:util', 'type:runtime', 'type:testing'],
  },
  { sourceTag: 'type:domain', onlyDependOnLibsWithTags: ['type:domain', 'type:contracts', 'type:util'] },
  {
    sourceTag: 'type:adapter',
    onlyDependOnLibsWithTags: ['type:adapter', 'type:domain', 'type:contracts', 'type:util'],
  },
  // The process around a service (env, bootstrap, supervision): services, the stack and the harness use it.
  {
    sourceTag: 'type:runtime',
    onlyDependOnLibsWithTags: ['type:runtime', 'type:adapter', 'type:contracts', 'type:util'],
  },
  { sourceTag: 'type:contracts', onlyDependOnLibsWithTags: ['type:contracts'] },
  { sourceTag: 'type:util', onlyDependOnLibsWithTags: ['type:util', 'type:contracts'] },
  {
    sourceTag: 'type:testing',
    onlyDependOnLibsWithTags: ['type:testing', 'type:runtime', 'type:adapter', 'type:contracts', 'type:util'],
  },
];

/** Tests may also use the test harness. */
const testDepConstraints = depConstraints.map((c) =>
  c.sourceTag.startsWith('type:') && c.sourceTag !== 'type:testing'
    ? { ...c, onlyDependOnLibsWithTags: [...c.onlyDependOnLibsWithTags, 'type:testing'] }
    : c,
);

/** Services are processes: nothing imports one, they share only libs/. */
const servicePatterns = {
  group: [
    '@volback/agent',
    '@volback/scheduler',
    '@volback/catalog',
    '@volback/storage-gateway',
    '**/services/**',
  ],
  message: 'Services never import each other (or are imported): share code through libs/.',
};

/** Domain code (pure decisions) never touches I/O: no adapters, no clients, no file system. */
const adapterModules = [
  '@volback/messaging',
  '@volback/observability',
  '@volback/testing',
  '@nats-io/*',
  'dockerode',
  'minio',
  'fastify',
  'pino',
  'node:fs',
  'node:fs/*',
  'node:net',
  'node:child_process',
  '**/adapters/**',
];

/**
 * Libraries whose types the domain may name (a snapshot, a tree node, a blob reference) but whose
 * code does I/O or stands for it: reading and writing a repository is an adapter's job.
 */
const adapterLibraries = ['@volback/repository', '@volback/data-path'];

export default tseslint.config(
  { ignores: ['**/node_modules/**', '**/dist/**', '.volback/**', '.nx/**', 'libs/contracts/schemas/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts', '**/*.mjs'],
    plugins: { '@nx': nx },
    languageOptions: { ecmaVersion: 2024, sourceType: 'module' },
    rules: {
      '@nx/enforce-module-boundaries': [
        'error',
        { enforceBuildableLibDependency: false, allow: [], depConstraints },
      ],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-restricted-imports': ['error', { patterns: [servicePatterns] }],
    },
  },
  {
    // Tests, and the fixtures only tests import, may use the test harness.
    files: ['**/*.test.ts', '**/src/test-support/**/*.ts'],
    rules: {
      '@nx/enforce-module-boundaries': [
        'error',
        { enforceBuildableLibDependency: false, allow: [], depConstraints: testDepConstraints },
      ],
    },
  },
  {
    files: ['**/src/domain/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: {
      'no-restricted-imports': 'off',
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            servicePatterns,
            { group: adapterModules, message: 'Domain code is pure: I/O belongs in adapters and main.ts.' },
            {
              group: adapterLibraries,
              allowTypeImports: true,
              message: 'Domain code may name these types, but their code belongs in adapters (or work/).',
            },
          ],
        },
      ],
    },
  },
  prettier,
);
