// The demo patient, Camille, uses her space on a phone (390×844 CSS pixels, a mobile user agent,
// touch): she adds a photo of a prescription through the camera input, a masked PDF, and tries a
// photo named as a PDF (refused in French, her title kept); she reads her profile and fills her
// medical profile (an allergy, a vaccination, a person to call; a vaccination in the future is
// refused); she adds an appointment to her agenda. Every page visited is checked with axe-core
// (WCAG 2.0/2.1 A and AA; a "serious" or "critical" violation fails the run), must not scroll
// sideways (the widest element past the screen's edge is named), and is photographed.
//
// usage: node phone.mjs <base-url> <screenshot-dir> <photo.jpg> <report.pdf> <fake.pdf>
// Run by tests/e2e/phone.rs, which writes the three files and checks with curl what was stored.
// Exits 0 when every step passed; otherwise prints what failed (and where) and exits 1.

import { run, check, path, heading, navigate } from './harness.mjs';

const INS = '284057511204339';
const PASSWORD = 'demo-camille';
const PHONE = { width: 390, height: 844 };
const DEVICE = {
  isMobile: true,
  hasTouch: true,
  userAgent:
    'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36',
  timezoneId: 'Europe/Paris',
};

const PHOTO_TITLE = 'Ordonnance du Dr Martin (photo)';
const PDF_TITLE = 'Bilan sanguin de mars';
const KEPT_TITLE = 'Échographie mal nommée';
const ALLERGY = { substance: 'Pénicilline', reaction: 'urticaire géante', severity: 'severe', label: 'sévère' };
const VACCINE = { name: 'dTcaP', iso: '2021-03-15', french: '15 mars 2021' };
const CONTACT = { name: 'Julien Moreau', relation: 'frère', phone: '06 12 34 56 78' };
const APPOINTMENT = { title: 'Dentiste, détartrage', start: '14:30', end: '15:15', place: 'Cabinet dentaire, 12 rue de la République, Lyon' };
const MONTHS = ['janvier', 'février', 'mars', 'avril', 'mai', 'juin', 'juillet', 'août', 'septembre', 'octobre', 'novembre', 'décembre'];

const [base, shots, photo, pdf, fake] = process.argv.slice(2);
if (!base || !shots || !photo || !pdf || !fake) {
  console.error('usage: node phone.mjs <base-url> <screenshot-dir> <photo.jpg> <report.pdf> <fake.pdf>');
  process.exit(2);
}

/// Whether the page scrolls sideways; if so, the element reaching furthest right (the deepest
/// of those reaching as far), as a CSS selector with its width and right edge. The screen's
/// width is the layout viewport's (`clientWidth`, 390 px): as a phone's browser does, Chromium
/// emulating one (`isMobile`) widens `innerWidth` to content wider than the screen and zooms
/// out, so `scrollWidth <= innerWidth` alone would hold on a page that overflows.
async function sidewaysScroll(page) {
  return page.evaluate(() => {
    const doc = document.documentElement;
    const limit = Math.min(window.innerWidth, doc.clientWidth);
    if (doc.scrollWidth <= limit) return null;
    const selector = (el) => {
      const parts = [];
      for (let e = el; e && e !== doc; e = e.parentElement) {
        if (e.id) {
          parts.unshift(`${e.localName}#${CSS.escape(e.id)}`);
          break;
        }
        let part = e.localName + [...e.classList].map((c) => `.${CSS.escape(c)}`).join('');
        const same = e.parentElement ? [...e.parentElement.children].filter((c) => c.localName === e.localName) : [];
        if (same.length > 1) part += `:nth-of-type(${same.indexOf(e) + 1})`;
        parts.unshift(part);
      }
      return parts.join(' > ');
    };
    let worst = null;
    // Document order: a descendant comes after its ancestor, so `>=` keeps the deepest.
    for (const el of document.body.querySelectorAll('*')) {
      const r = el.getBoundingClientRect();
      const right = r.right + window.scrollX;
      if (right > limit && (!worst || right >= worst.right)) worst = { el, right, width: r.width };
    }
    return {
      scrollWidth: doc.scrollWidth,
      limit,
      selector: worst ? selector(worst.el) : '(none found)',
      width: worst ? Math.round(worst.width) : 0,
      right: worst ? Math.round(worst.right) : 0,
      html: worst ? worst.el.outerHTML.slice(0, 160) : '',
    };
  });
}

/// Every page: photographed, checked by axe-core, and checked for sideways scrolling (kept to
/// the end so that one overflow does not hide the next pages').
const overflows = [];
async function inspect(page, s, name) {
  await s.screenshot(page, name);
  await s.axeCheck(page, name);
  const wide = await sidewaysScroll(page);
  if (wide) {
    const said = `${name} (${path(page)}): ${wide.scrollWidth} px of content for ${wide.limit} px; ` +
      `widest past the edge: ${wide.selector}, ${wide.width} px wide, right edge at ${wide.right} px — ${wide.html}`;
    console.log(`overflow ${said}`);
    overflows.push(said);
  } else {
    console.log(`fits ${name}: no sideways scrolling at ${PHONE.width} px`);
  }
}

/// `YYYY-MM-DD` of the day `days` from today (the browser's clock, in Paris).
function isoDay(days) {
  const d = new Date();
  d.setDate(d.getDate() + days);
  const two = (n) => String(n).padStart(2, '0');
  return { iso: `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}`, french: `${d.getDate()} ${MONTHS[d.getMonth()]} ${d.getFullYear()}`, date: d };
}

/// Types `iso` (YYYY-MM-DD) into a date input with the keyboard, day and month in the order
/// the browser's date field shows them: dd/mm/yyyy for a French phone, mm/dd/yyyy for a
/// Chromium that has only its en-US resources (Debian's package without chromium-l10n). The
/// order is found by typing a probe date first.
async function typeDate(page, input, iso) {
  await input.focus();
  await page.keyboard.type('01022000');
  const probe = await input.inputValue();
  check(probe === '2000-02-01' || probe === '2000-01-02', `typing 01022000 in a date input gave ${JSON.stringify(probe)}`);
  const [year, month, dayOfMonth] = iso.split('-');
  // Emptied, and focused anew so that typing starts at its first field.
  await input.fill('');
  await input.evaluate((el) => el.blur());
  await input.focus();
  await page.keyboard.type(probe === '2000-02-01' ? `${dayOfMonth}${month}${year}` : `${month}${dayOfMonth}${year}`);
  const typed = await input.inputValue();
  check(typed === iso, `typing ${iso} in the date input (${probe === '2000-02-01' ? 'dd/mm/yyyy' : 'mm/dd/yyyy'}) gave ${JSON.stringify(typed)}`);
}

/// The text of the `dd` that follows the `dt` labelled `label`.
async function described(page, label) {
  const dd = page.locator('dt', { hasText: label }).locator('xpath=following-sibling::dd[1]');
  return (await dd.textContent()).replace(/\s+/g, ' ').trim();
}

await run({ shots, prefix: 'phone-', viewport: PHONE, device: DEVICE, passed: 'PASS on a 390 px phone the patient added documents, filled her medical profile and added an appointment, every page fitting the screen' }, async (page, s) => {
  s.step = 'sign in';
  await page.goto(new URL('/login', base).href);
  await heading(page, 'Connexion');
  check(await page.evaluate(() => window.matchMedia('(pointer: coarse)').matches || navigator.maxTouchPoints > 0), 'the browser does not stand for a touch phone');
  await inspect(page, s, 'login');
  await page.getByLabel('Identifiant').fill(INS);
  await page.getByLabel('Mot de passe').fill(PASSWORD);
  await page.getByRole('button', { name: 'Se connecter' }).tap();
  await page.waitForURL((u) => u.pathname === '/');
  await heading(page, 'Messages reçus');
  await inspect(page, s, 'inbox');

  // ----- Documents -----
  s.step = 'documents';
  await navigate(page, 'Documents');
  await heading(page, 'Mes documents');
  await inspect(page, s, 'documents');

  s.step = 'add a photo through the camera input';
  await page.getByRole('link', { name: 'Ajouter un document' }).tap();
  await page.waitForURL((u) => u.pathname === '/documents/ajouter');
  await heading(page, 'Ajouter un document');
  await inspect(page, s, 'add-form');
  const camera = page.locator('#photo');
  check((await camera.getAttribute('capture')) === 'environment', 'the photo input does not open the back camera (capture="environment")');
  await camera.setInputFiles(photo);
  await page.locator('#type').selectOption('57833-6');
  await page.locator('#titre').fill(PHOTO_TITLE);
  await s.screenshot(page, 'add-photo-filled');
  await page.getByRole('button', { name: 'Ajouter le document' }).tap();
  await page.waitForURL((u) => /^\/documents\/[a-z2-7]{32}$/.test(u.pathname));
  await heading(page, PHOTO_TITLE);
  const author = await described(page, 'Auteur');
  check(author.includes('ajouté par le patient'), `the photo's author reads ${JSON.stringify(author)}, not "ajouté par le patient"`);
  const image = page.getByRole('img', { name: `Image : ${PHOTO_TITLE}` });
  await image.waitFor();
  await page.waitForFunction((alt) => {
    const img = [...document.images].find((i) => i.alt === alt);
    return img && img.complete;
  }, `Image : ${PHOTO_TITLE}`);
  const natural = await image.evaluate((img) => ({ width: img.naturalWidth, height: img.naturalHeight }));
  check(natural.width > 0 && natural.height > 0, 'the browser could not decode the photo shown on its page');
  console.log(`photo shown: ${natural.width}×${natural.height}, drawn ${Math.round((await image.boundingBox()).width)} px wide`);
  await inspect(page, s, 'photo-document');

  s.step = 'add a masked PDF through the file input';
  await page.getByRole('link', { name: '← Tous les documents' }).tap();
  await heading(page, 'Mes documents');
  await page.getByRole('link', { name: 'Ajouter un document' }).tap();
  await page.waitForURL((u) => u.pathname === '/documents/ajouter');
  await page.locator('#fichier').setInputFiles(pdf);
  await page.locator('#type').selectOption('11502-2');
  await page.locator('#titre').fill(PDF_TITLE);
  await page.locator('#masque').check();
  await page.getByRole('button', { name: 'Ajouter le document' }).tap();
  await page.waitForURL((u) => /^\/documents\/[a-z2-7]{32}$/.test(u.pathname));
  await heading(page, PDF_TITLE);
  const visibility = await described(page, 'Visibilité');
  check(visibility.startsWith('Masqué'), `the masked PDF's visibility reads ${JSON.stringify(visibility)}`);
  await inspect(page, s, 'pdf-document');

  s.step = 'the list shows the PDF masked';
  await page.getByRole('link', { name: '← Tous les documents' }).tap();
  await heading(page, 'Mes documents');
  const item = page.locator('ul.documents > li', { has: page.getByRole('link', { name: PDF_TITLE, exact: true }) });
  check((await item.count()) === 1, `the documents page does not list "${PDF_TITLE}" once`);
  await item.getByText('Masqué aux professionnels').waitFor();
  const photoItem = page.locator('ul.documents > li', { has: page.getByRole('link', { name: PHOTO_TITLE, exact: true }) });
  check((await photoItem.count()) === 1, `the documents page does not list "${PHOTO_TITLE}" once`);
  check((await photoItem.getByText('Masqué aux professionnels').count()) === 0, 'the photo, not masked, is tagged as masked');
  await inspect(page, s, 'documents-added');

  s.step = 'a photo named as a PDF is refused';
  await page.getByRole('link', { name: 'Ajouter un document' }).tap();
  await page.waitForURL((u) => u.pathname === '/documents/ajouter');
  await page.locator('#fichier').setInputFiles(fake);
  await page.locator('#titre').fill(KEPT_TITLE);
  await page.getByRole('button', { name: 'Ajouter le document' }).tap();
  const refusal = page.getByRole('alert');
  await refusal.waitFor();
  const why = (await refusal.textContent()).replace(/\s+/g, ' ').trim();
  check(why.includes("porte l'extension .pdf mais son contenu est une image JPEG"), `the refusal does not say the file is a JPEG named .pdf: ${JSON.stringify(why)}`);
  const kept = await page.locator('#titre').inputValue();
  check(kept === KEPT_TITLE, `the title typed was not kept: ${JSON.stringify(kept)}`);
  await heading(page, 'Ajouter un document');
  await inspect(page, s, 'add-refused');

  // ----- Profile -----
  s.step = 'profile';
  await navigate(page, 'Profil');
  await heading(page, 'Mon profil');
  const birth = await described(page, 'Date de naissance');
  check(birth === '12 mai 1984', `the birth date reads ${JSON.stringify(birth)}, not "12 mai 1984"`);
  await inspect(page, s, 'profile');

  s.step = 'medical profile';
  await page.getByRole('link', { name: 'Voir et compléter mon profil médical' }).tap();
  await page.waitForURL((u) => u.pathname === '/profile/medical');
  await heading(page, 'Mon profil médical');
  await inspect(page, s, 'medical-profile');
  const section = (name) => page.getByRole('region', { name });
  const entry = (name, text) => section(name).locator('ul.entries > li').filter({ has: page.locator('strong', { hasText: text }) });

  s.step = 'add an allergy';
  await page.locator('#a-subst').fill(ALLERGY.substance);
  await page.locator('#a-react').fill(ALLERGY.reaction);
  await page.locator('#a-sev').selectOption(ALLERGY.severity);
  await page.getByRole('button', { name: "Ajouter l'allergie" }).tap();
  const allergy = entry('Allergies et intolérances', ALLERGY.substance);
  await allergy.waitFor();
  const allergyText = (await allergy.textContent()).replace(/\s+/g, ' ');
  check(allergyText.includes(ALLERGY.reaction) && allergyText.includes(`gravité ${ALLERGY.label}`), `the allergy reads ${JSON.stringify(allergyText)}`);

  s.step = 'add a vaccination, its date typed';
  await page.locator('#v-name').fill(VACCINE.name);
  const vDate = page.locator('#v-date');
  await typeDate(page, vDate, VACCINE.iso);
  await page.getByRole('button', { name: 'Ajouter la vaccination' }).tap();
  const vaccination = entry('Vaccinations', VACCINE.name);
  await vaccination.waitFor();
  const vaccinationText = (await vaccination.textContent()).replace(/\s+/g, ' ');
  check(vaccinationText.includes(`le ${VACCINE.french}`), `the vaccination reads ${JSON.stringify(vaccinationText)}`);

  s.step = 'add a person to call';
  await page.locator('#c-name').fill(CONTACT.name);
  await page.locator('#c-rel').fill(CONTACT.relation);
  await page.locator('#c-phone').fill(CONTACT.phone);
  await page.getByRole('button', { name: 'Ajouter la personne' }).tap();
  const contact = entry('Personnes à prévenir', CONTACT.name);
  await contact.waitFor();
  const call = contact.getByRole('link', { name: CONTACT.phone });
  check((await call.getAttribute('href')) === `tel:${CONTACT.phone.replace(/ /g, '')}`, 'the phone number is not a tel: link');
  await inspect(page, s, 'medical-profile-filled');

  s.step = 'a vaccination in the future is refused';
  const vaccinations = section('Vaccinations').locator('ul.entries > li');
  const before = await vaccinations.count();
  const future = isoDay(400);
  await page.locator('#v-name').fill('grippe');
  await typeDate(page, vDate, future.iso);
  // The input's max (today) stops the form in the browser first…
  const stopped = await vDate.evaluate((el) => el.validity.rangeOverflow);
  check(stopped, 'the date input accepts a date after today (no max)');
  await page.getByRole('button', { name: 'Ajouter la vaccination' }).tap();
  check(path(page) === '/profile/medical', `the browser sent a vaccination dated after today (at ${page.url()})`);
  // …and the hub refuses it as well, for a browser without date inputs or their checks.
  await vDate.evaluate((el) => { el.form.noValidate = true; });
  await page.getByRole('button', { name: 'Ajouter la vaccination' }).tap();
  const futureAlert = page.getByRole('alert');
  await futureAlert.waitFor();
  const futureWhy = (await futureAlert.textContent()).replace(/\s+/g, ' ').trim();
  check(futureWhy.includes('est dans le futur'), `the refusal of a future date reads ${JSON.stringify(futureWhy)}`);
  check((await vaccinations.count()) === before, `${(await vaccinations.count()) - before} vaccination(s) added with a future date`);
  check((await entry('Vaccinations', 'grippe').count()) === 0, 'the future "grippe" vaccination is listed');
  check((await page.locator('#v-name').inputValue()) === 'grippe', 'the vaccine typed was not kept after the refusal');
  await inspect(page, s, 'medical-profile-refused');

  // ----- Agenda -----
  s.step = 'agenda';
  await navigate(page, 'Agenda');
  await heading(page, 'Agenda');
  await inspect(page, s, 'agenda');

  s.step = 'add an appointment';
  const day = isoDay(30);
  await page.getByRole('link', { name: 'Ajouter un rendez-vous' }).tap();
  await page.waitForURL((u) => u.pathname === '/agenda/ajouter');
  await heading(page, 'Ajouter un rendez-vous');
  await inspect(page, s, 'appointment-form');
  await page.locator('#title').fill(APPOINTMENT.title);
  await page.locator('#date').fill(day.iso);
  await page.locator('#start').fill(APPOINTMENT.start);
  await page.locator('#end').fill(APPOINTMENT.end);
  await page.locator('#place').fill(APPOINTMENT.place);
  await s.screenshot(page, 'appointment-filled');
  await page.getByRole('button', { name: 'Ajouter le rendez-vous' }).tap();
  await page.waitForURL((u) => u.pathname === '/agenda' && u.searchParams.get('done') === 'added');
  await page.getByRole('status').filter({ hasText: 'Le rendez-vous a été ajouté' }).waitFor();
  const upcoming = section('Prochains rendez-vous').locator('li').filter({ has: page.locator('strong', { hasText: APPOINTMENT.title }) });
  check((await upcoming.count()) === 1, `"${APPOINTMENT.title}" is not listed once under "Prochains rendez-vous"`);
  const when = (await upcoming.textContent()).replace(/\s+/g, ' ');
  check(when.includes(`${day.french} à ${APPOINTMENT.start}`) && when.includes(APPOINTMENT.place), `the appointment reads ${JSON.stringify(when)}, not on ${day.french} at ${APPOINTMENT.start} at ${APPOINTMENT.place}`);
  await inspect(page, s, 'agenda-added');

  s.step = 'no page scrolls sideways';
  check(overflows.length === 0, `at ${PHONE.width} px, ${overflows.length} page(s) scroll sideways:\n  ${overflows.join('\n  ')}`);
});
