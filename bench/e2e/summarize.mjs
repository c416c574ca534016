#!/usr/bin/env node
// Turns the raw records of bench/e2e/run.sh into the markdown summary (stdout).
//
// Inputs: --results results.jsonl (one record per engine run), --verify verify.jsonl (one
// verify.mjs result per DuckDB variant), optionally --profile profile.md (stage breakdown), and
// context (--events, --data-bytes, --load-before, --load-after, --params).
//
// Events per second = input events / seconds, where seconds is trove's process wall clock and
// DuckDB's COPY statement time (see run.sh). The ratio column is trove events/s divided by the
// row's events/s: > 1 means trove is faster. "best" ratios compare best with best, "median" ratios
// median with median; the CPU ratio compares median CPU seconds (DuckDB CPU / trove CPU).

import { readFileSync } from 'node:fs';
import os from 'node:os';

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const lines = (path) => readFileSync(path, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const fmtRate = (x) => (x >= 1e6 ? `${(x / 1e6).toFixed(2)} M` : `${(x / 1e3).toFixed(0)} k`);
const fmt = (x, d = 2) => x.toFixed(d);

const records = lines(args.results);
const events = Number(args.events);
const groups = new Map(); // "engine/variant" -> { wall: [], cpu: [], extra }
for (const r of records) {
  const key = `${r.engine}/${r.variant}`;
  if (!groups.has(key)) groups.set(key, { engine: r.engine, variant: r.variant, secs: [], cpu: [], internal: [], inputs: new Set(), outputs: new Set() });
  const g = groups.get(key);
  if (r.engine === 'trove') {
    g.secs.push(r.wall_s);
    g.cpu.push(r.cpu_s);
    g.internal.push(r.stats.seconds);
    g.inputs.add(r.stats.in);
    g.outputs.add(r.stats.rows_out);
    g.device = r.stats.device;
    g.stats = r.stats;
  } else {
    g.secs.push(r.result.elapsed_s);
    g.cpu.push(r.result.cpu_s);
    g.inputs.add(r.result.input_rows);
    g.outputs.add(r.result.output_rows);
    g.version = r.result.version;
    g.threads = r.result.threads;
  }
}
const trove = groups.get('trove/cpu');
const rate = (g, pick) => events / pick(g.secs);
const best = (xs) => Math.min(...xs);
const troveBest = rate(trove, best);
const troveMedian = rate(trove, median);

const out = [];
out.push(`## trove vs DuckDB, end to end (W1 clickstream job, ${events.toLocaleString('en-US')} events)`);
out.push('');
out.push(`Data: \`${args.params}\` → ${(Number(args['data-bytes']) / 2 ** 20).toFixed(0)} MiB of JSON lines. ` +
  `Machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}, load average ${args['load-before']} before, ` +
  `${args['load-after']} after. ${trove.secs.length} rounds, engines alternating.`);
out.push('');
out.push('| engine | best s | median s | best events/s | median events/s | median CPU s | trove ÷ this (best) | trove ÷ this (median) | CPU: this ÷ trove |');
out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const g of groups.values()) {
  const name = g.engine === 'trove'
    ? `trove run, ${g.device}`
    : `DuckDB ${g.version}, ${g.threads} threads, dedup \`${g.variant}\`${g.variant === 'first' ? ' (baseline)' : ' (reference)'}`;
  const bestRate = rate(g, best);
  const medRate = rate(g, median);
  const cpu = g.cpu.every((c) => typeof c === 'number') ? median(g.cpu) : NaN;
  out.push(`| ${name} | ${fmt(best(g.secs))} | ${fmt(median(g.secs))} | ${fmtRate(bestRate)} | ${fmtRate(medRate)} | ` +
    `${fmt(cpu)} | ${g === trove ? '1' : fmt(troveBest / bestRate)} | ${g === trove ? '1' : fmt(troveMedian / medRate)} | ` +
    `${g === trove ? '1' : fmt(cpu / median(trove.cpu))} |`);
}
out.push('');
out.push(`trove's own \`seconds\` (stats, excludes process start/exit): best ${fmt(best(trove.internal))}, ` +
  `median ${fmt(median(trove.internal))}. Per-round seconds: ` +
  [...groups.values()].map((g) => `${g.engine}/${g.variant} [${g.secs.map((s) => fmt(s)).join(', ')}]`).join('; ') + '.');
const s = trove.stats;
out.push('');
out.push(`trove accounting (last round): in ${s.in}, accepted ${s.accepted}, duplicate ${s.duplicate}, ` +
  `late ${s.late}, filtered ${s.filtered}, bad ${s.bad}, rows out ${s.rows_out}, batches ${s.batches}.`);

out.push('');
out.push('### Do the outputs agree?');
out.push('');
out.push('| trove vs | verdict | rows (trove / duckdb) | total count (trove / duckdb) | Σ sum_amount rel. diff | rows differing by key |');
out.push('|---|---|---|---|---:|---|');
for (const { variant, result: v } of lines(args.verify)) {
  const differing = v.differing_rows.length ? v.differing_rows.map((d) => `${d.problem}: ${d.n}`).join(', ') : 'none';
  out.push(`| DuckDB \`${variant}\` | **${v.verdict}** | ${v.trove.rows} / ${v.duckdb.rows} | ` +
    `${v.trove.total_count} / ${v.duckdb.total_count} | ${v.total_sum_rel_diff.toExponential(1)} | ${differing} |`);
  if (v.examples.length) out.push(`\nExamples (${variant}): \`${JSON.stringify(v.examples)}\`\n`);
}
for (const g of groups.values()) {
  if (g.inputs.size !== 1 || [...g.inputs][0] !== events) {
    out.push(`\nWARNING: ${g.engine}/${g.variant} read ${[...g.inputs].join('/')} input rows, expected ${events}.`);
  }
  if (g.outputs.size !== 1) out.push(`\nWARNING: ${g.engine}/${g.variant} output row counts differ between rounds: ${[...g.outputs].join('/')}.`);
}

if (args.profile) {
  out.push('');
  out.push('### Where trove spends its time (perf record, self samples, one extra run)');
  out.push('');
  out.push(readFileSync(args.profile, 'utf8').trimEnd());
}
out.push('');
out.push('Timing: trove = wall clock of the `trove run` process; DuckDB = the COPY statement only ' +
  '(node start-up, database creation and the input count excluded) — any bias favours DuckDB. ' +
  'CPU s = user + sys of all threads (trove: whole process; DuckDB: during the COPY).');
process.stdout.write(out.join('\n') + '\n');
