// The web page end to end in headless Chromium (Debian's /usr/bin/chromium driven by
// playwright-core) against a real server on the golden checkpoint, with API_KEY set. Screenshots of
// every view go to test-artifacts/ui/ (git-ignored); UPDATE_DOCS_SCREENSHOT=1 also rewrites
// docs/ui-screenshot.png, the README's picture.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { goldenCases, type GoldenCase } from './helpers/golden.js';
import { repoRoot } from './helpers/paths.js';
import { postJson, startTestServer, type TestServer } from './helpers/server.js';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const ARTIFACTS = join(repoRoot, 'test-artifacts', 'ui');
const KEY = 'ui-browser-test-key';
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing (apt-get install chromium): the browser tests of the web page are skipped`;
if (skip) console.log(`# ${skip}`);

describe('the web page in headless Chromium', { skip, timeout: 60_000 }, () => {
  let server: TestServer;
  let profile: string;
  let context: BrowserContext;
  let page: Page;
  let cases: GoldenCase[];
  const pageErrors: string[] = [];
  const api = async (path: string, body: unknown) => {
    const { status, json } = await postJson(`${server.url}${path}`, body, { authorization: `Bearer ${KEY}` });
    assert.equal(status, 200, JSON.stringify(json));
    return json;
  };
  const sequenceOf = (id: string) => cases.find((c) => c.id === id)!.sequence;
  const shot = (name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
  const runTask = async (task: string, sequence?: string) => {
    if (sequence !== undefined) await page.fill('#sequence', sequence);
    await page.check(`input[name="task"][value="${task}"]`);
    await page.click('#run');
    await page.waitForFunction(() => (window as unknown as { esm2ui: { state: string } }).esm2ui.state !== 'running');
    assert.equal(await page.isHidden('#run-error'), true, `no error: ${await page.textContent('#run-error')}`);
  };
  const exposed = <T>(name: string) => page.evaluate((key) => (window as unknown as { esm2ui: Record<string, unknown> }).esm2ui[key], name) as Promise<T>;

  before(async () => {
    [server, cases] = await Promise.all([startTestServer({ API_KEY: KEY, BATCH_QUEUE_MAX_WAIT_MS: '2' }), goldenCases()]);
    await mkdir(ARTIFACTS, { recursive: true });
    profile = await mkdtemp(join(tmpdir(), 'esm2-chromium-'));
    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    page.on('pageerror', (err) => pageErrors.push(err.message));
  });
  after(async () => {
    await context?.close();
    if (profile) await rm(profile, { recursive: true, force: true });
    await server?.close();
  });

  test('asks for the API key, keeps it in memory only, and shows the model card', async () => {
    await page.goto(`${server.url}/ui`);
    await page.waitForSelector('#key-form:not([hidden])');
    await page.fill('#key-input', KEY);
    await page.click('#key-submit');
    await page.waitForSelector('[data-fact="model"]');
    assert.equal(await page.textContent('[data-fact="model"]'), server.runtime.modelName);
    assert.match((await page.textContent('[data-fact="devices"]')) ?? '', /cpu fp32/, 'each device with its precision');
    assert.equal(await page.textContent('[data-fact="family"]'), 'ESM-2');
    assert.equal(await page.isHidden('#demo-warning'), true);
    assert.deepEqual(await page.evaluate(() => [localStorage.length, sessionStorage.length, document.cookie]), [0, 0, '']);
  });

  test('an invalid sequence shows the bad character and its position, as the server reports it', async () => {
    await page.fill('#sequence', '>bad\nMKTJVR');
    const status = (await page.textContent('#sequence-status')) ?? '';
    assert.match(status, /invalid character 'J' at position 4 \(line 2, column 4/);
    assert.equal(await page.getAttribute('#sequence', 'aria-invalid'), 'true');
    assert.equal(await page.isDisabled('#run'), true);
    const refused = await postJson(`${server.url}/v1/score`, { sequence: 'MKTJVR', scan: true }, { authorization: `Bearer ${KEY}` });
    assert.equal(refused.status, 422);
    assert.match(String(refused.json.detail), /invalid character 'J' at position 4/);
    await shot('invalid-sequence');
  });

  test('the scan heatmap has L × 20 cells equal to the API matrix, and the progress bar reaches 100%', async () => {
    const sequence = sequenceOf('lysozyme_frag');
    const L = sequence.length;
    await runTask('scan', `>lysozyme fragment\n${sequence}`);
    const cells = await page.$$eval('#scan-heatmap rect[data-value]', (rects) =>
      rects.map((r) => [Number(r.getAttribute('data-i')), Number(r.getAttribute('data-j')), Number(r.getAttribute('data-value')), r.hasAttribute('data-wt') ? 1 : 0]),
    );
    assert.equal(cells.length, L * 20);
    const { amino_acids, matrix } = (await api('/v1/score', { sequence, scan: true })) as { amino_acids: string[]; matrix: number[][] };
    const seen = new Set<string>();
    for (const [i, j, value, wt] of cells) {
      seen.add(`${i},${j}`);
      assert.equal(value, matrix[i][j], `cell ${i},${j}`);
      assert.equal(wt, amino_acids[j] === sequence[i] ? 1 : 0);
    }
    assert.equal(seen.size, L * 20);

    assert.deepEqual(await page.$eval('#progress', (p) => [(p as HTMLProgressElement).value, (p as HTMLProgressElement).max]), [100, 100]);
    const progress = await exposed<[number, number][]>('scanProgress');
    assert.deepEqual(progress.at(-1), [L, L]);
    assert.ok(progress.some(([done, total]) => done > 0 && done < total), 'intermediate progress came from the server');

    await page.hover('#scan-heatmap rect[data-pos="2"][data-aa="A"]');
    assert.match((await page.textContent('#tooltip')) ?? '', new RegExp(`^${sequence[1]}2A\\nscore `));
    await page.focus('#scan-view .scroller');
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('ArrowRight');
    assert.match((await page.textContent('#scan-view .readout')) ?? '', new RegExp(`^${sequence[1]}2${amino_acids[0]}`));
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#scan-view button[data-download="CSV (matrix)"]')]);
    const csv = (await readFile((await download.path())!, 'utf8')).trim().split('\n');
    assert.equal(download.suggestedFilename(), 'lysozyme_scan.csv');
    assert.equal(csv[0], ['position', 'wild_type', ...amino_acids].join(','));
    assert.equal(csv.length, L + 1);
    assert.deepEqual(csv[2].split(',').slice(2).map(Number), matrix[1]);

    const [png] = await Promise.all([page.waitForEvent('download'), page.click('#scan-view button[data-download="PNG"]')]);
    await png.saveAs(join(ARTIFACTS, 'scan-download.png'));
    const image = await readFile((await png.path())!);
    assert.equal(image.subarray(1, 4).toString('latin1'), 'PNG');
    assert.ok(image.readUInt32BE(16) > 2 * 8 * L, `the PNG is the whole heatmap (${image.readUInt32BE(16)} px wide)`);

    await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
    await page.hover('#scan-heatmap rect[data-pos="30"][data-aa="W"]');
    await shot('scan');
    if (process.env.UPDATE_DOCS_SCREENSHOT === '1') await page.screenshot({ path: join(repoRoot, 'docs', 'ui-screenshot.png'), fullPage: true });
    await page.mouse.move(0, 0);
  });

  test('the contact map has L × L cells equal to the API contacts; threshold and top-L/5 list', async () => {
    const sequence = sequenceOf('seed_example');
    const L = sequence.length;
    await runTask('contacts', sequence);
    assert.deepEqual(await page.$eval('#contact-map', (c) => [c.getAttribute('data-rows'), c.getAttribute('data-cols')]), [String(L), String(L)]);
    const drawn = await exposed<{ rows: number; cols: number; values: number[][]; above: number }>('contacts');
    const json = (await api('/v1/embed', { sequences: [sequence], include: ['contacts'] })) as { results: { contacts: number[][] }[] };
    const contacts = json.results[0].contacts;
    assert.equal(drawn.values.length, L);
    assert.ok(drawn.values.every((row) => row.length === L));
    assert.deepEqual(drawn.values, contacts);
    assert.equal(await page.locator('#top-contacts tbody tr').count(), Math.floor(L / 5));

    await page.fill('#contact-threshold', '0.6');
    let above = 0;
    contacts.forEach((row, i) => row.forEach((p, j) => (above += i < j && p >= 0.6 ? 1 : 0)));
    assert.equal((await exposed<{ above: number }>('contacts')).above, above);
    assert.match((await page.textContent('#contacts-above')) ?? '', new RegExp(`^${above} pairs`));
    await shot('contacts');
  });

  test('per-residue view: log-likelihood per position, and fill-mask for a clicked position', async () => {
    const sequence = sequenceOf('seed_example');
    await runTask('residues', sequence);
    const values = await page.$$eval('#pll-plot circle[data-value]', (points) => points.map((p) => Number(p.getAttribute('data-value'))));
    const json = (await api('/v1/pll', { sequences: [sequence], per_position: true })) as { results: { per_position: number[] }[] };
    assert.deepEqual(values, json.results[0].per_position);

    await page.click('#pll-plot circle[data-i="4"]');
    await page.waitForSelector('#fill-mask-table');
    assert.match((await page.textContent('#fill-mask-table caption')) ?? '', /Position 5 \(wild type R\)/);
    const shown = await page.$$eval('#fill-mask-table tbody tr', (rows) => rows.map((r) => r.querySelector('td')!.textContent!.slice(0, 1)));
    const fill = (await api('/v1/fill-mask', { sequence: `${sequence.slice(0, 4)}<mask>${sequence.slice(5)}`, top_k: 10 })) as {
      predictions: { tokens: { token: string }[] }[];
    };
    assert.deepEqual(shown, fill.predictions[0].tokens.map((t) => t.token));
    await shot('residues');
  });

  test('embedding view: the mean vector plotted; safetensors download', async () => {
    await runTask('embed', sequenceOf('seed_example'));
    assert.equal(await page.locator('#embedding-plot circle').count(), 32);
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('button[data-download^="safetensors"]')]);
    const bytes = await readFile((await download.path())!);
    const header = JSON.parse(bytes.subarray(8, 8 + Number(bytes.readBigUInt64LE(0))).toString('utf8')) as Record<string, { shape: number[] }>;
    assert.deepEqual(header['0/mean/2'].shape, [32]);
    assert.deepEqual(header['0/per_residue/2'].shape, [28, 32]);
    await shot('embedding');
  });

  test('the demo model’s warning; a reload forgets the key', async () => {
    await page.route('**/v1/models', async (route) => {
      const response = await route.fetch({ headers: { ...route.request().headers(), authorization: `Bearer ${KEY}` } });
      await route.fulfill({ response, json: { ...(await response.json()), name: 'esm2-demo (random weights — not a trained model)' } });
    });
    await page.reload();
    await page.waitForSelector('#demo-warning:not([hidden])');
    assert.match((await page.textContent('#demo-warning')) ?? '', /random weights/);
    await page.unroute('**/v1/models');
    await shot('demo-warning');
    await page.reload();
    await page.waitForSelector('#key-form:not([hidden])');
    assert.deepEqual(pageErrors, []);
  });
});
