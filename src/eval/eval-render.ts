/**
 * Renderings of an `sidx eval` report: a Markdown table (rows as in report.json, plus each row's share of exact
 * Recall@K_min) and an SVG plot of Recall@K_min against mean candidates scored per query (log scale), one curve
 * per method that scores vectors. Both are plain strings, no dependencies.
 */
import type { EvalReport } from './eval-run.ts';

const pct = (x: number, digits = 2) => `${(100 * x).toFixed(digits)}%`;

/** The Markdown table of one report (with a one-line caption). */
export function renderEvalMarkdown(report: EvalReport): string {
  const p = report.protocol as { items: number; profile: string; split?: string; maxCandidates: number; beamWidth: number | null; ivf: { nlist?: number; nprobe?: number } };
  const ks = Object.keys(report.rows[0]?.recall ?? {});
  const k0 = ks[0]!;
  const exact = report.rows.find((r) => r.method === 'exact')?.recall[k0] ?? 0;
  const header = ['method', ...ks.map((k) => `Recall@${k}`), ...ks.map((k) => `NDCG@${k}`), 'mean candidates',
    '% of catalog scored', 'no-candidate queries', `share of exact Recall@${k0}`];
  const lines = [
    `**${report.dataset}** (${p.items} items), model \`${report.model}\`, ${report.queries} queries (${p.profile}${p.split === 'valid' ? ', validation split' : ''}); `
      + `SID rows: maxCandidates ${p.maxCandidates}${p.beamWidth ? `, beam width ${p.beamWidth}` : ''}; `
      + `IVF-Flat: nlist ${p.ivf.nlist}, nprobe ${p.ivf.nprobe}`,
    '',
    `| ${header.join(' | ')} |`,
    `|${header.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`,
  ];
  for (const r of report.rows) {
    const cells = [
      r.method,
      ...ks.map((k) => r.recall[k]!.toFixed(4)),
      ...ks.map((k) => r.ndcg[k]!.toFixed(4)),
      r.meanCandidates.toFixed(1),
      pct(r.catalogFraction),
      String(r.noCandidateQueries),
      exact > 0 ? pct(r.recall[k0]! / exact, 1) : '—',
    ];
    lines.push(`| ${cells.join(' | ')} |`);
  }
  const h = report.embeddingHitRate;
  if (h) {
    lines.push('', `FORGE Embedding HitRate@${h.k} (${h.rows} ${p.split === 'valid' ? 'validation' : 'test'} rows): ${h.decoded.toFixed(4)} on SIDs decoded by ${h.decodedBy}, `
      + `${h.original.toFixed(4)} on the items' own embeddings.`);
  }
  return `${lines.join('\n')}\n`;
}

const COLORS: Record<string, string> = {
  exact: '#222222',
  'sid+rerank': '#9467bd',
  'sid+hamming1+rerank': '#ff7f0e',
  'sid+beam+rerank': '#1f77b4',
  'ivf-flat': '#2ca02c',
};

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** 1, 2 or 5 times a power of ten, at least `x`. */
function niceStep(x: number): number {
  const p = 10 ** Math.floor(Math.log10(x));
  return [1, 2, 5, 10].map((f) => f * p).find((v) => v >= x)!;
}

/** The SVG plot: Recall@K_min (y) against mean candidates scored per query (x, log scale). */
export function renderEvalSvg(report: EvalReport): string {
  const W = 760;
  const H = 460;
  const m = { left: 70, right: 210, top: 56, bottom: 56 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const k0 = Object.keys(report.rows[0]?.recall ?? { 10: 0 })[0]!;
  const all = report.curves.flatMap((c) => c.points);
  const xMin = Math.max(1, Math.min(...all.map((p) => p.candidates)) / 1.5);
  const xMax = Math.max(...all.map((p) => p.candidates)) * 1.5;
  const raw = Math.max(1e-6, ...all.map((p) => p.recall)) * 1.1;
  const step = niceStep(raw / 5);
  const yMax = Math.ceil(raw / step) * step;
  const lx0 = Math.log10(xMin);
  const lx1 = Math.log10(xMax);
  const x = (v: number) => m.left + ((Math.log10(Math.max(v, xMin)) - lx0) / (lx1 - lx0)) * pw;
  const y = (v: number) => m.top + ph - (v / yMax) * ph;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${m.left}" y="22" font-size="15">${esc(`${report.dataset}: Recall@${k0} vs candidates scored per query`)}</text>`,
    `<text x="${m.left}" y="40" font-size="11" fill="#555">${esc(`model ${report.model}, ${report.queries} queries; dashed: exact search`)}</text>`,
  ];
  for (let e = Math.ceil(lx0); e <= Math.floor(lx1); e++) {
    for (const mult of [1, 2, 5]) {
      const v = mult * 10 ** e;
      if (v < xMin || v > xMax) continue;
      const px = x(v).toFixed(1);
      out.push(`<line x1="${px}" y1="${m.top}" x2="${px}" y2="${m.top + ph}" stroke="#e5e5e5"/>`);
      out.push(`<text x="${px}" y="${m.top + ph + 16}" text-anchor="middle">${v >= 1000 ? `${v / 1000}k` : v}</text>`);
    }
  }
  const digits = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  for (let v = 0; v <= yMax + step / 2; v += step) {
    const py = y(v).toFixed(1);
    out.push(`<line x1="${m.left}" y1="${py}" x2="${m.left + pw}" y2="${py}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${m.left - 6}" y="${py}" text-anchor="end" dominant-baseline="middle">${v.toFixed(digits)}</text>`);
  }
  out.push(`<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`);
  out.push(`<text x="${m.left + pw / 2}" y="${H - 14}" text-anchor="middle">mean candidates scored per query (log scale, 0 drawn at the left edge; catalog = ${report.protocol.items})</text>`);
  out.push(`<text transform="translate(18 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle">Recall@${k0}</text>`);
  report.curves.forEach((c, i) => {
    const color = COLORS[c.method] ?? '#d62728';
    const pts = [...c.points].sort((a, b) => a.candidates - b.candidates);
    if (c.method === 'exact' && pts.length > 0) {
      const py = y(pts[0]!.recall).toFixed(1);
      out.push(`<line x1="${m.left}" y1="${py}" x2="${m.left + pw}" y2="${py}" stroke="${color}" stroke-width="1" stroke-dasharray="5 4"/>`);
    }
    if (pts.length > 1) {
      out.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.map((p) => `${x(p.candidates).toFixed(1)},${y(p.recall).toFixed(1)}`).join(' ')}"/>`);
    }
    for (const p of pts) out.push(`<circle cx="${x(p.candidates).toFixed(1)}" cy="${y(p.recall).toFixed(1)}" r="3.5" fill="${color}"/>`);
    const ly = m.top + 14 + i * 20;
    out.push(`<line x1="${m.left + pw + 16}" y1="${ly}" x2="${m.left + pw + 40}" y2="${ly}" stroke="${color}" stroke-width="2"/>`);
    out.push(`<circle cx="${m.left + pw + 28}" cy="${ly}" r="3.5" fill="${color}"/>`);
    out.push(`<text x="${m.left + pw + 46}" y="${ly}" dominant-baseline="middle">${esc(c.method)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
