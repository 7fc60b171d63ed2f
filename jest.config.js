/** Two tiers, as separate projects: `unit` needs no root and no native build;
 *  `integration` runs as root against real namespaces, paddock-init and nanomsg. */
const tsJest = ['ts-jest', { tsconfig: 'tsconfig.json', isolatedModules: true, diagnostics: false }];
module.exports = {
  // Integration tests launch real sandboxes; each test still bounds its own waits.
  testTimeout: 60000,
  // Under PADDOCK_CI=1 a skipped or todo test fails the run (issue 19, decision 0033).
  reporters: ['default', '<rootDir>/test/helpers/no-skips-reporter.js'],
  projects: [
    {
      displayName: 'unit',
      testMatch: ['<rootDir>/test/unit/**/*.test.ts'],
      transform: { '^.+\\.ts$': tsJest },
      testEnvironment: 'node',
    },
    {
      displayName: 'integration',
      testMatch: ['<rootDir>/test/integration/**/*.int.test.ts'],
      transform: { '^.+\\.ts$': tsJest },
      testEnvironment: 'node',
      globalSetup: '<rootDir>/test/helpers/global-setup.ts',
      globalTeardown: '<rootDir>/test/helpers/global-teardown.ts',
    },
  ],
};
