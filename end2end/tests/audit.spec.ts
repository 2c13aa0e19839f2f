// The audit log in a real browser: an administrator finds a failed login by filtering.
import { expect, test } from '@playwright/test';
import { adminPassword } from '../playwright.config';

test('an admin filters the audit log and finds a failed login', async ({ page }) => {
  const stranger = `intruder-${test.info().project.name}`;
  await page.goto('/login');
  await page.getByLabel('Username').fill(stranger);
  await page.getByLabel('Password').fill('guessing-a-password');
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page.getByRole('alert')).toContainText('Invalid username or password.');

  await page.getByLabel('Username').fill('admin');
  await page.getByLabel('Password').fill(adminPassword);
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page.getByRole('heading', { name: 'Dashboard' })).toBeVisible();

  await page.getByRole('link', { name: 'Admin' }).click();
  await page.getByRole('navigation', { name: 'Administration' }).getByRole('link', { name: 'Audit log' }).click();
  await expect(page).toHaveURL(/\/admin\/audit$/);
  await expect(page.getByRole('link', { name: 'Admin' })).toHaveAttribute('aria-current', 'page');

  await page.getByLabel('Action').fill('login.failure');
  await page.getByRole('button', { name: 'Filter' }).click();
  await expect(page).toHaveURL(/action=login\.failure/);
  const rows = page.locator('table.audit tbody tr');
  await expect(rows.filter({ hasText: `Failed login for '${stranger}'` })).toHaveCount(1);
  await expect(page.locator('table.audit tbody tr:not([data-action="login.failure"])')).toHaveCount(0);
  await expect(page.getByRole('link', { name: 'CSV' })).toHaveAttribute('href', /format=csv&action=login\.failure/);

  // Retention: the browser itself refuses 0 (the server's check is in the Rust tests);
  // a good value is saved and shown.
  const retention = page.getByLabel('Keep records for (days)');
  await retention.fill('0');
  await page.getByRole('button', { name: 'Save retention' }).click();
  expect(await retention.evaluate((input: HTMLInputElement) => input.validity.rangeUnderflow)).toBe(true);
  await retention.fill('90');
  await page.getByRole('button', { name: 'Save retention' }).click();
  await expect(page.getByText('Records older than 90 days are deleted, hourly.')).toBeVisible();
});
