/**
 * The load and crash-under-load suite (`npm run test:load`): slow by design, so it is not part of
 * `npm test`. LOAD_SECONDS, LOAD_CLIENTS and LOAD_KILL_ROUNDS bound it (see README "Reliability").
 * @type {import('jest').Config}
 */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test/reliability'],
  testMatch: ['**/*.load.ts'],
  transform: {
    '^.+\\.ts$': ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' } }],
  },
  testTimeout: 600000,
};
