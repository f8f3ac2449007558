// bench/svg-chart.ts: a well-formed standalone SVG with a title, axis labels, ticks, a legend and
// exactly one polyline per series; text is escaped; undrawable points are left out.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { escapeXml, formatTick, lineChart, niceTicks, PALETTE } from '../bench/svg-chart.js';

/** Checks that every tag is closed in order (a small XML well-formedness check); returns the element names. */
function elements(svg: string): string[] {
  const names: string[] = [];
  const stack: string[] = [];
  const body = svg.replace(/^<\?xml[^>]*\?>\s*/, '');
  for (const m of body.matchAll(/<(\/?)([a-zA-Z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g)) {
    const [, closing, name, , selfClosing] = m;
    if (closing) assert.equal(stack.pop(), name, `</${name}> closes the open element`);
    else {
      names.push(name);
      if (!selfClosing) stack.push(name);
    }
  }
  assert.deepEqual(stack, [], 'every element closed');
  // Nothing but tags, text and whitespace: no stray '<' or unescaped '&'.
  const text = body.replace(/<[^>]*>/g, '');
  assert.doesNotMatch(text, /[<>]/);
  assert.doesNotMatch(text, /&(?!amp;|lt;|gt;|quot;|apos;)/);
  return names;
}

test('line chart: structure, one polyline per series, labels, legend', () => {
  const svg = lineChart({
    title: 'Throughput vs concurrency',
    xLabel: 'concurrent clients',
    yLabel: 'residues / s',
    xScale: 'log2',
    xTicks: [1, 8, 32, 64],
    series: [
      { label: 'cpu:1, queue on', points: [{ x: 1, y: 5000 }, { x: 8, y: 9000 }, { x: 32, y: 9500 }, { x: 64, y: 9400 }] },
      { label: 'cpu:1, queue off', points: [{ x: 1, y: 5200 }, { x: 8, y: 10000 }, { x: 32, y: 10100 }, { x: 64, y: NaN }] },
      { label: 'cpu:2 & <friends>', points: [{ x: 1, y: 4000 }, { x: 64, y: 11000 }] },
    ],
  });
  const names = elements(svg);
  assert.equal(names[0], 'svg');
  assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg" width="\d+" height="\d+" viewBox="0 0 \d+ \d+" role="img"/);
  assert.equal(names.filter((n) => n === 'polyline').length, 3, 'one polyline per series');
  assert.match(svg, /<title id="chart-title">Throughput vs concurrency<\/title>/);
  assert.match(svg, /<text class="x-label"[^>]*>concurrent clients<\/text>/);
  assert.match(svg, /<text class="y-label"[^>]*rotate\(-90\)[^>]*>residues \/ s<\/text>/);
  // Tick labels: the given x ticks, compact y ticks.
  for (const tick of ['1', '8', '32', '64']) assert.match(svg, new RegExp(`text-anchor="middle">${tick}</text>`));
  assert.match(svg, />10k<\/text>/);
  // Legend: every label, escaped.
  assert.match(svg, />cpu:1, queue on<\/text>/);
  assert.match(svg, />cpu:2 &amp; &lt;friends&gt;<\/text>/);
  // Series 2 lost its NaN point: three vertices.
  const polylines = [...svg.matchAll(/<polyline [^>]*points="([^"]*)"/g)].map((m) => m[1].split(' ').length);
  assert.deepEqual(polylines, [4, 3, 2]);
  // Distinct colours from the palette, and every point inside the plot.
  const strokes = [...svg.matchAll(/<polyline [^>]*stroke="(#[0-9A-Fa-f]{6})"/g)].map((m) => m[1]);
  assert.deepEqual(strokes, PALETTE.slice(0, 3));
  for (const m of svg.matchAll(/<polyline [^>]*points="([^"]*)"/g)) {
    for (const pair of m[1].split(' ')) {
      const [x, y] = pair.split(',').map(Number);
      assert.ok(x >= 0 && x <= 760 && y >= 0 && y <= 440, `${pair} inside`);
    }
  }
});

test('line chart: log y axis, empty series, and no data at all still make a valid document', () => {
  const svg = lineChart({
    title: 'Latency',
    xLabel: 'batch size',
    yLabel: 'ms',
    xScale: 'log2',
    yScale: 'log10',
    series: [
      { label: 'p50', points: [{ x: 1, y: 12 }, { x: 8, y: 80 }, { x: 32, y: 350 }] },
      { label: 'p99', points: [{ x: 1, y: 0 }, { x: 8, y: 120 }, { x: 32, y: 900 }] },
    ],
  });
  assert.equal(elements(svg).filter((n) => n === 'polyline').length, 2);
  assert.match(svg, />1k<\/text>/);
  assert.match(svg, />10<\/text>/);
  const empty = lineChart({ title: 'Nothing', xLabel: 'x', yLabel: 'y', series: [{ label: 'none', points: [] }] });
  assert.equal(elements(empty).filter((n) => n === 'polyline').length, 1);
  assert.doesNotMatch(empty, /NaN|Infinity/);
});

test('ticks and labels', () => {
  assert.deepEqual(niceTicks(0, 9500), [0, 2000, 4000, 6000, 8000, 10000]);
  assert.deepEqual(niceTicks(0, 1), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(niceTicks(5, 5), [0, 5]);
  assert.deepEqual([0, 5, 950, 1500, 12000, 2_500_000, 0.25].map(formatTick), ['0', '5', '950', '1.5k', '12k', '2.5M', '0.25']);
  assert.equal(escapeXml(`a<b & "c"`), 'a&lt;b &amp; &quot;c&quot;');
});
