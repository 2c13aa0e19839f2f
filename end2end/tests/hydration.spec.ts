// Pages loaded afresh hydrate every time: those whose sections load data of their own inside
// data the page loads first (a project's tabs, the configuration page's build workflow, a
// build, the definition editor, the audit log), each loaded several times, because the
// server's way of waiting for such data varies from one load to the next.
import { expect, test, type Page } from '@playwright/test';
import { adminPassword } from '../playwright.config';

/** How many times each page is loaded. */
const LOADS = 4;

async function logIn(page: Page) {
  await page.goto('/login');
  await page.getByLabel('Username').fill('admin');
  await page.getByLabel('Password').fill(adminPassword);
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page).toHaveURL(/\/$/);
}

test.beforeEach(async ({ page }) => {
  page.on('pageerror', (error) => {
    throw error;
  });
});

test('pages with sections of their own hydrate on every fresh load', async ({ page }) => {
  test.setTimeout(120_000);
  await logIn(page);
  const slug = `hydrating-${test.info().project.name}`;
  const headers = { Origin: new URL(page.url()).origin };
  const created = await page.request.post('/api/create_project', { form: { name: slug, slug, description: '' }, headers });
  expect(created.status(), await created.text()).toBe(200);
  // A build of the demo project, loaded while it runs and after.
  const started = await page.request.post('/api/start_build', { form: { project: 'demo' }, headers });
  expect(started.status(), await started.text()).toBe(200);
  const build = Number(await started.text());

  const pages = [
    `/projects/${slug}`,
    `/projects/${slug}/builds`,
    `/projects/${slug}/configuration`,
    `/projects/${slug}/history`,
    `/projects/${slug}/settings`,
    `/projects/${slug}/audit`,
    `/processes/definitions/edit?project=${slug}`,
    '/admin/audit',
    `/projects/demo/builds/${build}`,
    `/projects/demo/builds/${build}/log`,
  ];
  for (const path of pages) {
    for (let load = 1; load <= LOADS; load++) {
      await page.goto(path);
      await expect(page.locator('body[data-hydrated]'), `${path}, load ${load}`).toBeAttached();
    }
  }
});
