// Processes and workers in a real browser: a definition checked as it is typed, saved,
// launched and run to its end by the embedded worker; the Workers pages; a worker token
// shown once and revoked.
import { expect, test, type Page } from '@playwright/test';
import { adminPassword } from '../playwright.config';

async function logIn(page: Page, username: string, password: string) {
  await page.goto('/login');
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page).toHaveURL(/\/$/);
}

function unique(base: string): string {
  return `${base}-${test.info().project.name}`;
}

test.beforeEach(async ({ page }) => {
  page.on('pageerror', (error) => {
    throw error;
  });
});

test('a definition is checked as it is typed, saved, launched and run by a worker', async ({ page }) => {
  const name = unique('e2e-build');
  await logIn(page, 'admin', adminPassword);
  await page.goto('/processes/definitions');
  await page.getByRole('link', { name: 'New definition' }).click();
  await expect(page).toHaveURL(/\/processes\/definitions\/edit/);

  const source = page.locator('#definition-source');
  // Text typed before the page has hydrated is not checked: type again until it is.
  await expect(async () => {
    await source.fill(`name: ${name}\nprocess:\n  sequence:\n    - participant: rocket\n`);
    await expect(page.locator('#definition-problems')).toContainText('line 4, column 20', {
      timeout: 2000,
    });
  }).toPass();
  await expect(page.locator('#definition-problems')).toContainText('rocket');

  await source.fill(
    `name: ${name}\nfields: { target: core-image-minimal }\nprocess:\n  sequence:\n` +
      `    - participant: shell\n      params: { command: ["sh", "-c", "echo building \${target}"] }\n` +
      `    - participant: log\n      params: { message: built }\n`,
  );
  await expect(page.locator('#definition-problems')).toContainText(`${name} is valid.`);
  await expect(page.locator('.outline')).toContainText('participant shell');

  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page).toHaveURL(new RegExp(`name=${name}`));
  await expect(page.getByText('version 1 saved')).toBeVisible();

  await expect(page.locator('#launch-fields')).toHaveValue(/core-image-minimal/);
  await page.locator('#launch-fields').fill('{"target": "kiln-image"}');
  await page.getByRole('button', { name: 'Launch' }).click();
  await expect(page).toHaveURL(/\/processes\/\d+$/);
  await expect(page.locator('[data-status]')).toHaveText('finished', { timeout: 20_000 });
  await expect(page.locator('.outline li[data-state="done"]', { hasText: 'participant shell' })).toBeVisible();
  await expect(page.locator('.history tr[data-kind="completed"]').first()).toContainText('embedded-');
  await expect(page.locator('pre.fields')).toContainText('"outcome": "passed"');
  await expect(page.locator('.outputs pre.log').first()).toContainText('building kiln-image');

  await page.goto('/processes');
  await expect(page.locator('table.processes')).toContainText(name);
});

test('the workers pages show the embedded workers, and tokens are shown once', async ({ page }) => {
  const token = unique('build-host');
  await logIn(page, 'admin', adminPassword);
  await page.getByRole('link', { name: 'Workers' }).first().click();
  await expect(page).toHaveURL(/\/workers$/);
  await expect(page.locator('tr[data-worker*="embedded-1"]')).toContainText('online');
  await expect(page.locator('tr[data-worker*="embedded-2"]')).toContainText('shell');

  await page.getByRole('link', { name: 'Participants' }).click();
  await expect(page.locator('tr[data-participant="shell"]')).toContainText('embedded-1');

  await page.getByRole('link', { name: 'Tokens' }).click();
  await page.getByLabel('Name').fill(token);
  await page.getByRole('button', { name: 'Create token' }).click();
  const secret = page.locator('[data-token-secret]');
  await expect(secret).toContainText('kiln_wt_');
  const value = await secret.textContent();
  await page.reload();
  await expect(page.locator(`tr[data-token="${token}"]`)).toContainText('active');
  await expect(page.getByText(value ?? 'missing')).toHaveCount(0);

  const row = page.locator(`tr[data-token="${token}"]`);
  await row.getByRole('button', { name: 'Revoke' }).click();
  await row.getByRole('button', { name: 'Confirm' }).click();
  await expect(row).toContainText('revoked');
});

test('a webhook trigger shows its secret once and starts its process when called', async ({ page }) => {
  const name = unique('e2e-hooked');
  const trigger = unique('push');
  await logIn(page, 'admin', adminPassword);
  await page.goto('/processes/definitions/edit');
  // Text typed before the page has hydrated is not checked: type again until it is.
  await expect(async () => {
    await page
      .locator('#definition-source')
      .fill(`name: ${name}\nfields: { branch: none }\nprocess:\n  sequence:\n    - participant: log\n      params: { message: "pushed \${branch}" }\n`);
    await expect(page.locator('#definition-problems')).toContainText(`${name} is valid.`, {
      timeout: 2000,
    });
  }).toPass();
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByText('version 1 saved')).toBeVisible();

  await page.goto('/processes/triggers');
  await page.getByRole('link', { name: 'global triggers' }).click();
  await expect(page).toHaveURL(/\/processes\/triggers\/manage$/);
  await page.getByLabel('Name', { exact: true }).fill(trigger);
  await page.getByLabel('Definition').selectOption(name);
  await expect(page.getByLabel(/Cron schedule/)).toBeVisible();
  await page.getByLabel('Kind').selectOption('webhook');
  await expect(page.getByLabel(/Cron schedule/)).toBeHidden();
  await page.getByLabel(/Fields from the payload/).fill('branch = /ref');
  await page.getByRole('button', { name: 'Add trigger' }).click();
  const secret = await page.locator('[data-hook-secret]').textContent();
  const url = await page.locator('[data-hook-url]').textContent();
  expect(secret).toMatch(/^[0-9a-f]{48}$/);
  expect(url).toMatch(/\/hooks\/\d+$/);

  const response = await page.request.post(url!, {
    headers: { 'X-Gitlab-Token': secret! },
    data: { ref: 'refs/heads/e2e' },
  });
  expect(response.status()).toBe(202);
  const { process } = await response.json();
  const unsigned = await page.request.post(url!, { data: { ref: 'x' } });
  expect(unsigned.status()).toBe(401);

  await page.goto(`/processes/${process}`);
  await expect(page.locator('[data-status]')).toHaveText('finished', { timeout: 20_000 });
  await expect(page.locator('pre.fields')).toContainText('refs/heads/e2e');

  await page.goto('/processes/triggers/manage');
  const row = page.locator(`tr[data-trigger="${trigger}"]`);
  await expect(row).toContainText('refused');
  await expect(row.getByRole('link', { name: `#${process}` })).toBeVisible();
  await expect(page.locator('[data-hook-secret]')).toHaveCount(0);
  await expect(page.locator('body')).not.toContainText(secret!);
});

test('a process waits for a person, who answers from the Inbox while its page follows live', async ({ page, context }) => {
  const name = unique('e2e-approval');
  await logIn(page, 'admin', adminPassword);
  await page.goto('/processes/definitions/edit');
  await page
    .locator('#definition-source')
    .fill(
      `name: ${name}\nprocess:\n  sequence:\n` +
        `    - participant: approve\n      params: { user: admin, message: "Ship ${name}?", form: [reason] }\n` +
        `    - participant: log\n      params: { message: "shipped because \${reason}" }\n`,
    );
  await expect(page.locator('#definition-problems')).toContainText(`${name} is valid.`);
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByText('version 1 saved')).toBeVisible();
  await page.getByRole('button', { name: 'Launch' }).click();
  await expect(page).toHaveURL(/\/processes\/\d+$/);
  const approve = page.locator('.outline li', { hasText: 'participant approve' });
  await expect(approve).toHaveAttribute('data-state', 'waiting');
  await expect(page.locator('[data-status]')).toHaveText('running');

  // The answer comes from another tab; this one is never reloaded.
  const inbox = await context.newPage();
  await inbox.goto('/inbox');
  const task = inbox.locator('li.task', { hasText: `Ship ${name}?` });
  await task.getByLabel('reason').fill('tests pass');
  await task.getByRole('button', { name: 'Complete' }).click();
  await expect(inbox.getByText('goes on')).toBeVisible();

  await expect(page.locator('[data-status]')).toHaveText('finished', { timeout: 20_000 });
  await expect(approve).toHaveAttribute('data-state', 'done');
  await expect(page.locator('pre.fields')).toContainText('tests pass');
});
