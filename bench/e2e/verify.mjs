#!/usr/bin/env node
// Compares two W1 result files (trove's sink output and duckdb_w1.mjs's output) for
// bench/e2e/run.sh. Not timed; uses DuckDB only as a tool to read and join the files.
//
// Checks, in order:
//   rows       same number of output rows;
//   checksum   total count (sum of `count`) equal, and sum of `sum_amount` equal within 1e-6
//              relative (float sums are accumulated in a different order by each engine);
//   rows-by-key a full outer join on (user_id, type, window_start): no key present on only one
//              side; count, min_amount, max_amount and window_end equal; sum_amount and
//              avg_amount equal within 1e-9 relative.
// Prints one JSON object with "verdict": "MATCH" or "MISMATCH" and the details (plus up to 5
// example differing rows); exit code 0 either way, 2 on a usage/read error.
//
// Usage: node verify.mjs TROVE_OUT DUCKDB_OUT   (format from the extension: .csv or JSON lines)

import { DuckDBInstance } from '@duckdb/node-api';

const sqlString = (s) => `'${String(s).replaceAll("'", "''")}'`;
const COLUMNS = `{user_id: 'UBIGINT', type: 'VARCHAR', window_start: 'BIGINT', ` +
  `window_end: 'BIGINT', count: 'UBIGINT', sum_amount: 'DOUBLE', min_amount: 'DOUBLE', ` +
  `max_amount: 'DOUBLE', avg_amount: 'DOUBLE'}`;
const reader = (path) => path.endsWith('.csv')
  ? `read_csv(${sqlString(path)}, header = true, columns = ${COLUMNS})`
  : `read_json(${sqlString(path)}, format = 'newline_delimited', columns = ${COLUMNS})`;
const json = (v) => JSON.parse(JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? Number(x) : x)));

async function rowsOf(con, sql) {
  return json((await con.runAndReadAll(sql)).getRowObjects());
}

async function main() {
  const [troveOut, duckOut] = process.argv.slice(2);
  if (!troveOut || !duckOut) throw new Error('usage: node verify.mjs TROVE_OUT DUCKDB_OUT');
  const instance = await DuckDBInstance.create(':memory:', { threads: '2' });
  const con = await instance.connect();
  await con.run(`CREATE TEMP TABLE t AS SELECT * FROM ${reader(troveOut)}`);
  await con.run(`CREATE TEMP TABLE d AS SELECT * FROM ${reader(duckOut)}`);

  const totals = async (table) => (await rowsOf(con,
    `SELECT count(*) AS rows, sum(count)::UBIGINT AS total_count, sum(sum_amount) AS total_sum
       FROM ${table}`))[0];
  const trove = await totals('t');
  const duck = await totals('d');
  const relSum = Math.abs(trove.total_sum - duck.total_sum) /
    Math.max(Math.abs(trove.total_sum), Math.abs(duck.total_sum), 1e-300);

  const rel = (a, b) => `abs(${a} - ${b}) > 1e-9 * greatest(abs(${a}), abs(${b}), 1e-300)`;
  const diffSql = `
    SELECT coalesce(t.user_id, d.user_id) AS user_id, coalesce(t.type, d.type) AS type,
           coalesce(t.window_start, d.window_start) AS window_start,
           CASE WHEN t.user_id IS NULL THEN 'only in duckdb'
                WHEN d.user_id IS NULL THEN 'only in trove'
                ELSE 'values differ' END AS problem,
           t.count AS trove_count, d.count AS duckdb_count,
           t.sum_amount AS trove_sum, d.sum_amount AS duckdb_sum
      FROM t FULL OUTER JOIN d
        ON t.user_id = d.user_id AND t.type = d.type AND t.window_start = d.window_start
     WHERE t.user_id IS NULL OR d.user_id IS NULL
        OR t.window_end <> d.window_end OR t.count <> d.count
        OR t.min_amount <> d.min_amount OR t.max_amount <> d.max_amount
        OR ${rel('t.sum_amount', 'd.sum_amount')} OR ${rel('t.avg_amount', 'd.avg_amount')}`;
  const byProblem = await rowsOf(con,
    `SELECT problem, count(*) AS n FROM (${diffSql}) GROUP BY problem ORDER BY problem`);
  const examples = byProblem.length ? await rowsOf(con, `${diffSql} LIMIT 5`) : [];
  const duplicateKeys = async (table) => (await rowsOf(con,
    `SELECT count(*) AS n FROM (SELECT 1 FROM ${table}
      GROUP BY user_id, type, window_start HAVING count(*) > 1)`))[0].n;
  const dupT = await duplicateKeys('t');
  const dupD = await duplicateKeys('d');

  const checks = {
    rows: trove.rows === duck.rows,
    total_count: trove.total_count === duck.total_count,
    total_sum_rel_1e6: relSum <= 1e-6,
    rows_by_key: byProblem.length === 0 && dupT === 0 && dupD === 0,
  };
  const verdict = Object.values(checks).every(Boolean) ? 'MATCH' : 'MISMATCH';
  process.stdout.write(JSON.stringify({
    verdict, checks,
    trove: { ...trove, duplicate_keys: dupT },
    duckdb: { ...duck, duplicate_keys: dupD },
    total_sum_rel_diff: relSum,
    differing_rows: byProblem,
    examples,
  }) + '\n');
}

main().catch((err) => {
  process.stderr.write(`verify.mjs: ${err.message}\n`);
  process.exit(2);
});
