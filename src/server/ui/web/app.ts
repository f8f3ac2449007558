// The page's entry module: the model card and API key, the sequence box checked as the user
// types, the task choice, running a task (with progress and cancel), and errors.
import { ApiError, setApiKey } from './api.js';
import { byId, exposed, h } from './dom.js';
import { loadModelInfo, renderModelCard } from './model-card.js';
import { ESM2_VOCAB, parseSequence, type ParsedSequence } from './sequence.js';
import type { RunContext } from './views/common.js';
import { runContacts } from './views/contacts.js';
import { runEmbed } from './views/embed.js';
import { runResidues } from './views/residues.js';
import { runScan } from './views/scan.js';

const VIEWS: Record<string, { title: string; run: (ctx: RunContext) => Promise<void> }> = {
  scan: { title: 'Deep mutational scan', run: runScan },
  contacts: { title: 'Contact map', run: runContacts },
  residues: { title: 'Per-residue likelihood', run: runResidues },
  embed: { title: 'Embedding', run: runEmbed },
};

const EXAMPLE = '>ubiquitin (human)\nMQIFVKTLTGKTITLEVEPSDTIENVKAKIQDKEGIPPDQQRLIFAGKQLEDGRTLSDYNIQKESTLHLVLRLRGG';

const textarea = byId<HTMLTextAreaElement>('sequence');
const status = byId('sequence-status');
const runButton = byId<HTMLButtonElement>('run');
const cancelButton = byId<HTMLButtonElement>('cancel');
const runError = byId('run-error');
const progress = byId<HTMLProgressElement>('progress');
const progressText = byId('progress-text');
const keyForm = byId<HTMLFormElement>('key-form');
const keyInput = byId<HTMLInputElement>('key-input');

let vocab: readonly string[] = ESM2_VOCAB;
let maxLength = 1022;
let running: AbortController | undefined;
exposed.state = 'idle';

const selectedTask = () => (document.querySelector<HTMLInputElement>('input[name="task"]:checked')?.value ?? 'scan');
const truncation = () => byId<HTMLSelectElement>('truncation').value;

function showError(err: unknown): void {
  if (err instanceof ApiError && err.status === 401) askForKey('The server refused the request: it needs a valid API key.');
  runError.hidden = false;
  runError.textContent = err instanceof ApiError ? `${err.message}${err.status ? ` (HTTP ${err.status}, ${err.code})` : ''}` : `Error: ${(err as Error).message}`;
}

function askForKey(reason?: string): void {
  keyForm.hidden = false;
  if (reason) byId('key-reason').textContent = `${reason} It is kept in this page's memory only (never stored) and sent as Authorization: Bearer ….`;
  keyInput.focus();
}

/** Checks the box as the user types; returns the sequence when it can be run. */
function validate(): ParsedSequence | undefined {
  const parsed = parseSequence(textarea.value, vocab);
  status.classList.remove('bad');
  textarea.removeAttribute('aria-invalid');
  if (!parsed.ok && 'empty' in parsed) {
    status.textContent = 'Paste a protein sequence or one FASTA record (letters, <mask>; whitespace is ignored).';
    runButton.disabled = true;
    return undefined;
  }
  if (!parsed.ok) {
    const { problem } = parsed;
    const where = textarea.value.includes('\n') ? ` (line ${problem.line}, column ${problem.column} of the box)` : '';
    const select = h('button', { type: 'button', class: 'secondary', id: 'select-problem' }, 'select it');
    select.addEventListener('click', () => {
      textarea.focus();
      textarea.setSelectionRange(problem.start, problem.end);
    });
    status.classList.add('bad');
    status.replaceChildren(`✗ ${problem.message}${where} `, ...(problem.character ? [h('span', { class: 'bad-char' }, problem.character), ' ', select] : []));
    textarea.setAttribute('aria-invalid', 'true');
    runButton.disabled = true;
    return undefined;
  }
  const { value } = parsed;
  const n = value.tokens.length;
  const tooLong = n > maxLength;
  const refused = tooLong && truncation() === 'error';
  status.classList.toggle('bad', refused);
  status.textContent =
    `✓ ${n} residue${n === 1 ? '' : 's'}${value.name ? ` — ${value.name}` : ''}` +
    (tooLong ? `; longer than the model's maximum of ${maxLength}${refused ? ': choose "truncate" or "windows" below' : ''}` : '');
  runButton.disabled = refused || running !== undefined;
  return refused ? undefined : value;
}

function setProgress(done: number, total: number): void {
  const percent = total > 0 ? Math.round((100 * done) / total) : 100;
  progress.max = 100;
  progress.value = percent;
  progress.setAttribute('aria-valuetext', `${percent}%`);
  progressText.textContent = `${done} / ${total} passes (${percent}%)`;
}

async function run(): Promise<void> {
  const input = validate();
  if (!input || running) return;
  const task = selectedTask();
  const view = VIEWS[task];
  const controller = new AbortController();
  running = controller;
  exposed.state = 'running';
  runButton.disabled = true;
  cancelButton.hidden = false;
  runError.hidden = true;
  byId('progress-box').hidden = false;
  progress.removeAttribute('value'); // indeterminate until the server reports progress
  progressText.textContent = task === 'scan' ? 'starting…' : 'running…';
  const container = h('div', { id: `${task}-view` });
  try {
    await view.run({
      input,
      method: byId<HTMLSelectElement>('method').value,
      truncation: truncation(),
      signal: controller.signal,
      container,
      progress: setProgress,
      report: showError,
    });
    progress.value = 100;
    if (task !== 'scan') progressText.textContent = 'done (100%)';
    byId('result-title').textContent = view.title;
    byId('result-body').replaceChildren(container);
    byId('result').hidden = false;
    exposed.state = 'done';
  } catch (err) {
    exposed.state = 'error';
    byId('progress-box').hidden = true;
    if ((err as Error).name === 'AbortError') {
      runError.hidden = false;
      runError.textContent = 'Cancelled.';
    } else showError(err);
  } finally {
    running = undefined;
    cancelButton.hidden = true;
    validate();
  }
}

async function refreshModel(): Promise<void> {
  try {
    const info = await loadModelInfo();
    renderModelCard(info);
    // Only the tokens: ESM C's placeholders (<unused_N>) have logits but are no input.
    if (info.vocabulary) vocab = info.vocabulary.slice(0, info.vocabulary_tokens ?? info.vocabulary.length);
    maxLength = info.max_sequence_length;
    exposed.model = info;
    validate();
    if (info.state !== 'ready') setTimeout(refreshModel, 2000);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      byId('model-status').textContent = 'This server needs an API key to show its model.';
      askForKey();
    } else {
      byId('model-status').textContent = `The model information could not be loaded: ${(err as Error).message}`;
      setTimeout(refreshModel, 5000);
    }
  }
}

textarea.addEventListener('input', validate);
byId('truncation').addEventListener('change', validate);
byId('run-form').addEventListener('submit', (event) => {
  event.preventDefault();
  void run();
});
cancelButton.addEventListener('click', () => running?.abort());
byId('example').addEventListener('click', () => {
  textarea.value = EXAMPLE;
  validate();
  textarea.focus();
});
for (const radio of document.querySelectorAll<HTMLInputElement>('input[name="task"]')) {
  radio.addEventListener('change', () => {
    const scan = selectedTask() === 'scan';
    byId('method').toggleAttribute('disabled', !scan);
  });
}
byId('key-button').addEventListener('click', () => (keyForm.hidden ? askForKey() : (keyForm.hidden = true)));
keyForm.addEventListener('submit', (event) => {
  event.preventDefault();
  setApiKey(keyInput.value.trim());
  keyInput.value = '';
  keyForm.hidden = true;
  runError.hidden = true;
  void refreshModel();
});

validate();
void refreshModel();
exposed.ready = true;
