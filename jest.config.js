/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { diagnostics: false }] },
  // Integration files touch real daemons; they name their resources uniquely so files can run
  // in parallel on the 2-core CI machine.
  maxWorkers: 2,
  testTimeout: 60000,
  globalSetup: '<rootDir>/test/helpers/global-setup.ts',
};
