// The web page's one HTML document (served at /ui). Paths are relative, so the page also works
// behind a proxy that serves the API under a prefix. Behaviour lives in web/app.ts and its modules.
export const UI_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>esm2-serve</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="ui/style.css">
<script type="module" src="ui/js/app.js"></script>
</head>
<body>
<header class="top">
  <h1>esm2-serve <span class="subtitle">ESM-2 protein language model</span></h1>
  <button type="button" id="key-button" class="secondary">API key</button>
</header>

<main>
<section id="model-card" class="card" aria-labelledby="model-card-title">
  <h2 id="model-card-title">Model</h2>
  <p id="model-status" role="status">Loading the model information…</p>
  <dl id="model-facts" class="facts"></dl>
  <p id="demo-warning" class="warning" role="alert" hidden></p>
</section>

<form id="key-form" class="card" hidden>
  <h2>API key</h2>
  <p id="key-reason">This server needs an API key. It is kept in this page's memory only (never stored) and sent as <code>Authorization: Bearer …</code>.</p>
  <label for="key-input">API key</label>
  <input id="key-input" type="password" autocomplete="off" spellcheck="false" required>
  <button type="submit" id="key-submit">Use key</button>
</form>

<form id="run-form" class="card" novalidate>
  <h2>Input</h2>
  <label for="sequence">Protein sequence or FASTA record</label>
  <textarea id="sequence" rows="5" spellcheck="false" autocomplete="off" autocapitalize="characters"
    aria-describedby="sequence-status" placeholder="&gt;my_protein&#10;MKTVRQERLKSIVRILERSKEPVSGAQL"></textarea>
  <p id="sequence-status" class="status" aria-live="polite"></p>
  <div class="row">
    <fieldset id="task" class="tasks">
      <legend>Task</legend>
      <label><input type="radio" name="task" value="scan" checked> Deep mutational scan</label>
      <label><input type="radio" name="task" value="contacts"> Contact map</label>
      <label><input type="radio" name="task" value="residues"> Per-residue likelihood</label>
      <label><input type="radio" name="task" value="embed"> Embedding</label>
    </fieldset>
    <div class="options">
      <label for="method">Scan method</label>
      <select id="method">
        <option value="masked_marginal" selected>masked marginal (L passes)</option>
        <option value="wt_marginal">wild-type marginal (1 pass)</option>
      </select>
      <label for="truncation">Longer than the model's maximum</label>
      <select id="truncation">
        <option value="error" selected>refuse</option>
        <option value="truncate">truncate</option>
        <option value="window">windows</option>
      </select>
    </div>
  </div>
  <div class="buttons">
    <button type="submit" id="run">Run</button>
    <button type="button" id="cancel" class="secondary" hidden>Cancel</button>
    <button type="button" id="example" class="secondary">Example sequence</button>
  </div>
  <div id="progress-box" class="progress" hidden>
    <label for="progress" id="progress-label">Progress</label>
    <progress id="progress" max="100" value="0"></progress>
    <span id="progress-text" aria-live="polite"></span>
  </div>
  <p id="run-error" class="error" role="alert" hidden></p>
</form>

<section id="result" class="card" aria-labelledby="result-title" hidden>
  <h2 id="result-title">Result</h2>
  <div id="result-body"></div>
</section>
</main>
<div id="tooltip" class="tooltip" role="tooltip" hidden></div>
</body>
</html>
`;
