// The demo patient, Camille, decides in headless Chromium who reads her documents, as a person
// would: from "Mes documents" she opens "Accès des professionnels", searches the directory for
// a physician by family name, and adds her to the professionals who follow her; the page then
// lists her under "Qui peut consulter vos documents". axe-core checks the page with the search
// results shown and after the change (WCAG 2.0/2.1 A and AA; a "serious" or "critical"
// violation fails the run), and on a phone's width (375 px) the page must not scroll sideways.
//
// usage: node care.mjs <base-url> <screenshot-dir> <family-name> <full-name>
// Run by tests/e2e/browser_run.rs, which creates the physician and checks with curl that she
// reads Camille's documents afterwards (and not before). Exits 0 when every step passed;
// otherwise prints what failed (and where) and exits 1.

import { run, check, heading, navigate } from './harness.mjs';

const INS = '284057511204339';
const PASSWORD = 'demo-camille';
const READERS = 'Qui peut consulter vos documents';
const DESKTOP = { width: 1024, height: 768 };
const PHONE = { width: 375, height: 812 };

const [base, shots, family, fullName] = process.argv.slice(2);
if (!base || !shots || !family || !fullName) {
  console.error('usage: node care.mjs <base-url> <screenshot-dir> <family-name> <full-name>');
  process.exit(2);
}

/// On a phone's width the page must fit: no horizontal scrolling.
async function fitsAPhone(page, s, name) {
  await page.setViewportSize(PHONE);
  const { scroll, client } = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth,
    client: document.documentElement.clientWidth,
  }));
  await s.screenshot(page, `${name}-phone`);
  check(scroll <= client, `at ${PHONE.width} px, ${name} scrolls sideways: ${scroll} px of content for ${client} px`);
  await page.setViewportSize(DESKTOP);
}

await run({ shots, prefix: 'care-', viewport: DESKTOP, passed: `PASS the patient found ${fullName} and added her to the professionals who follow her` }, async (page, s) => {
  s.step = 'sign in';
  await page.goto(new URL('/login', base).href);
  await heading(page, 'Connexion');
  await page.getByLabel('Identifiant').click();
  await page.keyboard.type(INS);
  await page.getByLabel('Mot de passe').click();
  await page.keyboard.type(PASSWORD);
  await page.getByRole('button', { name: 'Se connecter' }).click();
  await page.waitForURL((u) => u.pathname === '/');

  s.step = 'open "Accès des professionnels"';
  await navigate(page, 'Documents');
  await heading(page, 'Mes documents');
  await page.getByRole('link', { name: 'Accès des professionnels' }).click();
  await page.waitForURL((u) => u.pathname === '/documents/acces');
  await heading(page, 'Accès des professionnels');
  const readers = page.getByRole('region', { name: READERS });
  check((await readers.getByRole('article', { name: fullName }).count()) === 0, `${fullName} is listed under "${READERS}" before Camille adds her`);
  await s.screenshot(page, 'page');
  await s.axeCheck(page, 'page');

  s.step = 'search the directory by family name';
  await page.getByLabel('Nom, profession, spécialité, ville ou numéro RPPS').fill(family);
  await page.getByRole('button', { name: 'Rechercher' }).click();
  await page.waitForURL((u) => u.searchParams.get('q') === family);
  await page.getByRole('status').filter({ hasText: '1 professionnel trouvé.' }).waitFor();
  const results = page.getByRole('region', { name: 'Ajouter un professionnel' });
  const card = results.getByRole('article', { name: fullName });
  await card.waitFor();
  await s.screenshot(page, 'search-results');
  await s.axeCheck(page, 'search-results');
  await fitsAPhone(page, s, 'search-results');

  s.step = 'add her to the professionals who follow me';
  await card.getByRole('button', { name: /^Ajouter à ceux qui me suivent/ }).click();
  await page.waitForURL((u) => u.pathname === '/documents/acces' && u.searchParams.get('done') === 'follows');
  await page.getByRole('status').filter({ hasText: 'ajouté à ceux qui vous suivent' }).waitFor();

  s.step = `listed under "${READERS}"`;
  const entry = readers.getByRole('article', { name: fullName });
  await entry.waitFor();
  const why = (await entry.textContent()).replace(/\s+/g, ' ');
  check(why.includes('professionnel qui vous suit'), `the entry does not say why she reads: ${JSON.stringify(why)}`);
  check(await entry.getByRole('button', { name: /^Bloquer/ }).isVisible(), 'the entry offers no "Bloquer" button');
  await s.screenshot(page, 'added');
  await s.axeCheck(page, 'added');
  await fitsAPhone(page, s, 'added');
});
