// The README's quick start, run as a user runs it: `node quickstart.mjs` against
// `rolegate serve examples/tasks-app` (its store seeded with the samples), twice.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";

import { sample } from "../lib/app.mjs";
import { repoRoot, startServer } from "../lib/server.mjs";

const run = promisify(execFile);
const script = join(repoRoot, "e2e/realm-web/quickstart.mjs");
let server;

before(async () => {
  server = await startServer();
});

after(async () => {
  assert.deepEqual(await server.stop(), { code: 0, signal: null });
});

test("quickstart.mjs registers, logs in, inserts and finds; a second run reuses the account", async () => {
  for (const runs of [1, 2]) {
    const { stdout } = await run(process.execPath, [script], {
      cwd: join(repoRoot, "e2e/realm-web"),
      env: { ...process.env, ROLEGATE_URL: server.url },
    });
    // Each run inserts one task the user owns (role `owner`), and the find returns the
    // user's tasks only: every sample task belongs to other ids.
    assert.equal(stdout.match(/title: 'Try rolegate'/g)?.length, runs, stdout);
    for (const task of sample("tasks")) assert.ok(!stdout.includes(task.title), stdout);
  }
});
