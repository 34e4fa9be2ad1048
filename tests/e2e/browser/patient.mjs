// The demo patient, Camille, uses the web inbox in headless Chromium as a person would: she
// signs in with her INS, reads and answers her doctor's message, masks a lab result from
// professionals, looks at who accessed her documents, and signs out. Each main page is checked
// with axe-core (WCAG 2.0/2.1 A and AA); a "serious" or "critical" violation fails the run.
//
// usage: node patient.mjs <base-url> <screenshot-dir>
// Run by tests/e2e/webmail.rs, which sets up the hub and the mail this script expects.
// Exits 0 when every step passed; otherwise prints what failed (and where) and exits 1.
//
// The browser is Debian's chromium (scripts/install-deps --tests), never a download of
// Playwright's own builds: only playwright-core is installed, from the lock file.

import { run, check, path, heading, navigate } from './harness.mjs';

const INS = '284057511204339';
const PASSWORD = 'demo-camille';
const SUBJECT = 'Résultats de votre bilan';
const DOCUMENT = 'Bilan sanguin du 20 novembre';
const REPLY = 'Merci docteur, je prendrai rendez-vous la semaine prochaine. REPLY-MARKER-5e1';

const [base, shots] = process.argv.slice(2);
if (!base || !shots) {
  console.error('usage: node patient.mjs <base-url> <screenshot-dir>');
  process.exit(2);
}

await run({ shots, prefix: '', viewport: { width: 1024, height: 768 }, passed: 'PASS the patient signed in, replied, masked a document, read the history and signed out' }, async (page, s) => {
  s.step = 'login page';
  await page.goto(new URL('/login', base).href);
  await heading(page, 'Connexion');
  await s.screenshot(page, 'login');
  await s.axeCheck(page, 'login');

  s.step = 'sign in with the INS';
  await page.getByLabel('Identifiant').click();
  await page.keyboard.type(INS);
  await page.getByLabel('Mot de passe').click();
  await page.keyboard.type(PASSWORD);
  await page.getByRole('button', { name: 'Se connecter' }).click();
  await page.waitForURL((u) => u.pathname === '/');

  s.step = 'inbox';
  await heading(page, 'Messages reçus');
  const row = page.locator('ul.messages > li', { has: page.getByRole('link', { name: SUBJECT }) });
  check((await row.count()) === 1, `the inbox does not list one message "${SUBJECT}"`);
  check(await row.getByText('Non lu', { exact: true }).isVisible(), `"${SUBJECT}" is not marked "Non lu"`);
  await s.screenshot(page, 'inbox');
  await s.axeCheck(page, 'inbox');

  s.step = 'open the message';
  await row.getByRole('link', { name: SUBJECT }).click();
  await page.waitForURL((u) => u.pathname.startsWith('/m/'));
  await heading(page, SUBJECT);
  await page.getByText('BODY-MARKER-b17').waitFor();
  await s.screenshot(page, 'message');
  await s.axeCheck(page, 'message');

  s.step = 'reply';
  const answer = page.getByLabel('Votre réponse à');
  await answer.click();
  await page.keyboard.type(REPLY);
  await s.screenshot(page, 'reply-typed');
  await page.getByRole('button', { name: 'Envoyer la réponse' }).click();
  await page.waitForURL((u) => u.searchParams.get('sent') === '1');
  const notice = page.getByRole('status').filter({ hasText: 'Votre réponse a été envoyée' });
  await notice.waitFor();
  await s.screenshot(page, 'reply-sent');

  s.step = 'documents';
  await navigate(page, 'Documents');
  await heading(page, 'Mes documents');
  const docLink = page.getByRole('link', { name: DOCUMENT });
  await docLink.waitFor();
  await s.screenshot(page, 'documents');
  await s.axeCheck(page, 'documents');

  s.step = 'open the document';
  await docLink.click();
  await page.waitForURL((u) => /^\/documents\/[a-z2-7]{32}$/.test(u.pathname));
  const documentPath = path(page);
  await heading(page, DOCUMENT);
  const visibility = page.locator('dt', { hasText: 'Visibilité' }).locator('xpath=following-sibling::dd[1]');
  const before = (await visibility.textContent()).trim();
  check(before.startsWith('Visible par les professionnels'), `before masking, the visibility says ${JSON.stringify(before)}`);
  await s.screenshot(page, 'document');
  await s.axeCheck(page, 'document');

  s.step = 'mask the document';
  await page.getByRole('button', { name: 'Masquer aux professionnels' }).click();
  await page.getByRole('button', { name: 'Ne plus masquer' }).waitFor();
  check(path(page) === documentPath, `after masking, at ${page.url()} instead of ${documentPath}`);
  const after = (await visibility.textContent()).trim();
  check(after.startsWith('Masqué'), `after masking, the visibility says ${JSON.stringify(after)}`);
  await s.screenshot(page, 'document-masked');

  s.step = 'the list shows the mask';
  await page.getByRole('link', { name: 'Tous les documents' }).click();
  await heading(page, 'Mes documents');
  const item = page.locator('ul.documents > li', { has: page.getByRole('link', { name: DOCUMENT }) });
  await item.getByText('Masqué aux professionnels').waitFor();
  await s.screenshot(page, 'documents-masked');

  s.step = 'access history';
  await page.getByRole('link', { name: 'Historique des accès' }).click();
  await heading(page, 'Historique des accès');
  const masking = page.getByRole('row').filter({ hasText: 'a masqué le document' }).filter({ hasText: DOCUMENT });
  check((await masking.count()) >= 1, 'the access history has no row "a masqué le document" for the document');
  await s.screenshot(page, 'history');
  await s.axeCheck(page, 'history');

  s.step = 'settings';
  await navigate(page, 'Paramètres');
  await heading(page, 'Paramètres');
  await s.screenshot(page, 'settings');
  await s.axeCheck(page, 'settings');

  s.step = 'sign out';
  await page.getByRole('button', { name: 'Se déconnecter' }).click();
  await page.waitForURL((u) => u.pathname === '/login');
  await heading(page, 'Connexion');
  await s.screenshot(page, 'signed-out');

  s.step = 'after signing out, / leads to the login page';
  await page.goto(new URL('/', base).href);
  check(path(page) === '/login', `after signing out, / shows ${page.url()} instead of the login page`);
  await heading(page, 'Connexion');
});
