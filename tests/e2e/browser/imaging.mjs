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

import { mkdtemp, mkdir, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { chromium } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';
const INS = '284057511204339';
const PASSWORD = 'demo-camille';
const AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
const BLOCKING_IMPACTS = new Set(['serious', 'critical']);

const [base, shots] = process.argv.slice(2);
if (!base || !shots) {
  console.error('usage: node imaging.mjs <base-url> <screenshot-dir>');
  process.exit(2);
}

const require = createRequire(import.meta.url);
const axeSource = await readFile(require.resolve('axe-core/axe.min.js'), 'utf8');

class StepFailure extends Error {}

function check(condition, message) {
  if (!condition) throw new StepFailure(message);
}

let step = 'start';
let shotNumber = 0;
const accessibility = []; // { page, id, impact, help, helpUrl, targets }
const cspViolations = [];

async function screenshot(page, name) {
  shotNumber += 1;
  const path = join(shots, `${String(shotNumber).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path, fullPage: true });
  console.log(`screenshot ${path}`);
}

// axe-core is injected with page.evaluate (DevTools' Runtime.evaluate), which the pages'
// Content-Security-Policy (script-src 'self', no inline code) does not govern: the pages run
// under their real policy, and no CSP bypass is needed.
async function axeCheck(page, name) {
  const loaded = await page.evaluate(() => typeof window.axe === 'object');
  if (!loaded) await page.evaluate(axeSource);
  const violations = await page.evaluate(async (tags) => {
    const result = await window.axe.run(document, {
      runOnly: { type: 'tag', values: tags },
      resultTypes: ['violations'],
    });
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      helpUrl: v.helpUrl,
      nodes: v.nodes.map((n) => ({ target: n.target.join(' '), html: n.html, summary: n.failureSummary })),
    }));
  }, AXE_TAGS);
  for (const v of violations) {
    const blocking = BLOCKING_IMPACTS.has(v.impact);
    console.log(`axe ${name}: ${blocking ? 'VIOLATION' : 'note'} ${v.id} (${v.impact}) ${v.help} — ${v.helpUrl}`);
    for (const n of v.nodes) {
      console.log(`    ${n.target}  ${n.html}`);
      if (n.summary) console.log(`      ${n.summary.replace(/\n/g, '\n      ')}`);
    }
    if (blocking) accessibility.push({ page: name, url: page.url(), ...v });
  }
  console.log(`axe ${name}: ${violations.length} rule(s) violated, ${violations.filter((v) => BLOCKING_IMPACTS.has(v.impact)).length} serious or critical`);
}

function path(page) {
  return new URL(page.url()).pathname;
}

async function heading(page, text) {
  const h1 = page.getByRole('heading', { level: 1 });
  await h1.waitFor();
  const shown = (await h1.textContent()).trim();
  check(shown === text, `expected the page titled ${JSON.stringify(text)}, got ${JSON.stringify(shown)} at ${page.url()}`);
}

async function navigate(page, label) {
  await page.getByRole('navigation', { name: 'Navigation principale' }).getByRole('link', { name: label }).click();
  await page.waitForLoadState('load');
}

const userData = await mkdtemp(join(tmpdir(), 'mshub-chromium-'));
await mkdir(shots, { recursive: true });
let context;
let page;
let failed = false;
try {
  step = 'launch chromium';
  context = await chromium.launchPersistentContext(userData, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    // The hub's demo certificate is self-signed.
    ignoreHTTPSErrors: true,
    locale: 'fr-FR',
    viewport: { width: 1024, height: 768 },
  });
  context.setDefaultTimeout(30_000);
  context.setDefaultNavigationTimeout(30_000);
  page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content[- ]Security[- ]Policy/i.test(m.text())) {
      cspViolations.push(`${page.url()}: ${m.text()}`);
    }
  });
  page.on('pageerror', (e) => console.log(`page error at ${page.url()}: ${e.message}`));

  step = 'sign in';
  await page.goto(new URL('/login', base).href);
  await heading(page, 'Connexion');
  await page.getByLabel('Identifiant').fill(INS);
  await page.getByLabel('Mot de passe').fill(PASSWORD);
  await page.getByRole('button', { name: 'Se connecter' }).click();
  await page.waitForURL((u) => u.pathname === '/');

  step = 'documents';
  await navigate(page, 'Documents');
  await heading(page, 'Mes documents');
  const imaging = page.locator('section', { has: page.getByRole('heading', { name: /^Imagerie/ }) });
  check((await imaging.getByRole('link', { name: 'Scanner thoracique' }).count()) === 1, 'no "Scanner thoracique" under Imagerie');
  await screenshot(page, 'documents');

  step = 'study page';
  await imaging.getByRole('link', { name: 'Scanner thoracique' }).click();
  await page.waitForURL((u) => /^\/imaging\/\d+$/.test(u.pathname));
  const studyPath = path(page);
  await heading(page, 'Scanner thoracique');
  await page.getByText('12 novembre 2026').waitFor();
  await page.getByText('3 images').waitFor();
  const thumb = page.getByRole('img', { name: 'Aperçu de la Série 1 : Thorax sans injection' });
  await thumb.waitFor();
  const thumbWidth = await thumb.evaluate((img) => img.complete && img.naturalWidth);
  check(thumbWidth === 64, `the thumbnail did not load (natural width ${thumbWidth})`);
  await screenshot(page, 'study');
  await axeCheck(page, 'study');

  step = 'viewer';
  await page.getByRole('link', { name: 'Voir les images de la Série 1 : Thorax sans injection' }).click();
  await page.waitForURL((u) => /^\/imaging\/\d+\/series\/0$/.test(u.pathname));
  await heading(page, 'Série 1 : Thorax sans injection');
  await page.getByText('Image 1 sur 3', { exact: true }).waitFor();
  const frame = () => page.locator('figure.viewer img');
  const loaded = async () => frame().evaluate((img) => img.complete && img.naturalWidth);
  check((await loaded()) === 64, 'the first image did not load');
  check((await page.getByRole('link', { name: '← Image précédente' }).count()) === 0, 'a previous link on the first image');
  await screenshot(page, 'viewer-1');
  await axeCheck(page, 'viewer');

  step = 'next image';
  await page.getByRole('link', { name: 'Image suivante →' }).click();
  await page.getByText('Image 2 sur 3', { exact: true }).waitFor();
  check((await loaded()) === 64, 'the second image did not load');
  const second = await frame().getAttribute('src');
  check(second.includes('image=2'), `the second image's source is ${second}`);

  step = 'bone window';
  await page.getByRole('link', { name: 'Os', exact: true }).click();
  await page.waitForURL((u) => u.searchParams.get('fenetre') === 'os');
  check((await page.getByRole('link', { name: 'Os', exact: true }).getAttribute('aria-current')) === 'true', 'the bone preset is not marked current');
  await page.getByText('Image 2 sur 3', { exact: true }).waitFor();
  check((await loaded()) === 64, 'the bone-window image did not load');
  check((await frame().getAttribute('alt')).includes('réglage Os'), 'the image alt does not name the window');

  step = 'go to image 3';
  await page.getByLabel('Aller à l\'image (1 à 3)').fill('3');
  await page.getByRole('button', { name: 'Afficher' }).click();
  await page.getByText('Image 3 sur 3', { exact: true }).waitFor();
  check(new URL(page.url()).searchParams.get('fenetre') === 'os', 'the form lost the window');
  check((await loaded()) === 64, 'the third image did not load');
  check((await page.getByRole('link', { name: 'Image suivante →' }).count()) === 0, 'a next link on the last image');
  await screenshot(page, 'viewer-3-bone');
  await axeCheck(page, 'viewer-bone');

  step = 'lung window on the first image';
  await page.getByRole('link', { name: '← Image précédente' }).click();
  await page.getByRole('link', { name: '← Image précédente' }).click();
  await page.getByText('Image 1 sur 3', { exact: true }).waitFor();
  await page.getByRole('link', { name: 'Poumon', exact: true }).click();
  await page.waitForURL((u) => u.searchParams.get('fenetre') === 'poumon');
  check((await loaded()) === 64, 'the lung-window image did not load');
  await screenshot(page, 'viewer-1-lung');

  step = 'download the study';
  await page.goto(new URL(studyPath, base).href);
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name: /^Télécharger l'examen complet/ }).click(),
  ]);
  const name = download.suggestedFilename();
  check(/^imagerie-20261112\.zip$/.test(name), `the study downloads as ${name}`);

  step = 'the study sent as attachments';
  await navigate(page, 'Documents');
  await page.getByRole('link', { name: 'Radio de contrôle' }).click();
  await page.waitForURL((u) => /^\/imaging\/\d+$/.test(u.pathname));
  await heading(page, 'Radio de contrôle');
  await page.getByText('1 image', { exact: false }).first().waitFor();
  await screenshot(page, 'study-attachments');
  await axeCheck(page, 'study-attachments');

  step = 'accessibility';
  if (accessibility.length > 0) {
    const list = accessibility.map((v) => `  ${v.page}: ${v.id} (${v.impact}) ${v.help}`);
    throw new StepFailure(`axe-core found ${accessibility.length} serious or critical violation(s) (WCAG 2.0/2.1 A and AA):\n${list.join('\n')}`);
  }
  check(cspViolations.length === 0, `the browser reported Content-Security-Policy violations:\n  ${cspViolations.join('\n  ')}`);
  console.log('imaging scenario passed');
} catch (e) {
  failed = true;
  const where = page ? ` at ${page.url()}` : '';
  console.error(`FAIL during "${step}"${where}: ${e instanceof StepFailure ? e.message : (e.stack ?? e)}`);
  if (page) {
    try {
      await page.screenshot({ path: join(shots, 'failure.png'), fullPage: true });
      console.error(`screenshot of the failure: ${join(shots, 'failure.png')}`);
    } catch {
      // The browser may be gone: the message above is what matters.
    }
  }
} finally {
  if (context) await context.close().catch(() => {});
  await rm(userData, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
