/** Two tiers, as separate projects: `unit` needs no root and no native build;
 *  `integration` runs as root against real namespaces, paddock-init and nanomsg. */
const tsJest = ['ts-jest', { tsconfig: 'tsconfig.json', isolatedModules: true, diagnostics: false }];
// @statelyai/inspect is ES modules only: jest gets it as CommonJS (test/helpers/esm-transform.js).
const esm = {
  transform: { '^.+\\.ts$': tsJest, '^.+\\.mjs$': '<rootDir>/test/helpers/esm-transform.js' },
  transformIgnorePatterns: ['/node_modules/(?!@statelyai/inspect/)'],
  moduleFileExtensions: ['ts', 'js', 'mjs', 'json', 'node'],
};
module.exports = {
  // Integration tests launch real sandboxes; each test still bounds its own waits.
  testTimeout: 60000,
  // Under PADDOCK_CI=1 a skipped or todo test fails the run (issue 19, decision 0033).
  reporters: ['default', '<rootDir>/test/helpers/no-skips-reporter.js'],
  projects: [
    {
      displayName: 'unit',
      testMatch: ['<rootDir>/test/unit/**/*.test.ts'],
      ...esm,
      testEnvironment: '<rootDir>/test/helpers/child-guard-environment.js',
    },
    {
      displayName: 'integration',
      testMatch: ['<rootDir>/test/integration/**/*.int.test.ts'],
      ...esm,
      testEnvironment: '<rootDir>/test/helpers/child-guard-environment.js',
      globalSetup: '<rootDir>/test/helpers/global-setup.ts',
      globalTeardown: '<rootDir>/test/helpers/global-teardown.ts',
    },
  ],
};
