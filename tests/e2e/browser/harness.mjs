// What the browser scenarios share: Debian's Chromium launched headless through playwright-core
// (never a browser download), screenshots, axe-core checks (WCAG 2.0/2.1 A and AA; "serious"
// and "critical" violations fail the run), Content-Security-Policy violations reported by the
// browser (any fails the run), and the report of the step that failed.
//
// A scenario script calls `run(options, async (page, s) => { ... })`: it sets `s.step` before
// each step, calls `s.screenshot(page, name)` and `s.axeCheck(page, name)`, and throws (e.g.
// through `check`) when something is wrong. `run` exits the process: 0 when every step passed,
// 1 otherwise, with what failed and where, and a screenshot of the failure.

import { mkdtemp, mkdir, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { chromium } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';
const AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
const BLOCKING_IMPACTS = new Set(['serious', 'critical']);

const require = createRequire(import.meta.url);
const axeSource = await readFile(require.resolve('axe-core/axe.min.js'), 'utf8');

export class StepFailure extends Error {}

export function check(condition, message) {
  if (!condition) throw new StepFailure(message);
}

export function path(page) {
  return new URL(page.url()).pathname;
}

/// Waits for the page's h1 and checks its text.
export async function heading(page, text) {
  const h1 = page.getByRole('heading', { level: 1 });
  await h1.waitFor();
  const shown = (await h1.textContent()).trim();
  check(shown === text, `expected the page titled ${JSON.stringify(text)}, got ${JSON.stringify(shown)} at ${page.url()}`);
}

/// Follows a link of the main navigation.
export async function navigate(page, label) {
  await page.getByRole('navigation', { name: 'Navigation principale' }).getByRole('link', { name: label }).click();
  await page.waitForLoadState('load');
}

class Scenario {
  constructor(shots, prefix) {
    this.shots = shots;
    this.prefix = prefix;
    this.step = 'start';
    this.shotNumber = 0;
    this.accessibility = []; // { page, url, id, impact, help, nodes }
    this.cspViolations = [];
  }

  async screenshot(page, name) {
    this.shotNumber += 1;
    const file = join(this.shots, `${this.prefix}${String(this.shotNumber).padStart(2, '0')}-${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    console.log(`screenshot ${file}`);
  }

  // axe-core is injected with page.evaluate (DevTools' Runtime.evaluate), which the pages'
  // Content-Security-Policy (script-src 'self', no inline code) does not govern: the pages run
  // under their real policy, and no CSP bypass is needed.
  async axeCheck(page, name) {
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
      if (blocking) this.accessibility.push({ page: name, url: page.url(), ...v });
    }
    console.log(`axe ${name}: ${violations.length} rule(s) violated, ${violations.filter((v) => BLOCKING_IMPACTS.has(v.impact)).length} serious or critical`);
  }

  /// After the scenario's own steps: what axe-core and the browser's CSP reports found.
  verdict() {
    this.step = 'accessibility';
    if (this.accessibility.length > 0) {
      const list = this.accessibility.map(
        (v) => `  ${v.page} (${v.url}): ${v.id} [${v.impact}] ${v.help}\n` +
          v.nodes.map((n) => `      ${n.target}  ${n.html}`).join('\n'),
      );
      throw new StepFailure(`axe-core found ${this.accessibility.length} serious or critical violation(s) (WCAG 2.0/2.1 A and AA):\n${list.join('\n')}`);
    }
    this.step = 'content security policy';
    check(this.cspViolations.length === 0, `the browser reported Content-Security-Policy violations:\n  ${this.cspViolations.join('\n  ')}`);
  }
}

/// Runs `body(page, scenario)` in a fresh headless Chromium and exits the process with its
/// outcome. Options: `shots` (screenshot directory), `prefix` (of screenshot names),
/// `viewport` (default 1024×768), `device` (more browser-context options, e.g. `isMobile`,
/// `hasTouch`, `userAgent`, to stand for a phone), `passed` (printed when everything passed).
export async function run({ shots, prefix = '', viewport = { width: 1024, height: 768 }, device = {}, passed }, body) {
  const s = new Scenario(shots, prefix);
  const userData = await mkdtemp(join(tmpdir(), 'mshub-chromium-'));
  await mkdir(shots, { recursive: true });
  let context;
  let page;
  let failed = false;
  try {
    s.step = 'launch chromium';
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
      viewport,
      ...device,
    });
    context.setDefaultTimeout(30_000);
    context.setDefaultNavigationTimeout(30_000);
    page = context.pages()[0] ?? (await context.newPage());
    page.on('console', (m) => {
      if (m.type() === 'error' && /Content[- ]Security[- ]Policy/i.test(m.text())) {
        s.cspViolations.push(`${page.url()}: ${m.text()}`);
      }
    });
    page.on('pageerror', (e) => console.log(`page error at ${page.url()}: ${e.message}`));
    await body(page, s);
    s.verdict();
    console.log(passed);
  } catch (e) {
    failed = true;
    const where = page ? ` at ${page.url()}` : '';
    console.error(`FAIL during "${s.step}"${where}: ${e instanceof StepFailure ? e.message : (e.stack ?? e)}`);
    if (page) {
      try {
        const file = join(shots, `${prefix}failure.png`);
        await page.screenshot({ path: file, fullPage: true });
        console.error(`screenshot of the failure: ${file}`);
      } catch {
        // The browser may be gone: the message above is what matters.
      }
    }
  } finally {
    if (context) await context.close().catch(() => {});
    await rm(userData, { recursive: true, force: true });
  }
  process.exit(failed ? 1 : 0);
}
