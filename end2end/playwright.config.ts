// Playwright runs the suite in the system's Chromium against a real `kiln serve`, started on
// the port and data directory the Makefile chose (a free port, a fresh database).
import { defineConfig } from '@playwright/test';

export const adminPassword = process.env.KILN_ADMIN_PASSWORD ?? 'end2end-admin-password';
const port = Number(process.env.KILN_E2E_PORT ?? '3100');
const dataDir = process.env.KILN_E2E_DATA_DIR ?? 'test-results/kiln-data';
const kiln = process.env.KILN_E2E_BINARY ?? '../target/release/kiln';
const siteRoot = process.env.KILN_E2E_SITE_ROOT ?? '../target/site';

export default defineConfig({
  testDir: './tests',
  fullyParallel: false,
  workers: 1,
  forbidOnly: true,
  retries: 0,
  timeout: 30_000,
  expect: { timeout: 10_000 },
  reporter: [['list']],
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    },
  },
  projects: [
    { name: 'desktop', use: { browserName: 'chromium', viewport: { width: 1280, height: 800 } } },
    { name: 'phone', use: { browserName: 'chromium', viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true } },
  ],
  webServer: {
    command: `${kiln} serve --listen 127.0.0.1:${port} --data-dir ${dataDir} --site-root ${siteRoot} --demo-project`,
    url: `http://127.0.0.1:${port}/readyz`,
    reuseExistingServer: false,
    timeout: 60_000,
    stdout: 'ignore',
    stderr: 'pipe',
    env: { KILN_ADMIN_PASSWORD: adminPassword, RUST_LOG: 'warn' },
  },
});
