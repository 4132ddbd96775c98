// Starts and stops the real `rolegate` binary for the realm-web suite.
//
// Input: the example app (examples/tasks-app), or a copy of it with custom user data enabled;
// the binary (ROLEGATE_BIN, else target/release/rolegate, built by `cargo build --release`).
// Output: a running `rolegate serve` on a free loopback port, its store seeded from the app's
// sample data with `rolegate import`, its log lines, and `stop()` (SIGTERM, then the exit code).

import { execFileSync, spawn } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository's root. */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

/** The example app served by the suite. */
export const exampleApp = join(repoRoot, "examples/tasks-app");

/** The `rolegate` binary: ROLEGATE_BIN, else the release build. */
export function rolegateBin() {
  const bin = process.env.ROLEGATE_BIN ?? join(repoRoot, "target/release/rolegate");
  if (!existsSync(bin)) {
    throw new Error(`${bin} is missing: run \`cargo build --release -p rolegate-cli\` or set ROLEGATE_BIN`);
  }
  return bin;
}

/** A TCP port free on 127.0.0.1 at the time of the call. */
export function freePort() {
  return new Promise((ok, fail) => {
    const probe = createServer();
    probe.once("error", fail);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => ok(port));
    });
  });
}

/** A new temporary directory, removed at process exit. */
export function tempDir(prefix) {
  const dir = mkdtempSync(join(tmpdir(), `rolegate-e2e-${prefix}-`));
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * A copy of the example app with custom user data enabled (the one added file is
 * `auth/custom_user_data.json`: collection `taskboard.users`, keyed by `user_id`), as the
 * server's own tests do; the example app itself does not enable it.
 */
export function appWithCustomUserData() {
  const app = join(tempDir("app"), "tasks-app");
  cpSync(exampleApp, app, { recursive: true, filter: (src) => !src.includes(".rolegate") });
  writeFileSync(
    join(app, "auth/custom_user_data.json"),
    JSON.stringify({
      enabled: true,
      mongo_service_name: "mongodb-atlas",
      database_name: "taskboard",
      collection_name: "users",
      user_id_field: "user_id",
    }),
  );
  return app;
}

/** `rolegate import APP DB.COLL FILE --store STORE --drop`. */
export function importDocuments(app, store, namespace, file) {
  execFileSync(rolegateBin(), ["import", app, namespace, file, "--store", store, "--drop"], {
    stdio: ["ignore", "ignore", "pipe"],
  });
}

/** Imports every `sample/<collection>.jsonl` of the example app into `taskboard.<collection>`. */
export function seedSamples(app, store) {
  const sample = join(exampleApp, "sample");
  for (const file of readdirSync(sample).filter((f) => f.endsWith(".jsonl"))) {
    importDocuments(app, store, `taskboard.${file.replace(/\.jsonl$/, "")}`, join(sample, file));
  }
}

/**
 * Serves `app` on a new store seeded with the samples (or on `store` when given), on a free
 * port, and waits for `/health`. `accessTokenSeconds` sets `--access-token-seconds`.
 * Returns `{url, port, app, store, log, requests, stop, restart}`: `log` holds the server's
 * stderr lines, `requests(from, count)` waits for request lines.
 */
export async function startServer({ app = exampleApp, store, port, accessTokenSeconds } = {}) {
  if (!store) {
    store = join(tempDir("store"), "data");
    seedSamples(app, store);
  }
  port ??= await freePort();
  const url = `http://127.0.0.1:${port}`;
  const args = ["serve", app, "--store", store, "--listen", `127.0.0.1:${port}`, "--public-url", url];
  if (accessTokenSeconds !== undefined) args.push("--access-token-seconds", String(accessTokenSeconds));
  const child = spawn(rolegateBin(), args, {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, RUST_LOG: "info", NO_COLOR: "1" },
  });
  const log = [];
  let pending = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk) => {
    const lines = (pending + chunk).split("\n");
    pending = lines.pop();
    log.push(...lines);
  });
  const exited = new Promise((ok) => child.once("close", (code, signal) => ok({ code, signal })));
  process.on("exit", () => child.kill("SIGKILL"));
  await waitForHealth(url, exited, log);
  const stop = async () => {
    child.kill("SIGTERM");
    return exited;
  };
  const restart = async () => {
    const status = await stop();
    if (status.code !== 0) throw new Error(`the server stopped with ${JSON.stringify(status)}`);
    return startServer({ app, store, port, accessTokenSeconds });
  };
  // The request log lines from `log[from]` on, once there are `count` of them (the log
  // arrives through a pipe, after the response): at most 5 s.
  const requests = async (from, count) => {
    const deadline = Date.now() + 5_000;
    for (;;) {
      const lines = log.slice(from).filter((l) => l.includes(" request "));
      if (lines.length >= count || Date.now() > deadline) return lines;
      await new Promise((ok) => setTimeout(ok, 20));
    }
  };
  return { url, port, app, store, log, requests, stop, restart };
}

async function waitForHealth(url, exited, log) {
  let gone = null;
  exited.then((status) => (gone = status));
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (gone) throw new Error(`rolegate serve exited (${JSON.stringify(gone)}):\n${log.join("\n")}`);
    try {
      const res = await fetch(`${url}/health`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((ok) => setTimeout(ok, 50));
  }
  throw new Error(`no /health answer from ${url} within 15 s:\n${log.join("\n")}`);
}
