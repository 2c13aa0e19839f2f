// Builds in a real browser: the demo project (built with the shipped fake-bitbake by the
// embedded worker) started from its Builds tab, followed live on the build page to success,
// and its image downloaded; a failing build with its failed task and error, hidden, shown
// again and deleted; a viewer without `download` refused the artifact; a running build
// whose open task table, sort and confirmation last through its live changes, cancelled;
// a shared build directory set on the configuration page.
import { expect, test, type Page } from '@playwright/test';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { adminPassword } from '../playwright.config';

function unique(base: string): string {
  return `${base}-${test.info().project.name}`;
}

/** Calls a server function with the page's session, as the page's own forms do. */
async function call(page: Page, endpoint: string, form: Record<string, string>) {
  const origin = new URL(page.url()).origin;
  const response = await page.request.post(`/api/${endpoint}`, { form, headers: { Origin: origin } });
  expect(response.status(), `${endpoint}: ${await response.text()}`).toBe(200);
}

/** A build workflow running fake-bitbake, as the demo project's does. */
const FAKE_BUILD = `name: standard-build
fields: { project: "", build_number: 0, requested_by: "" }
process:
  sequence:
    - participant: build
      params: { step: prepare }
    - participant: build
      params: { step: bitbake, command: [fake-bitbake], on_worker: "\${build_worker}" }
    - participant: build
      params: { step: collect, on_worker: "\${build_worker}" }
`;

/** Creates project `slug` building with fake-bitbake, its settings given as `variables`. */
async function createFakeProject(page: Page, slug: string, variables: Record<string, string>) {
  await call(page, 'create_project', { name: slug, slug, description: '' });
  await call(page, 'save_basics', {
    slug,
    release: 'scarthgap',
    machine: 'qemux86-64',
    distro: 'poky',
    image_targets: 'core-image-minimal',
    packages: '',
  });
  for (const [name, value] of Object.entries(variables)) {
    await call(page, 'set_variable', { slug, name, kind: 'string', value, secret: 'false' });
  }
  await call(page, 'save_definition', { project: slug, source: FAKE_BUILD });
}

/** Waits until the page has hydrated: before that its buttons do nothing. */
async function hydrated(page: Page) {
  await expect(page.locator('body[data-hydrated]')).toBeAttached();
}

async function logIn(page: Page, username: string, password: string) {
  await page.goto('/login');
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page).toHaveURL(/\/$/);
}

test.beforeEach(async ({ page }) => {
  page.on('pageerror', (error) => {
    throw error;
  });
});

test('a build of the demo project is started, followed live and succeeds', async ({ page }) => {
  test.setTimeout(120_000);
  await logIn(page, 'admin', adminPassword);
  await page.goto('/projects/demo/builds');
  await expect(page.getByRole('heading', { name: 'Builds', exact: true })).toBeVisible();
  const rows = page.locator('table.builds tbody tr');
  const before = await rows.count();

  await page.getByRole('button', { name: 'Start build' }).click();
  await expect(rows).toHaveCount(before + 1, { timeout: 15_000 });
  const newest = rows.first();
  const number = await newest.getAttribute('data-build');
  await newest.getByRole('link', { name: `#${number}` }).click();
  await expect(page).toHaveURL(new RegExp(`/projects/demo/builds/${number}$`));
  await expect(page.getByRole('heading', { name: `Build #${number} of Demo` })).toBeVisible();

  // While it builds, the progress bar and the log move without a reload.
  const state = page.locator('dd [data-state]');
  await expect(state).toHaveText('building', { timeout: 60_000 });
  await expect(page.locator('.build-log .log-line').first()).toBeVisible();
  await expect(page.locator('.build-log')).toContainText('Running task', { timeout: 20_000 });
  await expect(page.locator('progress').first()).toBeVisible();

  await expect(state).toHaveText('succeeded', { timeout: 60_000 });
  await expect(page.locator('progress').first()).toHaveAttribute('value', '100');
  await expect(page.locator('.build-log')).toContainText('Tasks Summary');
  await expect(page.getByText('task 120 of 120', { exact: true })).toBeVisible();
  await page.getByText(/^Tasks \(/).click();
  await expect(page.locator('details.tasks tr[data-outcome="succeeded"]')).toHaveCount(120);

  // Its image downloads with the bytes the worker hashed.
  const artifacts = page.locator('.build-artifacts');
  const image = artifacts.getByRole('link', { name: 'core-image-minimal-qemux86-64.rootfs.wic', exact: true });
  await expect(image).toBeVisible();
  const hash = await artifacts
    .locator('li', { has: page.getByRole('link', { name: 'core-image-minimal-qemux86-64.rootfs.wic', exact: true }) })
    .locator('code.hash')
    .getAttribute('title');
  const downloading = page.waitForEvent('download');
  await image.click();
  const download = await downloading;
  expect(download.suggestedFilename()).toBe('core-image-minimal-qemux86-64.rootfs.wic');
  const bytes = await readFile((await download.path())!);
  expect(bytes.length).toBe(256 * 1024);
  expect(bytes.subarray(0, 60).toString('latin1')).toContain('fake-bitbake image core-image-minimal-qemux86-64.rootfs.wic');
  expect(hash).toBe(`SHA-256 ${createHash('sha256').update(bytes).digest('hex')}`);

  // The list shows it succeeded.
  await page.goto('/projects/demo/builds');
  await expect(page.locator(`tr[data-build="${number}"]`)).toHaveAttribute('data-state', 'succeeded');
});

test('a failing build shows its failed task; it is hidden, shown again and deleted; a viewer may not download', async ({ page, browser }) => {
  test.setTimeout(120_000);
  const slug = unique('failing');
  const viewer = unique('viewer');
  const password = 'builds-test-password';
  await logIn(page, 'admin', adminPassword);
  await createFakeProject(page, slug, {
    FAKE_BITBAKE_TASK_MS: '10',
    FAKE_BITBAKE_FAIL: 'busybox:do_compile',
  });

  await page.goto(`/projects/${slug}/builds`);
  await expect(page.getByRole('heading', { name: 'No builds yet' })).toBeVisible();
  await page.getByRole('button', { name: 'Start build' }).click();
  await page.getByRole('status').getByRole('link', { name: '#1' }).click();
  await expect(page).toHaveURL(new RegExp(`/projects/${slug}/builds/1$`));
  const state = page.locator('dd [data-state]');
  await expect(state).toHaveText('failed', { timeout: 60_000 });
  await expect(page.getByRole('alert').filter({ hasText: 'Why it failed' })).toContainText('exited with status 1');
  await expect(page.locator('.build-errors')).toContainText('busybox');
  const failed = page.locator('.failed-tasks tr[data-outcome="failed"]');
  await expect(failed).toHaveCount(1);
  await expect(failed).toContainText('busybox');
  await expect(failed).toContainText('do_compile');
  // The whole task table loads when opened, and sorts by a column.
  await page.getByText(/^Tasks \(/).click();
  const tasks = page.locator('details.tasks');
  await expect(tasks.locator('tr[data-outcome="failed"]')).toHaveCount(1);
  await tasks.getByRole('group', { name: 'Sort tasks by' }).getByRole('button', { name: 'Outcome' }).click();
  await expect(tasks.locator('tbody tr').first()).toHaveAttribute('data-outcome', 'failed');
  const taskLog = page.locator('.build-artifacts').getByRole('link', { name: /^log\.do_compile\./ });
  await expect(taskLog).toBeVisible();
  const artifactUrl = (await taskLog.getAttribute('href'))!;

  // Hidden, it leaves the list until hidden builds are shown; then it is shown again.
  await page.getByRole('button', { name: 'Hide', exact: true }).click();
  await expect(page.locator('[data-mark="hidden"]')).toBeVisible();
  await page.goto(`/projects/${slug}/builds`);
  await expect(page.locator('tr[data-build="1"]')).toHaveCount(0);
  await page.getByRole('link', { name: 'Show hidden builds' }).click();
  await expect(page.locator('tr[data-build="1"]')).toHaveAttribute('data-state', 'failed');
  await page.locator('tr[data-build="1"]').getByRole('link', { name: '#1' }).click();
  await page.getByRole('button', { name: 'Unhide', exact: true }).click();
  await expect(page.locator('[data-mark="hidden"]')).toHaveCount(0);
  await page.goto(`/projects/${slug}/builds`);
  await expect(page.locator('tr[data-build="1"]')).toBeVisible();

  // All builds finds it by project and state.
  await page.goto('/builds');
  await expect(page.getByRole('heading', { name: 'All builds' })).toBeVisible();
  await page.getByLabel('Project').fill(slug);
  await page.getByLabel('State').selectOption('failed');
  await page.getByRole('button', { name: 'Filter' }).click();
  await expect(page.locator(`tr[data-project="${slug}"][data-build="1"]`)).toHaveAttribute('data-state', 'failed');
  await page.getByLabel('State').selectOption('succeeded');
  await page.getByRole('button', { name: 'Filter' }).click();
  await expect(page.getByText('No build matches these filters.')).toBeVisible();

  // Someone who may only view sees the artifacts listed but gets 403 for the file.
  await call(page, 'create_user', { username: viewer, display_name: viewer, email: '', password });
  await call(page, 'set_project_sharing', { slug, 'other_permissions[view]': 'true' });
  const context = await browser.newContext();
  const other = await context.newPage();
  await logIn(other, viewer, password);
  await other.goto(`/projects/${slug}/builds/1`);
  await expect(other.locator('.build-artifacts')).toContainText('Downloading needs');
  await expect(other.locator('.build-artifacts').getByRole('link')).toHaveCount(0);
  const refused = await other.request.get(artifactUrl);
  expect(refused.status()).toBe(403);
  await context.close();
  expect((await page.request.get(artifactUrl)).status()).toBe(200);
  // Private again, so other tests' users see no project of this one.
  await call(page, 'set_project_sharing', { slug });

  // Deleted after confirming, it is gone with its files.
  await page.goto(`/projects/${slug}/builds/1`);
  await hydrated(page);
  await page.getByRole('button', { name: 'Delete build' }).click();
  await page.getByRole('button', { name: 'Confirm' }).click();
  await expect(page).toHaveURL(new RegExp(`/projects/${slug}/builds$`));
  await expect(page.getByRole('heading', { name: 'No builds yet' })).toBeVisible();
  expect((await page.request.get(artifactUrl)).status()).toBe(404);
});

test('a running build keeps the reader\'s open table, sort and question while it changes, and stops when cancelled', async ({ page }) => {
  test.setTimeout(120_000);
  const slug = unique('running');
  await logIn(page, 'admin', adminPassword);
  await createFakeProject(page, slug, { FAKE_BITBAKE_TASK_MS: '300' });
  await call(page, 'start_build', { project: slug });

  await page.goto(`/projects/${slug}/builds/1`);
  await hydrated(page);
  const state = page.locator('dd [data-state]');
  await expect(state).toHaveText('building', { timeout: 60_000 });
  const progress = page.locator('.progress-line .hint').first();
  await expect(progress).toHaveText(/^task [1-9]\d* of \d+$/, { timeout: 20_000 });

  // Opened, sorted and asked while it runs...
  await page.getByText(/^Tasks \(/).click();
  const tasks = page.locator('details.tasks');
  await expect(tasks.locator('tbody tr').first()).toBeVisible();
  await tasks.getByRole('group', { name: 'Sort tasks by' }).getByRole('button', { name: 'Duration' }).click();
  await page.getByRole('button', { name: 'Cancel build' }).click();
  const question = page.getByRole('group', { name: /^Cancel build #1\?/ });
  await expect(question).toBeVisible();

  // ...all of it stays through the page's live changes.
  const seen = await progress.textContent();
  await expect(progress).not.toHaveText(seen!, { timeout: 20_000 });
  const rows = await tasks.locator('tbody tr').count();
  await expect(tasks.locator('tbody tr')).not.toHaveCount(rows, { timeout: 20_000 });
  await expect(tasks).toHaveAttribute('open', '');
  await expect(tasks.getByRole('button', { name: 'Duration' })).toHaveAttribute('aria-pressed', 'true');
  await expect(question).toBeVisible();

  // Confirmed, the build stops, and the page says so.
  await question.getByRole('button', { name: 'Confirm' }).click();
  await expect(state).toHaveText('cancelled', { timeout: 30_000 });
  await expect(page.getByText('stopping…')).toHaveCount(0, { timeout: 30_000 });
  await expect(page.getByRole('button', { name: 'Cancel build' })).toHaveCount(0);
});

test('an administrator gives a project a shared build directory, and a bad one is refused', async ({ page }) => {
  await logIn(page, 'admin', adminPassword);
  const slug = unique('shared-dir');
  await call(page, 'create_project', { name: slug, slug, description: '' });
  await page.goto(`/projects/${slug}/configuration`);
  await hydrated(page);
  const card = page.locator('section.build-workflow');
  await expect(card.getByText('Each build runs in a directory of its own on its worker.')).toBeVisible();
  const field = card.getByLabel('Build directory on the workers');
  await field.fill('relative/build');
  await card.getByRole('button', { name: 'Save build directory' }).click();
  await expect(card.getByText('An absolute path on the workers')).toBeVisible();

  await field.fill(`/srv/yocto/${slug}/build/`);
  await card.getByRole('button', { name: 'Save build directory' }).click();
  await expect(card.getByText(`/srv/yocto/${slug}/build`, { exact: true })).toBeVisible();
  await expect(card.getByText(/one build at a time/)).toBeVisible();

  // Back to a directory of its own for each build.
  await card.getByLabel('Build directory on the workers').fill('');
  await card.getByRole('button', { name: 'Save build directory' }).click();
  await expect(card.getByText('Each build runs in a directory of its own on its worker.')).toBeVisible();
});
