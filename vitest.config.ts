import { defineConfig } from 'vitest/config';

/**
 * Unit files that need a process of their own: two replace a module with vi.mock (a registry of
 * its own), one points SoftHSM2 at its tokens before the native module first initialises.
 */
const OWN_MODULES = [
  'test/unit/openpgp/pgp-rsa.test.ts',
  'test/unit/keystore/kek-pkcs11.test.ts',
  'test/unit/keystore/admin-login-cost.test.ts',
];

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Integration tests start real servers and child processes; the crash tests are heavy,
    // so files run in parallel but each file's tests in order.
    pool: 'forks',
    // vitest's default is one worker less than the cores: one worker on a 2-core machine, the
    // whole suite in series. Most files wait on their peers (child processes, sockets, timers)
    // more than they compute, so two files at a time keep both cores busy.
    maxWorkers: 2,
    projects: [
      {
        extends: true,
        // Unit files share their worker's module cache (isolate: false): importing OpenPGP,
        // PKI and PDF code once per worker instead of once per file. They start no processes
        // that outlive them and restore what they change (umask, env).
        test: { name: 'unit', include: ['test/unit/**/*.test.ts'], exclude: OWN_MODULES, isolate: false },
      },
      { extends: true, test: { name: 'unit-own-modules', include: OWN_MODULES } },
      // Integration, interop and crash tests (and any new folder): a fresh process per file.
      { extends: true, test: { name: 'system', include: ['test/**/*.test.ts'], exclude: ['test/unit/**'] } },
    ],
  },
});
