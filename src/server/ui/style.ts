// The web page's stylesheet (served at /ui/style.css). Text colours meet WCAG AA contrast on their
// backgrounds; focus is always visible; chart colours are chosen in web/colors.ts.
export const UI_STYLE = `
:root {
  --fg: #1b1f24; --muted: #4d5661; --bg: #f4f6f8; --card: #ffffff; --line: #d0d7de;
  --accent: #0b5cad; --accent-fg: #ffffff; --error: #a4121a; --warn-bg: #fff4d6; --warn-fg: #5c3d00;
  --focus: #d14900;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: var(--fg); background: var(--bg);
}
* { box-sizing: border-box; }
[hidden] { display: none !important; }
body { margin: 0; }
code, textarea, .mono { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; }
.top { display: flex; align-items: center; justify-content: space-between; gap: 1rem;
  padding: .6rem 1.2rem; background: #12263f; color: #fff; }
.top h1 { font-size: 1.25rem; margin: 0; }
.subtitle { font-weight: 400; font-size: .9rem; color: #c9d6e5; margin-left: .5rem; }
main { max-width: 1200px; margin: 0 auto; padding: 1rem; display: grid; gap: 1rem; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: .8rem 1rem; min-width: 0; }
.card h2 { font-size: 1.05rem; margin: 0 0 .5rem; }
.card h3 { font-size: .98rem; margin: .8rem 0 .4rem; }
label { font-weight: 600; display: block; margin: .3rem 0 .2rem; }
fieldset label, .inline { font-weight: 400; display: inline-flex; align-items: center; gap: .3rem; margin: 0 .8rem .2rem 0; }
textarea { width: 100%; padding: .5rem; font-size: .92rem; border: 1px solid #8c959f; border-radius: 6px; resize: vertical; }
textarea[aria-invalid="true"] { border-color: var(--error); outline: 2px solid var(--error); }
input[type="password"], input[type="number"], select { padding: .3rem .4rem; border: 1px solid #8c959f; border-radius: 6px; font: inherit; }
button { font: inherit; padding: .4rem .9rem; border-radius: 6px; border: 1px solid var(--accent); background: var(--accent);
  color: var(--accent-fg); cursor: pointer; }
button.secondary { background: #fff; color: var(--accent); }
button:disabled { opacity: .55; cursor: not-allowed; }
:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
.top button.secondary { background: transparent; color: #fff; border-color: #c9d6e5; }
.row { display: flex; flex-wrap: wrap; gap: 1rem 2rem; align-items: flex-start; margin-top: .5rem; }
fieldset { border: 1px solid var(--line); border-radius: 6px; padding: .3rem .8rem .5rem; margin: 0; }
legend { font-weight: 600; padding: 0 .3rem; }
.options { display: grid; grid-template-columns: auto auto; gap: .2rem .6rem; align-items: center; }
.options label { margin: 0; }
.buttons { display: flex; gap: .6rem; margin-top: .8rem; flex-wrap: wrap; }
.status { margin: .3rem 0 0; color: var(--muted); min-height: 1.4em; }
.status.bad, .error { color: var(--error); font-weight: 600; }
.status button { font-weight: 400; padding: .05rem .5rem; margin-left: .3rem; }
.status .bad-char { background: #ffd7d5; color: var(--error); padding: 0 .2rem; border-radius: 3px; font-family: ui-monospace, monospace; }
.warning { background: var(--warn-bg); color: var(--warn-fg); border: 1px solid #e0b44c; border-radius: 6px; padding: .5rem .7rem; font-weight: 600; }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem; margin: .3rem 0; }
.facts dt { color: var(--muted); }
.facts dd { margin: 0; overflow-wrap: anywhere; }
.progress { display: flex; align-items: center; gap: .7rem; margin-top: .8rem; }
.progress label { margin: 0; }
.progress progress { width: min(420px, 60vw); height: 1.1rem; }
.toolbar { display: flex; flex-wrap: wrap; align-items: center; gap: .5rem 1rem; margin: .4rem 0; }
.toolbar label { display: inline; margin: 0; font-weight: 400; }
.downloads { display: flex; flex-wrap: wrap; gap: .4rem; margin: .6rem 0; }
.downloads button { padding: .25rem .7rem; font-size: .9rem; }
.summary { margin: .2rem 0 .5rem; }
.chart { display: flex; border: 1px solid var(--line); border-radius: 6px; background: #fff; max-width: 100%; }
.chart .axis { flex: none; }
.scroller { overflow: auto; max-height: 70vh; flex: 1 1 auto; min-width: 0; }
.scroller:focus-visible { outline: 3px solid var(--focus); outline-offset: -3px; }
.chart svg, .chart canvas { display: block; }
.legend { display: flex; align-items: center; gap: .5rem; font-size: .85rem; color: var(--muted); margin: .4rem 0; }
.legend canvas { border: 1px solid var(--line); }
.readout { font-family: ui-monospace, monospace; min-height: 1.4em; margin: .3rem 0; }
.split { display: grid; grid-template-columns: minmax(0, 1fr) 260px; gap: 1rem; align-items: start; }
@media (max-width: 800px) { .split { grid-template-columns: 1fr; } }
table.data { border-collapse: collapse; font-size: .9rem; }
table.data th, table.data td { border-bottom: 1px solid var(--line); padding: .2rem .5rem; text-align: right; }
table.data th:first-child, table.data td:first-child { text-align: left; }
table.data tr.wt td { font-weight: 700; }
table.data button { padding: 0 .4rem; font-size: .85rem; }
.tooltip { position: fixed; z-index: 10; pointer-events: none; background: #12263f; color: #fff; padding: .3rem .5rem;
  border-radius: 4px; font: 13px/1.3 ui-monospace, monospace; white-space: pre; }
.muted { color: var(--muted); }
`;
