// The demo patient, Camille, connects a referenced health app in headless Chromium, as a
// person would, then later looks at what it added and withdraws its access. Two phases, each
// its own run (and its own sign-in): the app (tests/e2e/py/oauth_app.py) pushes its
// measurements in between.
//
//   node consent.mjs connect <base-url> <authorize-url> <screenshot-dir>
//     opens the app's authorize URL, signs in when sent to the login page, checks that no
//     box is ticked in advance, ticks the measurements box by its label, clicks "Autoriser"
//     and waits for the app's callback page (on 127.0.0.1); then /apps lists the app.
//   node consent.mjs native <base-url> <authorize-url> <screenshot-dir>
//     the same consent for an app whose redirect URI has a private-use scheme (RFC 8252
//     §7.1): the browser must be let through to it (the consent page's form-action).
//   node consent.mjs revoke <base-url> <screenshot-dir>
//     /profile shows the app's two weights in its table and an SVG chart; "Retirer l'accès"
//     on /apps withdraws the app's access.
//
// The consent page, /apps and /profile are checked with axe-core (WCAG 2.0/2.1 A and AA); a
// "serious" or "critical" violation fails the run, as a Content-Security-Policy report does.
// Run by tests/e2e/apps.rs. Exits 0 when every step passed; otherwise prints what failed (and
// where) and exits 1. The browser is Debian's chromium (scripts/install-deps --tests).

import { mkdtemp, mkdir, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { chromium } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';
const INS = '284057511204339';
const PASSWORD = 'demo-camille';
const APP_NAME = 'Mesures connectées Equilibre';
const SCOPE_LABEL = 'Ajouter des mesures (poids, glycémie, tension, pouls, pas) à votre profil';
// What tests/e2e/py/oauth_app.py pushes, as the profile writes them.
const WEIGHTS = ['70,5 kg', '69,8 kg'];
const AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
const BLOCKING_IMPACTS = new Set(['serious', 'critical']);
const USAGE = 'usage: node consent.mjs connect|native <base-url> <authorize-url> <screenshot-dir>\n' +
  '       node consent.mjs revoke <base-url> <screenshot-dir>';

const [phase, ...rest] = process.argv.slice(2);
const withUrl = phase === 'connect' || phase === 'native';
const [base, authorizeUrl, shots] = withUrl ? rest : [rest[0], null, rest[1]];
if (!['connect', 'native', 'revoke'].includes(phase) || !base || !shots || (withUrl && !authorizeUrl)) {
  console.error(USAGE);
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
const accessibility = []; // { page, url, id, impact, help, nodes }
const cspViolations = [];

async function screenshot(page, name) {
  shotNumber += 1;
  const path = join(shots, `${phase}-${String(shotNumber).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path, fullPage: true });
  console.log(`screenshot ${path}`);
}

// Injected with page.evaluate, which the pages' Content-Security-Policy does not govern (as in
// patient.mjs): the pages run under their real policy.
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

async function heading(page, text) {
  const h1 = page.getByRole('heading', { level: 1 });
  await h1.waitFor();
  const shown = (await h1.textContent()).trim();
  check(shown === text, `expected the page titled ${JSON.stringify(text)}, got ${JSON.stringify(shown)} at ${page.url()}`);
}

async function signIn(page) {
  await heading(page, 'Connexion');
  await page.getByLabel('Identifiant').click();
  await page.keyboard.type(INS);
  await page.getByLabel('Mot de passe').click();
  await page.keyboard.type(PASSWORD);
  await page.getByRole('button', { name: 'Se connecter' }).click();
}

/// The "Mes applications connectées" section of /apps.
function connectedSection(page) {
  return page.getByRole('region', { name: 'Mes applications connectées' });
}

async function connect(page) {
  const redirect = new URL(new URL(authorizeUrl).searchParams.get('redirect_uri'));

  step = 'the app sends the patient to the hub';
  await page.goto(authorizeUrl);
  const login = new URL(page.url());
  check(login.pathname === '/login', `without a session, the authorize URL shows ${page.url()} instead of the login page`);
  const next = login.searchParams.get('next') ?? '';
  check(next.startsWith('/oauth/authorize?'), `the login page does not come back to the request (next=${JSON.stringify(next)})`);
  await screenshot(page, 'login');

  step = 'sign in, back to the consent page';
  await signIn(page);
  await page.waitForURL((u) => u.pathname === '/oauth/authorize');
  await heading(page, 'Autoriser une application');
  const form = page.locator('main form[action="/oauth/authorize"]');
  check(await page.getByText(APP_NAME, { exact: true }).isVisible(), `the consent page does not name the app ${JSON.stringify(APP_NAME)}`);

  step = 'no box ticked in advance';
  const boxes = form.getByRole('checkbox');
  const count = await boxes.count();
  check(count === 1, `the consent page shows ${count} checkbox(es), expected one (measurements:write)`);
  for (let i = 0; i < count; i += 1) {
    check(!(await boxes.nth(i).isChecked()), `checkbox ${i + 1} of the consent page is ticked in advance`);
  }
  await screenshot(page, 'consent');
  await axeCheck(page, 'consent');

  step = 'tick the measurements box by its label and allow';
  const box = page.getByLabel(SCOPE_LABEL, { exact: true });
  await box.check();
  check(await box.isChecked(), `the box labelled ${JSON.stringify(SCOPE_LABEL)} did not tick`);
  await screenshot(page, 'consent-ticked');
  await page.getByRole('button', { name: 'Autoriser', exact: true }).click();

  step = "the app's callback page";
  await page.waitForURL((u) => u.host === redirect.host && u.pathname === redirect.pathname);
  const back = new URL(page.url());
  check(back.searchParams.get('code'), `the callback has no code: ${page.url()}`);
  check(!back.searchParams.get('error'), `the callback carries an error: ${page.url()}`);
  await heading(page, 'Equilibre est connectée');
  await screenshot(page, 'callback');

  step = '/apps lists the app as connected';
  await page.goto(new URL('/apps', base).href);
  await heading(page, 'Applications');
  const connected = connectedSection(page);
  await connected.waitFor();
  check(await connected.getByText(APP_NAME, { exact: true }).isVisible(), `"Mes applications connectées" does not list ${APP_NAME}`);
  check(await connected.getByText(SCOPE_LABEL).isVisible(), `"Mes applications connectées" does not say what ${APP_NAME} may do`);
  await screenshot(page, 'apps-connected');
  await axeCheck(page, 'apps');
}

// A native app's redirect URI (e.g. fr.pharmaclair.app:/auth) is not for the browser to load:
// it hands it to the app. What must not happen is the page's Content-Security-Policy blocking
// the form's redirect there (form-action applies to redirects), leaving a code issued that the
// app never receives.
async function native(page) {
  const redirect = new URL(authorizeUrl).searchParams.get('redirect_uri');

  step = 'sign in, then the consent page';
  await page.goto(authorizeUrl);
  check(new URL(page.url()).pathname === '/login', `without a session, the authorize URL shows ${page.url()}`);
  await signIn(page);
  await page.waitForURL((u) => u.pathname === '/oauth/authorize');
  await heading(page, 'Autoriser une application');
  const box = page.locator('main form[action="/oauth/authorize"]').getByRole('checkbox');
  check((await box.count()) === 1, `the consent page shows ${await box.count()} checkbox(es), expected one`);
  check(!(await box.isChecked()), 'the box is ticked in advance');
  await box.check();
  await screenshot(page, 'consent-native');
  await axeCheck(page, 'consent-native');

  step = `allow: the browser goes on to ${redirect}`;
  // Chromium hands the private-use scheme to the system (nothing to load here); a blocked
  // redirect shows as a form-action violation and the request aborted.
  const posted = page.waitForEvent('requestfinished', (r) => r.method() === 'POST' && new URL(r.url()).pathname === '/oauth/authorize').then(() => 'finished');
  const aborted = page.waitForEvent('requestfailed', (r) => r.method() === 'POST' && new URL(r.url()).pathname === '/oauth/authorize').then((r) => `failed: ${r.failure()?.errorText}`);
  await page.getByRole('button', { name: 'Autoriser', exact: true }).click();
  const outcome = await Promise.race([posted, aborted]);
  await page.waitForTimeout(2000);
  console.log(`the consent POST ${outcome}; now at ${page.url()}`);
  const blocked = cspViolations.filter((v) => /form-action/.test(v));
  check(blocked.length === 0,
    `"Autoriser" did not reach the app: the POST ${outcome}, and the consent page's Content-Security-Policy ` +
    `(form-action 'self': webmail/src/oauth.rs consent_csp only adds scheme://host origins) blocked the ` +
    `browser's redirect to ${redirect}, after the hub had issued the code (its log: POST /oauth/authorize 303):\n  ${blocked.join('\n  ')}`);
  cspViolations.length = 0;
}

async function revoke(page) {
  step = 'sign in';
  await page.goto(new URL('/profile', base).href);
  check(new URL(page.url()).pathname === '/login', `without a session, /profile shows ${page.url()}`);
  await signIn(page);
  await page.waitForURL((u) => u.pathname === '/profile');

  step = "the profile shows the app's measurements";
  await heading(page, 'Mon profil');
  const measurements = page.getByRole('region', { name: 'Mes mesures' });
  await measurements.getByRole('heading', { name: 'Poids', level: 3 }).waitFor();
  const table = measurements.getByRole('table', { name: /Poids/ });
  for (const weight of WEIGHTS) {
    const row = table.getByRole('row').filter({ hasText: weight });
    check((await row.count()) === 1, `the weights table has no row ${JSON.stringify(weight)}`);
    check(await row.getByText('Balance Equilibre B2').isVisible(), `the row ${JSON.stringify(weight)} does not name the device`);
  }
  const chart = measurements.locator('svg.chart');
  check((await chart.count()) === 1, 'the profile has no SVG chart of the weights');
  check(await page.getByRole('img', { name: 'Évolution : Poids' }).isVisible(), 'the SVG chart is not an image named "Évolution : Poids"');
  const points = ((await chart.locator('polyline').first().getAttribute('points')) ?? '').trim().split(/\s+/);
  check(points.length === 2, `the chart's line has ${points.length} point(s), expected 2`);
  await screenshot(page, 'profile');
  await axeCheck(page, 'profile');

  step = "withdraw the app's access";
  await page.goto(new URL('/apps', base).href);
  await heading(page, 'Applications');
  const connected = connectedSection(page);
  await connected.getByRole('button', { name: `Retirer l'accès de ${APP_NAME}` }).click();
  await page.waitForURL((u) => u.pathname === '/apps' && u.searchParams.get('done') === 'revoked');
  await page.getByRole('status').filter({ hasText: "L'autorisation a été retirée" }).waitFor();
  check(!(await connectedSection(page).getByText(APP_NAME, { exact: true }).isVisible()),
    `after "Retirer l'accès", "Mes applications connectées" still lists ${APP_NAME}`);
  await screenshot(page, 'apps-revoked');
  await axeCheck(page, 'apps-revoked');
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

  if (phase === 'connect') await connect(page);
  else if (phase === 'native') await native(page);
  else await revoke(page);

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
  console.log({
    connect: 'PASS the patient connected the app, ticking its one scope herself, and /apps lists it',
    native: "PASS the consent page let the browser go on to the native app's redirect URI",
    revoke: "PASS the profile shows the app's weights and chart, and the patient withdrew its access",
  }[phase]);
} catch (e) {
  failed = true;
  const where = page ? ` at ${page.url()}` : '';
  console.error(`FAIL during "${step}"${where}: ${e instanceof StepFailure ? e.message : (e.stack ?? e)}`);
  if (page) {
    try {
      const path = join(shots, `${phase}-failure.png`);
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
