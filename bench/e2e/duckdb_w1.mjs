#!/usr/bin/env node
// DuckDB baseline for trove's W1 job (examples/clickstream.yaml), for bench/e2e/run.sh.
//
// The job, on a JSON-lines file of {"event_id":u64,"user_id":u64,"type":string,"ts":ms,"amount":f64}:
//   1. deduplicate on event_id, keeping the FIRST occurrence in file order;
//   2. group by (user_id, type, 1-minute tumbling window aligned to the epoch) and compute
//      count, sum, min, max, avg of amount;
//   3. write the rows (user_id, type, window_start, window_end, count, sum_amount, min_amount,
//      max_amount, avg_amount) to a file with COPY ... TO (json lines by default, like trove's sink).
//
// What is timed (`elapsed_s`): the one COPY statement that reads, dedups, aggregates and writes —
// i.e. the whole job. Not timed: starting node, creating the in-memory database, and the separate
// input row count (`input_rows`, a second pass over the file, done after the timed statement).
//
// Dedup variants (--dedup):
//   first     (default) the faithful job: every row gets its file position (`WITH ORDINALITY`),
//             then GROUP BY event_id keeps arg_min(column, ordinality) of each column. Correct for
//             any input, also when re-sent records differ from the original.
//   distinct  SELECT DISTINCT * — the query most DuckDB users would write; it is the same job only
//             when a re-sent record is an exact copy of the first one (true for `trove gen`, whose
//             re-sends are copies), so it is reported as a reference point, not as the baseline.
//
// Window start: ts - ((ts % 60000) + 60000) % 60000, i.e. floor(ts / 60000) * 60000, also for
// negative timestamps.
//
// Output on stdout: one JSON object
//   {"engine":"duckdb","version":...,"dedup":...,"threads":...,"format":...,"elapsed_s":...,
//    "cpu_s":...,"input_rows":...,"output_rows":...,"events_per_second":...}
// cpu_s = user + sys CPU seconds of the process (all threads) during the timed statement.
//
// Usage: node duckdb_w1.mjs --input events.jsonl --output out.jsonl
//          [--format json|csv] [--threads 2] [--dedup first|distinct] [--temp-dir DIR]
//          [--no-count]

import { DuckDBInstance } from '@duckdb/node-api';

function parseArgs(argv) {
  const opts = { format: 'json', threads: '2', dedup: 'first', count: true, tempDir: null };
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    switch (a) {
      case '--input': opts.input = value(); break;
      case '--output': opts.output = value(); break;
      case '--format': opts.format = value(); break;
      case '--threads': opts.threads = value(); break;
      case '--dedup': opts.dedup = value(); break;
      case '--temp-dir': opts.tempDir = value(); break;
      case '--no-count': opts.count = false; break;
      case '-h': case '--help':
        process.stdout.write('usage: node duckdb_w1.mjs --input F --output O [--format json|csv] ' +
          '[--threads N] [--dedup first|distinct] [--temp-dir DIR] [--no-count]\n');
        process.exit(0);
      default: throw new Error(`unknown argument: ${a}`);
    }
  }
  if (!opts.input || !opts.output) throw new Error('--input and --output are required');
  if (!['json', 'csv'].includes(opts.format)) throw new Error(`--format must be json or csv`);
  if (!['first', 'distinct'].includes(opts.dedup)) throw new Error(`--dedup must be first or distinct`);
  if (!/^[1-9][0-9]*$/.test(opts.threads)) throw new Error(`--threads must be a positive integer`);
  return opts;
}

const sqlString = (s) => `'${String(s).replaceAll("'", "''")}'`;

function jobSql(opts) {
  const source = `read_json(${sqlString(opts.input)}, format = 'newline_delimited', ` +
    `columns = {event_id: 'UBIGINT', user_id: 'UBIGINT', type: 'VARCHAR', ts: 'BIGINT', ` +
    `amount: 'DOUBLE'})`;
  const dedup = opts.dedup === 'first'
    ? `SELECT event_id,
              arg_min(user_id, ordinality) AS user_id,
              arg_min(type, ordinality)    AS type,
              arg_min(ts, ordinality)      AS ts,
              arg_min(amount, ordinality)  AS amount
         FROM ${source} WITH ORDINALITY
        GROUP BY event_id`
    : `SELECT DISTINCT * FROM ${source}`;
  const aggregate = `
    WITH d AS (${dedup})
    SELECT user_id, type,
           ts - ((ts % 60000) + 60000) % 60000 AS window_start,
           window_start + 60000               AS window_end,
           count(*)                           AS count,
           sum(amount)                        AS sum_amount,
           min(amount)                        AS min_amount,
           max(amount)                        AS max_amount,
           avg(amount)                        AS avg_amount
      FROM d
     GROUP BY user_id, type, window_start`;
  const format = opts.format === 'json' ? 'FORMAT json' : 'FORMAT csv, HEADER true';
  return `COPY (${aggregate}) TO ${sqlString(opts.output)} (${format})`;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const instance = await DuckDBInstance.create(':memory:', { threads: opts.threads });
  const con = await instance.connect();
  await con.run(`SET threads = ${opts.threads}`);
  // An in-memory database spills to ./.tmp by default; keep spills out of the caller's cwd.
  if (opts.tempDir) await con.run(`SET temp_directory = ${sqlString(opts.tempDir)}`);
  const version = (await con.runAndReadAll('SELECT version()')).getRows()[0][0];

  const sql = jobSql(opts);
  const cpu0 = process.cpuUsage(); // whole process: every DuckDB worker thread included
  const t0 = process.hrtime.bigint();
  const copied = await con.runAndReadAll(sql);
  const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  // COPY returns one row with the number of rows written.
  const outputRows = Number(copied.getRows()[0][0]);

  let inputRows = null;
  if (opts.count) {
    const r = await con.runAndReadAll(
      `SELECT count(*) FROM read_json(${sqlString(opts.input)}, format = 'newline_delimited', ` +
      `columns = {event_id: 'UBIGINT'})`);
    inputRows = Number(r.getRows()[0][0]);
  }
  const result = {
    engine: 'duckdb',
    version,
    dedup: opts.dedup,
    threads: Number(opts.threads),
    format: opts.format,
    elapsed_s: Number(elapsed.toFixed(6)),
    cpu_s: Number(((cpu.user + cpu.system) / 1e6).toFixed(3)),
    input_rows: inputRows,
    output_rows: outputRows,
    events_per_second: inputRows === null ? null : Number((inputRows / elapsed).toFixed(1)),
  };
  process.stdout.write(JSON.stringify(result) + '\n');
}

main().catch((err) => {
  process.stderr.write(`duckdb_w1.mjs: ${err.message}\n`);
  process.exit(1);
});
