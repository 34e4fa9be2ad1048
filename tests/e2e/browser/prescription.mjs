// A pharmacist opens the URL of a prescription's QR code in headless Chromium, as a person
// would: sent to the login page, signs in with the professional address, comes back to the
// checked prescription, types a quantity for line 1, ticks "the rest" for line 2 by its label
// and records the dispensing.
//
//   node prescription.mjs <qr-url> <login> <password> <screenshot-dir>
//
// The prescription page and the confirmation are checked with axe-core (WCAG 2.0/2.1 A and AA);
// a "serious" or "critical" violation fails the run, as a Content-Security-Policy report does.
// Run by tests/e2e/prescription.rs. Exits 0 when every step passed; otherwise prints what
// failed (and where) and exits 1. The browser is Debian's chromium (scripts/install-deps --tests).

import { mkdtemp, mkdir, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { chromium } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';
const AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
const BLOCKING_IMPACTS = new Set(['serious', 'critical']);

const [qrUrl, login, password, shots] = process.argv.slice(2);
if (!qrUrl || !login || !password || !shots) {
  console.error('usage: node prescription.mjs <qr-url> <login> <password> <screenshot-dir>');
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
const accessibility = [];
const cspViolations = [];

async function screenshot(page, name) {
  shotNumber += 1;
  const path = join(shots, `prescription-${String(shotNumber).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path, fullPage: true });
  console.log(`screenshot ${path}`);
}

// Injected with page.evaluate, which the pages' Content-Security-Policy does not govern.
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
      nodes: v.nodes.map((n) => n.target.join(' ')),
    }));
  }, AXE_TAGS);
  for (const v of violations) {
    const blocking = BLOCKING_IMPACTS.has(v.impact);
    console.log(`axe ${name}: ${blocking ? 'VIOLATION' : 'note'} ${v.id} (${v.impact}) ${v.help}: ${v.nodes.join(', ')}`);
    if (blocking) accessibility.push({ page: name, ...v });
  }
}

async function heading(page, text) {
  const h1 = page.getByRole('heading', { level: 1 });
  await h1.waitFor();
  const shown = (await h1.textContent()).trim();
  check(shown === text, `expected the page titled ${JSON.stringify(text)}, got ${JSON.stringify(shown)} at ${page.url()}`);
}

async function dispense(page) {
  step = 'the QR code URL, signed out: the login page';
  await page.goto(qrUrl);
  const at = new URL(page.url());
  check(at.pathname === '/login', `without a session the QR code URL shows ${page.url()}`);
  check((at.searchParams.get('next') ?? '').startsWith('/ordonnance/'), `the login page does not come back to the prescription: ${page.url()}`);
  await heading(page, 'Connexion');

  step = 'sign in as the pharmacist, back to the prescription';
  await page.getByLabel('Identifiant').fill(login);
  await page.getByLabel('Mot de passe').fill(password);
  await page.getByRole('button', { name: 'Se connecter' }).click();
  await page.waitForURL((u) => u.pathname.startsWith('/ordonnance/'));
  await heading(page, 'Ordonnance à délivrer');
  check(await page.getByText('Ordonnance authentique', { exact: false }).isVisible(), 'the page does not say the prescription was checked');
  await screenshot(page, 'checked');
  await axeCheck(page, 'prescription');

  step = 'one box of line 1, the rest of line 2';
  await page.locator('#q0').fill('1');
  const rest = page.locator('fieldset').nth(1).getByLabel('Délivrer tout le reste de cette délivrance');
  await rest.check();
  check(await rest.isChecked(), 'the "rest" box of line 2 did not tick');
  await page.getByRole('button', { name: 'Enregistrer la délivrance' }).click();
  await heading(page, 'Délivrance enregistrée');
  check(await page.getByText('Il reste à délivrer', { exact: false }).isVisible(), 'the confirmation does not say something remains');
  await screenshot(page, 'recorded');
  await axeCheck(page, 'confirmation');
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
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    // The hub's demo certificate is self-signed.
    ignoreHTTPSErrors: true,
    locale: 'fr-FR',
    viewport: { width: 412, height: 915 },
  });
  context.setDefaultTimeout(30_000);
  context.setDefaultNavigationTimeout(30_000);
  page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content[- ]Security[- ]Policy/i.test(m.text())) {
      cspViolations.push(`${page.url()}: ${m.text()}`);
    }
  });
  await dispense(page);
  step = 'accessibility';
  check(accessibility.length === 0, `axe-core found serious or critical violations:\n${accessibility.map((v) => `  ${v.page}: ${v.id} [${v.impact}] ${v.help}: ${v.nodes.join(', ')}`).join('\n')}`);
  step = 'content security policy';
  check(cspViolations.length === 0, `the browser reported Content-Security-Policy violations:\n  ${cspViolations.join('\n  ')}`);
  console.log('PASS the pharmacist signed in from the QR code URL and recorded a dispensing');
} catch (e) {
  failed = true;
  const where = page ? ` at ${page.url()}` : '';
  console.error(`FAIL during "${step}"${where}: ${e instanceof StepFailure ? e.message : (e.stack ?? e)}`);
  if (page) {
    try {
      const path = join(shots, 'prescription-failure.png');
      await page.screenshot({ path, fullPage: true });
      console.error(`screenshot of the failure: ${path}`);
    } catch {
      // The browser may be gone: the message above is what matters.
    }
  }
} finally {
  if (context) await context.close().catch(() => {});
  await rm(userData, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
