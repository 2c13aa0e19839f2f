// Projects in a real browser: a user creates and configures a project, shares it with a
// group, restores an earlier configuration, exports it and imports it as a new project; a
// group member sees it read-only; someone outside sees nothing, not even at its address.
import { expect, test, type Page } from '@playwright/test';
import { readFile } from 'node:fs/promises';
import { adminPassword } from '../playwright.config';

function unique(base: string): string {
  return `${base}-${test.info().project.name}`;
}

async function logIn(page: Page, username: string, password: string) {
  await page.goto('/login');
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page.getByRole('heading', { name: 'Dashboard' })).toBeVisible();
}

async function logOut(page: Page) {
  await page.getByLabel('User menu').click();
  await page.getByRole('button', { name: 'Log out' }).click();
  await expect(page).toHaveURL(/\/login$/);
}

/** Calls a server function with the page's session, as the page's own forms do. */
async function call(page: Page, endpoint: string, form: Record<string, string>) {
  const origin = new URL(page.url()).origin;
  const response = await page.request.post(`/api/${endpoint}`, { form, headers: { Origin: origin } });
  expect(response.status(), `${endpoint}: ${await response.text()}`).toBe(200);
}

/** Opens a disclosure (a <details>) unless it is open already. */
async function open(page: Page, selector: string) {
  const details = page.locator(selector);
  if (await details.evaluate((element: HTMLDetailsElement) => !element.open)) {
    await details.locator('summary').click();
  }
  return details;
}

test.beforeEach(async ({ page }) => {
  page.on('console', (message) => {
    if (message.type() === 'error' && /Content.Security.Policy/i.test(message.text())) {
      throw new Error(`CSP violation: ${message.text()}`);
    }
  });
  page.on('pageerror', (error) => {
    throw error;
  });
});

test('share, configure, restore, export and import a project', async ({ page }) => {
  test.setTimeout(120_000);
  const [ann, ben, cat] = [unique('ann'), unique('ben'), unique('cat')];
  const group = unique('Firmware');
  const slug = unique('gateway');
  const password = 'project-test-password';

  // The administrator makes three users and a group with Ann and Ben in it.
  await logIn(page, 'admin', adminPassword);
  for (const username of [ann, ben, cat]) {
    await call(page, 'create_user', { username, display_name: username, email: '', password });
  }
  await page.goto('/admin/groups');
  await page.locator('summary', { hasText: 'Create group' }).click();
  await page.getByLabel('Name', { exact: true }).fill(group);
  await page.getByRole('button', { name: 'Create group' }).click();
  await expect(page.getByRole('status')).toContainText(`Group ${group} created.`);
  await page.getByRole('link', { name: group }).click();
  for (const username of [ann, ben]) {
    await page.getByLabel('Username').fill(username);
    await page.getByRole('button', { name: 'Add member' }).click();
    await expect(page.locator(`tr[data-username="${username}"]`)).toBeVisible();
  }
  await logOut(page);

  // Ann creates the project, shared with the group for viewing only.
  await logIn(page, ann, password);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Projects' }).click();
  await expect(page.getByText('You have no projects yet.')).toBeVisible();
  await page.locator('summary', { hasText: 'New project' }).click();
  await page.getByLabel('Name', { exact: true }).fill('Gateway image');
  await page.getByLabel(/^Slug/).fill(slug);
  await page.getByLabel('Group').selectOption({ label: group });
  await page.getByRole('group', { name: 'The group may' }).getByLabel('view').check();
  await page.getByRole('button', { name: 'Create project' }).click();
  await expect(page).toHaveURL(new RegExp(`/projects/${slug}$`));
  await expect(page.getByText(`${group}: view`)).toBeVisible();

  // Configuration: basics, a git layer, typed variables.
  await page.getByRole('navigation', { name: 'Project' }).getByRole('link', { name: 'Configuration' }).click();
  const build = page.locator('section', { has: page.getByRole('heading', { name: 'Build', exact: true }) });
  await build.getByLabel('Machine').fill('qemux86-64');
  await build.getByLabel('Distro').fill('poky');
  await build.getByLabel(/Image targets/).fill('core-image-minimal');
  await build.getByRole('button', { name: 'Save' }).click();
  await expect(page.locator('pre[data-file="local.conf"]')).toContainText('configuration revision 1');

  const layer = await open(page, 'details.add-layer');
  await layer.getByLabel('Name').fill('poky');
  await layer.getByLabel('Git URL').fill('https://git.yoctoproject.org/poky');
  await layer.getByLabel('Branch, tag or commit').fill('scarthgap');
  await layer.getByLabel(/Subdirectory/).fill('meta');
  await page.getByRole('button', { name: 'Add layer' }).click();
  await expect(page.locator('tr[data-layer="poky"]')).toBeVisible();

  let variable = await open(page, 'details.add-variable');
  await variable.getByLabel('Name').fill('INHERIT_RM_WORK');
  await variable.getByLabel('Type').selectOption('bool');
  await expect(variable.getByRole('checkbox', { name: 'Value' })).toBeVisible();
  await variable.getByRole('checkbox', { name: 'Value' }).check();
  await page.getByRole('button', { name: 'Add variable' }).click();
  await expect(page.locator('tr[data-variable="INHERIT_RM_WORK"]')).toBeVisible();

  variable = await open(page, 'details.add-variable');
  await variable.getByLabel('Name').fill('BB_TIMEOUT');
  await variable.getByLabel('Type').selectOption('integer');
  await variable.getByRole('spinbutton', { name: 'Value' }).fill('120');
  await page.getByRole('button', { name: 'Add variable' }).click();
  await expect(page.locator('pre[data-file="local.conf"]')).toContainText('BB_TIMEOUT = "120"');
  await expect(page.locator('pre[data-file="local.conf"]')).toContainText('INHERIT_RM_WORK = "1"');
  await expect(page.locator('pre[data-file="bblayers.conf"]')).toContainText('${TOPDIR}/../layers/poky/meta');

  // A change of machine, then the earlier revision restored from the history.
  await build.getByLabel('Machine').fill('qemuarm64');
  await build.getByRole('button', { name: 'Save' }).click();
  await expect(page.locator('pre[data-file="local.conf"]')).toContainText('MACHINE ?= "qemuarm64"');
  await page.getByRole('navigation', { name: 'Project' }).getByRole('link', { name: 'History' }).click();
  const revisionFour = page.locator('tr[data-revision="4"]');
  await revisionFour.getByRole('button', { name: 'Restore' }).click();
  await revisionFour.getByRole('button', { name: 'Confirm' }).click();
  await expect(page.getByText('Restored as a new revision.')).toBeVisible();
  await expect(page.locator('tr[data-revision="6"]')).toContainText('Restored revision 4');
  await page.getByRole('navigation', { name: 'Project' }).getByRole('link', { name: 'Configuration' }).click();
  await expect(page.locator('pre[data-file="local.conf"]')).toContainText('MACHINE ?= "qemux86-64"');

  // Export, then import the file as a new project.
  const downloading = page.waitForEvent('download');
  await page.getByRole('link', { name: 'Export (TOML)' }).click();
  const download = await downloading;
  expect(download.suggestedFilename()).toBe(`${slug}.toml`);
  const file = await download.path();
  const text = await readFile(file, 'utf8');
  expect(text).toContain('schema = 1');
  expect(text).toContain('machine = "qemux86-64"');
  await page.goto('/projects');
  await page.getByRole('link', { name: 'Import a project from a file' }).click();
  await page.getByLabel('Project file').setInputFiles(file);
  await page.getByLabel(/Slug for the new project/).fill(`${slug}-copy`);
  await page.getByRole('button', { name: 'Import' }).click();
  await expect(page).toHaveURL(new RegExp(`/projects/${slug}-copy$`));
  await page.getByRole('navigation', { name: 'Project' }).getByRole('link', { name: 'Configuration' }).click();
  await expect(page.locator('pre[data-file="local.conf"]')).toContainText('BB_TIMEOUT = "120"');
  await logOut(page);

  // Ben, in the group, sees the project read-only.
  await logIn(page, ben, password);
  await page.goto('/projects?tab=shared');
  await page.getByRole('link', { name: 'Gateway image' }).first().click();
  await expect(page).toHaveURL(new RegExp(`/projects/${slug}$`));
  await expect(page.getByRole('link', { name: 'Settings' })).toHaveCount(0);
  await page.getByRole('navigation', { name: 'Project' }).getByRole('link', { name: 'Configuration' }).click();
  await expect(page.locator('pre[data-file="local.conf"]')).toContainText('MACHINE ?= "qemux86-64"');
  await expect(page.getByRole('button', { name: 'Save' })).toHaveCount(0);
  await expect(page.getByText('Add a layer')).toHaveCount(0);
  await logOut(page);

  // Cat, outside the group, finds nothing.
  await logIn(page, cat, password);
  await page.goto('/projects?tab=all');
  await expect(page.getByText('There are no projects you can see.')).toBeVisible();
  const response = await page.goto(`/projects/${slug}`);
  expect(response?.status()).toBe(404);
  await expect(page.getByRole('heading', { name: 'Page not found' })).toBeVisible();
});
