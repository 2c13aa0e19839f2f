// Accounts in a real browser: logging in and out, an administrator creating a user, what a
// normal user may not see, password changes, and a page that hydrates.
import { expect, test, type Page } from '@playwright/test';
import { adminPassword } from '../playwright.config';

async function logIn(page: Page, username: string, password: string) {
  await page.goto('/login');
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
}

async function logOut(page: Page) {
  await page.getByLabel('User menu').click();
  await page.getByRole('button', { name: 'Log out' }).click();
  await expect(page).toHaveURL(/\/login$/);
}

// Each project (desktop, phone) runs against the same server, so names are per project.
function unique(base: string): string {
  return `${base}-${test.info().project.name}`;
}

test.beforeEach(async ({ page }) => {
  // A script refused by the Content-Security-Policy would break hydration silently.
  page.on('console', (message) => {
    if (message.type() === 'error' && /Content.Security.Policy/i.test(message.text())) {
      throw new Error(`CSP violation: ${message.text()}`);
    }
  });
  page.on('pageerror', (error) => {
    throw error;
  });
});

test('an admin creates a user, who cannot administer and changes their password', async ({ page }) => {
  const username = unique('alice');

  await logIn(page, 'admin', adminPassword);
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByRole('heading', { name: 'Dashboard' })).toBeVisible();

  await page.getByRole('link', { name: 'Admin' }).click();
  await expect(page).toHaveURL(/\/admin\/users$/);
  await page.locator('summary', { hasText: 'Create user' }).click();
  const form = page.locator('details.create-user form');
  await form.getByLabel('Username').fill(username);
  await form.getByLabel('Display name').fill('Alice Example');
  await form.getByLabel('Email').fill(`${username}@example.com`);
  await form.getByLabel('Password').fill('alice-first-password');
  await form.getByRole('button', { name: 'Create user' }).click();
  await expect(page.getByRole('status')).toContainText(`User ${username} created.`);
  await expect(page.locator(`tr[data-username="${username}"]`)).toContainText('Alice Example');

  await logOut(page);

  await logIn(page, username, 'alice-first-password');
  await expect(page.getByRole('heading', { name: 'Dashboard' })).toBeVisible();
  await expect(page.getByRole('link', { name: 'Projects' })).toBeVisible();
  await expect(page.getByRole('link', { name: 'Admin' })).toHaveCount(0);

  const forbidden = await page.goto('/admin/users');
  expect(forbidden?.status()).toBe(403);
  await expect(page.getByRole('heading', { name: 'Forbidden' })).toBeVisible();

  await page.goto('/profile');
  await page.getByLabel('Current password').fill('alice-first-password');
  await page.getByLabel('New password', { exact: true }).fill('alice-second-password');
  await page.getByLabel('Confirm new password').fill('alice-second-password');
  await page.getByRole('button', { name: 'Change password' }).click();
  await expect(page).toHaveURL(/\/login\?notice=password-changed$/);
  await expect(page.getByRole('status')).toContainText('Your password was changed');

  await logIn(page, username, 'alice-first-password');
  await expect(page.getByRole('alert')).toContainText('Invalid username or password.');
  await logIn(page, username, 'alice-second-password');
  await expect(page.getByRole('heading', { name: 'Dashboard' })).toBeVisible();
});

test('a wrong password shows the error and keeps the visitor on the login page', async ({ page }) => {
  await logIn(page, 'admin', 'certainly-not-the-password');
  await expect(page.getByRole('alert')).toContainText('Invalid username or password.');
  await expect(page).toHaveURL(/\/login/);
  await expect(page.getByLabel('Username')).toHaveValue('admin');
});

test('an anonymous visit goes to the login page and back to where it was going', async ({ page }) => {
  await page.goto('/profile');
  await expect(page).toHaveURL(/\/login\?next=%2Fprofile$/);
  await page.getByLabel('Username').fill('admin');
  await page.getByLabel('Password').fill(adminPassword);
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page).toHaveURL(/\/profile$/);
  await expect(page.getByRole('heading', { name: 'Profile' })).toBeVisible();
});

test('the users page hydrates: disabling asks first and updates without a reload', async ({ page }) => {
  const username = unique('bob');
  await logIn(page, 'admin', adminPassword);
  await expect(page.getByRole('heading', { name: 'Dashboard' })).toBeVisible();
  await page.goto('/admin/users');
  await page.locator('summary', { hasText: 'Create user' }).click();
  const form = page.locator('details.create-user form');
  await form.getByLabel('Username').fill(username);
  await form.getByLabel('Password').fill('bob-first-password');
  await form.getByRole('button', { name: 'Create user' }).click();
  const row = page.locator(`tr[data-username="${username}"]`);
  await expect(row).toContainText('Active');

  // Marks this document: a full reload would lose the mark.
  await page.evaluate(() => ((window as unknown as { kilnMark: number }).kilnMark = 42));

  await row.getByRole('button', { name: 'Disable' }).click();
  await expect(row.getByText(`Disable ${username}?`)).toBeVisible();
  await row.getByRole('button', { name: 'Cancel' }).click();
  await expect(row).toContainText('Active');

  await row.getByRole('button', { name: 'Disable' }).click();
  await row.getByRole('button', { name: 'Confirm' }).click();
  await expect(row).toContainText('Disabled');
  await expect(row.getByRole('button', { name: 'Enable' })).toBeVisible();

  expect(await page.evaluate(() => (window as unknown as { kilnMark?: number }).kilnMark)).toBe(42);
});
