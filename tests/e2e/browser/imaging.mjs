// The demo patient, Camille, looks at the images of her chest CT in headless Chromium: from
// her documents to the study page (series with thumbnails), the viewer (next image, the bone
// window, a number typed in the form), the download of the whole study, and the study sent as
// plain attachments. The study and viewer pages are checked with axe-core (WCAG 2.0/2.1 A and
// AA); a "serious" or "critical" violation fails the run, and so does any CSP violation.
//
// usage: node imaging.mjs <base-url> <screenshot-dir>
// Run by tests/e2e/imaging.rs, which sets up the hub and the studies this script expects.
// Exits 0 when every step passed; otherwise prints what failed (and where) and exits 1.
//
// The browser is Debian's chromium (scripts/install-deps --tests), never a download of
// Playwright's own builds: only playwright-core is installed, from the lock file.

import { run, check, path, heading, navigate } from './harness.mjs';

const INS = '284057511204339';
const PASSWORD = 'demo-camille';

const [base, shots] = process.argv.slice(2);
if (!base || !shots) {
  console.error('usage: node imaging.mjs <base-url> <screenshot-dir>');
  process.exit(2);
}

await run({ shots, prefix: '', viewport: { width: 1024, height: 768 }, passed: 'imaging scenario passed' }, async (page, s) => {
  s.step = 'sign in';
  await page.goto(new URL('/login', base).href);
  await heading(page, 'Connexion');
  await page.getByLabel('Identifiant').fill(INS);
  await page.getByLabel('Mot de passe').fill(PASSWORD);
  await page.getByRole('button', { name: 'Se connecter' }).click();
  await page.waitForURL((u) => u.pathname === '/');

  s.step = 'documents';
  await navigate(page, 'Documents');
  await heading(page, 'Mes documents');
  const imaging = page.locator('section', { has: page.getByRole('heading', { name: /^Imagerie/ }) });
  check((await imaging.getByRole('link', { name: 'Scanner thoracique' }).count()) === 1, 'no "Scanner thoracique" under Imagerie');
  await s.screenshot(page, 'documents');

  s.step = 'study page';
  await imaging.getByRole('link', { name: 'Scanner thoracique' }).click();
  await page.waitForURL((u) => /^\/imaging\/[a-z2-7]{32}$/.test(u.pathname));
  const studyPath = path(page);
  await heading(page, 'Scanner thoracique');
  await page.getByText('12 novembre 2026').waitFor();
  await page.getByText('3 images').waitFor();
  const thumb = page.getByRole('img', { name: 'Aperçu de la Série 1 : Thorax sans injection' });
  await thumb.waitFor();
  const thumbWidth = await thumb.evaluate((img) => img.complete && img.naturalWidth);
  check(thumbWidth === 64, `the thumbnail did not load (natural width ${thumbWidth})`);
  await s.screenshot(page, 'study');
  await s.axeCheck(page, 'study');

  s.step = 'viewer';
  await page.getByRole('link', { name: 'Voir les images de la Série 1 : Thorax sans injection' }).click();
  await page.waitForURL((u) => /^\/imaging\/[a-z2-7]{32}\/series\/0$/.test(u.pathname));
  await heading(page, 'Série 1 : Thorax sans injection');
  await page.getByText('Image 1 sur 3', { exact: true }).waitFor();
  const frame = () => page.locator('figure.viewer img');
  const loaded = async () => frame().evaluate((img) => img.complete && img.naturalWidth);
  check((await loaded()) === 64, 'the first image did not load');
  check((await page.getByRole('link', { name: '← Image précédente' }).count()) === 0, 'a previous link on the first image');
  await s.screenshot(page, 'viewer-1');
  await s.axeCheck(page, 'viewer');

  s.step = 'next image';
  await page.getByRole('link', { name: 'Image suivante →' }).click();
  await page.getByText('Image 2 sur 3', { exact: true }).waitFor();
  check((await loaded()) === 64, 'the second image did not load');
  const second = await frame().getAttribute('src');
  check(second.includes('image=2'), `the second image's source is ${second}`);

  s.step = 'bone window';
  await page.getByRole('link', { name: 'Os', exact: true }).click();
  await page.waitForURL((u) => u.searchParams.get('fenetre') === 'os');
  check((await page.getByRole('link', { name: 'Os', exact: true }).getAttribute('aria-current')) === 'true', 'the bone preset is not marked current');
  await page.getByText('Image 2 sur 3', { exact: true }).waitFor();
  check((await loaded()) === 64, 'the bone-window image did not load');
  check((await frame().getAttribute('alt')).includes('réglage Os'), 'the image alt does not name the window');

  s.step = 'go to image 3';
  await page.getByLabel('Aller à l\'image (1 à 3)').fill('3');
  await page.getByRole('button', { name: 'Afficher' }).click();
  await page.getByText('Image 3 sur 3', { exact: true }).waitFor();
  check(new URL(page.url()).searchParams.get('fenetre') === 'os', 'the form lost the window');
  check((await loaded()) === 64, 'the third image did not load');
  check((await page.getByRole('link', { name: 'Image suivante →' }).count()) === 0, 'a next link on the last image');
  await s.screenshot(page, 'viewer-3-bone');
  await s.axeCheck(page, 'viewer-bone');

  s.step = 'lung window on the first image';
  await page.getByRole('link', { name: '← Image précédente' }).click();
  await page.getByRole('link', { name: '← Image précédente' }).click();
  await page.getByText('Image 1 sur 3', { exact: true }).waitFor();
  await page.getByRole('link', { name: 'Poumon', exact: true }).click();
  await page.waitForURL((u) => u.searchParams.get('fenetre') === 'poumon');
  check((await loaded()) === 64, 'the lung-window image did not load');
  await s.screenshot(page, 'viewer-1-lung');

  s.step = 'download the study';
  await page.goto(new URL(studyPath, base).href);
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name: /^Télécharger l'examen complet/ }).click(),
  ]);
  const name = download.suggestedFilename();
  check(/^imagerie-20261112\.zip$/.test(name), `the study downloads as ${name}`);

  s.step = 'the study sent as attachments';
  await navigate(page, 'Documents');
  await page.getByRole('link', { name: 'Radio de contrôle' }).click();
  await page.waitForURL((u) => /^\/imaging\/[a-z2-7]{32}$/.test(u.pathname));
  await heading(page, 'Radio de contrôle');
  await page.getByText('1 image', { exact: false }).first().waitFor();
  await s.screenshot(page, 'study-attachments');
  await s.axeCheck(page, 'study-attachments');
});
