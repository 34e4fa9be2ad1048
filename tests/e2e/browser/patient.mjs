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

import { mkdtemp, mkdir, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { chromium } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';
const INS = '284057511204339';
const PASSWORD = 'demo-camille';
const SUBJECT = 'Résultats de votre bilan';
const DOCUMENT = 'Bilan sanguin du 20 novembre';
const REPLY = 'Merci docteur, je prendrai rendez-vous la semaine prochaine. REPLY-MARKER-5e1';
const AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
const BLOCKING_IMPACTS = new Set(['serious', 'critical']);

const [base, shots] = process.argv.slice(2);
if (!base || !shots) {
  console.error('usage: node patient.mjs <base-url> <screenshot-dir>');
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

  step = 'login page';
  await page.goto(new URL('/login', base).href);
  await heading(page, 'Connexion');
  await screenshot(page, 'login');
  await axeCheck(page, 'login');

  step = 'sign in with the INS';
  await page.getByLabel('Identifiant').click();
  await page.keyboard.type(INS);
  await page.getByLabel('Mot de passe').click();
  await page.keyboard.type(PASSWORD);
  await page.getByRole('button', { name: 'Se connecter' }).click();
  await page.waitForURL((u) => u.pathname === '/');

  step = 'inbox';
  await heading(page, 'Messages reçus');
  const row = page.locator('ul.messages > li', { has: page.getByRole('link', { name: SUBJECT }) });
  check((await row.count()) === 1, `the inbox does not list one message "${SUBJECT}"`);
  check(await row.getByText('Non lu', { exact: true }).isVisible(), `"${SUBJECT}" is not marked "Non lu"`);
  await screenshot(page, 'inbox');
  await axeCheck(page, 'inbox');

  step = 'open the message';
  await row.getByRole('link', { name: SUBJECT }).click();
  await page.waitForURL((u) => u.pathname.startsWith('/m/'));
  await heading(page, SUBJECT);
  await page.getByText('BODY-MARKER-b17').waitFor();
  await screenshot(page, 'message');
  await axeCheck(page, 'message');

  step = 'reply';
  const answer = page.getByLabel('Votre réponse à');
  await answer.click();
  await page.keyboard.type(REPLY);
  await screenshot(page, 'reply-typed');
  await page.getByRole('button', { name: 'Envoyer la réponse' }).click();
  await page.waitForURL((u) => u.searchParams.get('sent') === '1');
  const notice = page.getByRole('status').filter({ hasText: 'Votre réponse a été envoyée' });
  await notice.waitFor();
  await screenshot(page, 'reply-sent');

  step = 'documents';
  await navigate(page, 'Documents');
  await heading(page, 'Mes documents');
  const docLink = page.getByRole('link', { name: DOCUMENT });
  await docLink.waitFor();
  await screenshot(page, 'documents');
  await axeCheck(page, 'documents');

  step = 'open the document';
  await docLink.click();
  await page.waitForURL((u) => /^\/documents\/\d+$/.test(u.pathname));
  const documentPath = path(page);
  await heading(page, DOCUMENT);
  const visibility = page.locator('dt', { hasText: 'Visibilité' }).locator('xpath=following-sibling::dd[1]');
  const before = (await visibility.textContent()).trim();
  check(before.startsWith('Visible par les professionnels'), `before masking, the visibility says ${JSON.stringify(before)}`);
  await screenshot(page, 'document');
  await axeCheck(page, 'document');

  step = 'mask the document';
  await page.getByRole('button', { name: 'Masquer aux professionnels' }).click();
  await page.getByRole('button', { name: 'Ne plus masquer' }).waitFor();
  check(path(page) === documentPath, `after masking, at ${page.url()} instead of ${documentPath}`);
  const after = (await visibility.textContent()).trim();
  check(after.startsWith('Masqué'), `after masking, the visibility says ${JSON.stringify(after)}`);
  await screenshot(page, 'document-masked');

  step = 'the list shows the mask';
  await page.getByRole('link', { name: 'Tous les documents' }).click();
  await heading(page, 'Mes documents');
  const item = page.locator('ul.documents > li', { has: page.getByRole('link', { name: DOCUMENT }) });
  await item.getByText('Masqué aux professionnels').waitFor();
  await screenshot(page, 'documents-masked');

  step = 'access history';
  await page.getByRole('link', { name: 'Historique des accès' }).click();
  await heading(page, 'Historique des accès');
  const masking = page.getByRole('row').filter({ hasText: 'a masqué le document' }).filter({ hasText: DOCUMENT });
  check((await masking.count()) >= 1, 'the access history has no row "a masqué le document" for the document');
  await screenshot(page, 'history');
  await axeCheck(page, 'history');

  step = 'settings';
  await navigate(page, 'Paramètres');
  await heading(page, 'Paramètres');
  await screenshot(page, 'settings');
  await axeCheck(page, 'settings');

  step = 'sign out';
  await page.getByRole('button', { name: 'Se déconnecter' }).click();
  await page.waitForURL((u) => u.pathname === '/login');
  await heading(page, 'Connexion');
  await screenshot(page, 'signed-out');

  step = 'after signing out, / leads to the login page';
  await page.goto(new URL('/', base).href);
  check(path(page) === '/login', `after signing out, / shows ${page.url()} instead of the login page`);
  await heading(page, 'Connexion');

  step = 'accessibility';
  if (accessibility.length > 0) {
    const list = accessibility.map(
      (v) => `  ${v.page} (${v.url}): ${v.id} [${v.impact}] ${v.help}\n` +
        v.nodes.map((n) => `      ${n.target}  ${n.html}`).join('\n'),
    );
    throw new StepFailure(`axe-core found ${accessibility.length} serious or critical violation(s) (WCAG 2.0/2.1 A and AA):\n${list.join('\n')}`);
  }
  step = 'content security policy';
  check(cspViolations.length === 0, `the browser reported Content-Security-Policy violations:\n  ${cspViolations.join('\n  ')}`);
  console.log('PASS the patient signed in, replied, masked a document, read the history and signed out');
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
