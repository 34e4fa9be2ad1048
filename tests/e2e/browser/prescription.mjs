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

import { run, check, heading } from './harness.mjs';

const [qrUrl, login, password, shots] = process.argv.slice(2);
if (!qrUrl || !login || !password || !shots) {
  console.error('usage: node prescription.mjs <qr-url> <login> <password> <screenshot-dir>');
  process.exit(2);
}

async function dispense(page, s) {
  s.step = 'the QR code URL, signed out: the login page';
  await page.goto(qrUrl);
  const at = new URL(page.url());
  check(at.pathname === '/login', `without a session the QR code URL shows ${page.url()}`);
  check((at.searchParams.get('next') ?? '').startsWith('/ordonnance/'), `the login page does not come back to the prescription: ${page.url()}`);
  await heading(page, 'Connexion');

  s.step = 'sign in as the pharmacist, back to the prescription';
  await page.getByLabel('Identifiant').fill(login);
  await page.getByLabel('Mot de passe').fill(password);
  await page.getByRole('button', { name: 'Se connecter' }).click();
  await page.waitForURL((u) => u.pathname.startsWith('/ordonnance/'));
  await heading(page, 'Ordonnance à délivrer');
  check(await page.getByText('Ordonnance authentique', { exact: false }).isVisible(), 'the page does not say the prescription was checked');
  await s.screenshot(page, 'checked');
  await s.axeCheck(page, 'prescription');

  s.step = 'one box of line 1, the rest of line 2';
  await page.locator('#q0').fill('1');
  const rest = page.locator('fieldset').nth(1).getByLabel('Délivrer tout le reste de cette délivrance');
  await rest.check();
  check(await rest.isChecked(), 'the "rest" box of line 2 did not tick');
  await page.getByRole('button', { name: 'Enregistrer la délivrance' }).click();
  await heading(page, 'Délivrance enregistrée');
  check(await page.getByText('Il reste à délivrer', { exact: false }).isVisible(), 'the confirmation does not say something remains');
  await s.screenshot(page, 'recorded');
  await s.axeCheck(page, 'confirmation');
}

await run({ shots, prefix: 'prescription-', viewport: { width: 412, height: 915 }, passed: 'PASS the pharmacist signed in from the QR code URL and recorded a dispensing' }, async (page, s) => {
  await dispense(page, s);
});
