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

import { run, check, heading } from './harness.mjs';

const INS = '284057511204339';
const PASSWORD = 'demo-camille';
const APP_NAME = 'Mesures connectées Equilibre';
const SCOPE_LABEL = 'Ajouter des mesures (poids, glycémie, tension, pouls, pas) à votre profil';
// What tests/e2e/py/oauth_app.py pushes, as the profile writes them.
const WEIGHTS = ['70,5 kg', '69,8 kg'];
const USAGE = 'usage: node consent.mjs connect|native <base-url> <authorize-url> <screenshot-dir>\n' +
  '       node consent.mjs revoke <base-url> <screenshot-dir>';

const [phase, ...rest] = process.argv.slice(2);
const withUrl = phase === 'connect' || phase === 'native';
const [base, authorizeUrl, shots] = withUrl ? rest : [rest[0], null, rest[1]];
if (!['connect', 'native', 'revoke'].includes(phase) || !base || !shots || (withUrl && !authorizeUrl)) {
  console.error(USAGE);
  process.exit(2);
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

async function connect(page, s) {
  const redirect = new URL(new URL(authorizeUrl).searchParams.get('redirect_uri'));

  s.step = 'the app sends the patient to the hub';
  await page.goto(authorizeUrl);
  const login = new URL(page.url());
  check(login.pathname === '/login', `without a session, the authorize URL shows ${page.url()} instead of the login page`);
  const next = login.searchParams.get('next') ?? '';
  check(next.startsWith('/oauth/authorize?'), `the login page does not come back to the request (next=${JSON.stringify(next)})`);
  await s.screenshot(page, 'login');

  s.step = 'sign in, back to the consent page';
  await signIn(page);
  await page.waitForURL((u) => u.pathname === '/oauth/authorize');
  await heading(page, 'Autoriser une application');
  const form = page.locator('main form[action="/oauth/authorize"]');
  check(await page.getByText(APP_NAME, { exact: true }).isVisible(), `the consent page does not name the app ${JSON.stringify(APP_NAME)}`);

  s.step = 'no box ticked in advance';
  const boxes = form.getByRole('checkbox');
  const count = await boxes.count();
  check(count === 1, `the consent page shows ${count} checkbox(es), expected one (measurements:write)`);
  for (let i = 0; i < count; i += 1) {
    check(!(await boxes.nth(i).isChecked()), `checkbox ${i + 1} of the consent page is ticked in advance`);
  }
  await s.screenshot(page, 'consent');
  await s.axeCheck(page, 'consent');

  s.step = 'tick the measurements box by its label and allow';
  const box = page.getByLabel(SCOPE_LABEL, { exact: true });
  await box.check();
  check(await box.isChecked(), `the box labelled ${JSON.stringify(SCOPE_LABEL)} did not tick`);
  await s.screenshot(page, 'consent-ticked');
  await page.getByRole('button', { name: 'Autoriser', exact: true }).click();

  s.step = "the app's callback page";
  await page.waitForURL((u) => u.host === redirect.host && u.pathname === redirect.pathname);
  const back = new URL(page.url());
  check(back.searchParams.get('code'), `the callback has no code: ${page.url()}`);
  check(!back.searchParams.get('error'), `the callback carries an error: ${page.url()}`);
  await heading(page, 'Equilibre est connectée');
  await s.screenshot(page, 'callback');

  s.step = '/apps lists the app as connected';
  await page.goto(new URL('/apps', base).href);
  await heading(page, 'Applications');
  const connected = connectedSection(page);
  await connected.waitFor();
  check(await connected.getByText(APP_NAME, { exact: true }).isVisible(), `"Mes applications connectées" does not list ${APP_NAME}`);
  check(await connected.getByText(SCOPE_LABEL).isVisible(), `"Mes applications connectées" does not say what ${APP_NAME} may do`);
  await s.screenshot(page, 'apps-connected');
  await s.axeCheck(page, 'apps');
}

// A native app's redirect URI (e.g. fr.pharmaclair.app:/auth) is not for the browser to load:
// it hands it to the app. What must not happen is the page's Content-Security-Policy blocking
// the form's redirect there (form-action applies to redirects), leaving a code issued that the
// app never receives.
async function native(page, s) {
  const redirect = new URL(authorizeUrl).searchParams.get('redirect_uri');

  s.step = 'sign in, then the consent page';
  await page.goto(authorizeUrl);
  check(new URL(page.url()).pathname === '/login', `without a session, the authorize URL shows ${page.url()}`);
  await signIn(page);
  await page.waitForURL((u) => u.pathname === '/oauth/authorize');
  await heading(page, 'Autoriser une application');
  const box = page.locator('main form[action="/oauth/authorize"]').getByRole('checkbox');
  check((await box.count()) === 1, `the consent page shows ${await box.count()} checkbox(es), expected one`);
  check(!(await box.isChecked()), 'the box is ticked in advance');
  await box.check();
  await s.screenshot(page, 'consent-native');
  await s.axeCheck(page, 'consent-native');

  s.step = `allow: the browser goes on to ${redirect}`;
  // Chromium hands the private-use scheme to the system (nothing to load here); a blocked
  // redirect shows as a form-action violation and the request aborted.
  const posted = page.waitForEvent('requestfinished', (r) => r.method() === 'POST' && new URL(r.url()).pathname === '/oauth/authorize').then(() => 'finished');
  const aborted = page.waitForEvent('requestfailed', (r) => r.method() === 'POST' && new URL(r.url()).pathname === '/oauth/authorize').then((r) => `failed: ${r.failure()?.errorText}`);
  await page.getByRole('button', { name: 'Autoriser', exact: true }).click();
  const outcome = await Promise.race([posted, aborted]);
  await page.waitForTimeout(2000);
  console.log(`the consent POST ${outcome}; now at ${page.url()}`);
  const blocked = s.cspViolations.filter((v) => /form-action/.test(v));
  check(blocked.length === 0,
    `"Autoriser" did not reach the app: the POST ${outcome}, and the consent page's Content-Security-Policy ` +
    `(form-action 'self': webmail/src/oauth.rs consent_csp only adds scheme://host origins) blocked the ` +
    `browser's redirect to ${redirect}, after the hub had issued the code (its log: POST /oauth/authorize 303):\n  ${blocked.join('\n  ')}`);
  s.cspViolations.length = 0;
}

async function revoke(page, s) {
  s.step = 'sign in';
  await page.goto(new URL('/profile', base).href);
  check(new URL(page.url()).pathname === '/login', `without a session, /profile shows ${page.url()}`);
  await signIn(page);
  await page.waitForURL((u) => u.pathname === '/profile');

  s.step = "the profile shows the app's measurements";
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
  await s.screenshot(page, 'profile');
  await s.axeCheck(page, 'profile');

  s.step = "withdraw the app's access";
  await page.goto(new URL('/apps', base).href);
  await heading(page, 'Applications');
  const connected = connectedSection(page);
  await connected.getByRole('button', { name: `Retirer l'accès de ${APP_NAME}` }).click();
  await page.waitForURL((u) => u.pathname === '/apps' && u.searchParams.get('done') === 'revoked');
  await page.getByRole('status').filter({ hasText: "L'autorisation a été retirée" }).waitFor();
  check(!(await connectedSection(page).getByText(APP_NAME, { exact: true }).isVisible()),
    `after "Retirer l'accès", "Mes applications connectées" still lists ${APP_NAME}`);
  await s.screenshot(page, 'apps-revoked');
  await s.axeCheck(page, 'apps-revoked');
}

await run({ shots, prefix: `${phase}-`, viewport: { width: 1024, height: 768 }, passed: {
  connect: 'PASS the patient connected the app, ticking its one scope herself, and /apps lists it',
  native: "PASS the consent page let the browser go on to the native app's redirect URI",
  revoke: "PASS the profile shows the app's weights and chart, and the patient withdrew its access",
}[phase] }, async (page, s) => {
  if (phase === 'connect') await connect(page, s);
  else if (phase === 'native') await native(page, s);
  else await revoke(page, s);
});
