// realm-web refreshes an expired access token by itself: the server (started with
// `--access-token-seconds 2`) answers the first call after expiry with 401 InvalidSession,
// realm-web refreshes (POST /auth/session with the refresh token) and retries, and the call
// succeeds with a new access token.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

import { appId } from "../lib/app.mjs";
import { appAt, collection, jwtPayload, registerAndLogIn } from "../lib/client.mjs";
import { startServer } from "../lib/server.mjs";

const LIFETIME = 2;
let server;

before(async () => {
  server = await startServer({ accessTokenSeconds: LIFETIME });
});

after(async () => {
  assert.deepEqual(await server.stop(), { code: 0, signal: null });
});

test("a call after the access token expired succeeds through a refresh", async () => {
  const user = await registerAndLogIn(appAt(server.url), "refresh@example.com");
  const tasks = collection(user, "tasks");
  const own = { owner_id: user.id, title: "Survives a refresh", status: "todo", team: "platform" };
  const { insertedId } = await tasks.insertOne(own);
  const before = user.accessToken;
  const claims = jwtPayload(before);
  assert.equal(claims.exp - claims.iat, LIFETIME);
  assert.equal(claims.aud, appId);
  // Wait until the token has expired (exp is in whole seconds, checked without leeway).
  await sleep(Math.max(0, (claims.exp + 1) * 1000 - Date.now()));
  // The old token is refused now, with the code realm-web refreshes on.
  const direct = await fetch(`${server.url}/api/client/v2.0/app/${appId}/functions/call`, {
    method: "POST",
    headers: { Authorization: `Bearer ${before}`, "Content-Type": "application/json" },
    body: JSON.stringify({ name: "count", service: "mongodb-atlas", arguments: [{ database: "taskboard", collection: "tasks", query: {} }] }),
  });
  assert.equal(direct.status, 401);
  assert.equal((await direct.json()).error_code, "InvalidSession");
  const logged = server.log.length;
  // The same call through realm-web succeeds, with a new token.
  assert.deepEqual(await tasks.find({}), [{ _id: insertedId, ...own }]);
  assert.notEqual(user.accessToken, before);
  assert.ok(jwtPayload(user.accessToken).exp > claims.exp);
  // The server saw: the call refused (401), a refresh (201), the call again (200).
  const requests = (await server.requests(logged, 3)).map((l) => `${l.match(/method=(\S+)/)[1]} ${l.match(/path=(\S+)/)[1].replace(/^.*\/api\/client\/v2\.0\//, "")} ${l.match(/status=(\d+)/)[1]}`);
  assert.deepEqual(requests, [
    `POST app/${appId}/functions/call 401`,
    "POST auth/session 201",
    `POST app/${appId}/functions/call 200`,
  ]);
  await user.logOut();
});
