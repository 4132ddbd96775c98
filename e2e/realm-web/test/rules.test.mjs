// realm-web 2.x against `rolegate serve examples/tasks-app` (the app exactly as committed, its
// store seeded with the sample data): sessions, reads and writes of two registered users and
// an anonymous one, each expectation derived from the app's rules, providers and samples.
//
// The example app does not enable custom user data, so for these users every
// `%%user.custom_data.*` path is missing: the roles that read it (`admin`, `teamViewer`,
// `hrAdmin`, `manager`, `teammate`, ...) never apply. What tells users apart here is
// ownership (`owner_id`, `collaborators`) and the email (`%%user.data.email`).
// custom-data.test.mjs covers the custom-data roles.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { byField, filter, pick, providers, realmConfig, role, rules, sample, value } from "../lib/app.mjs";
import { PASSWORD, Realm, appAt, collection, jwtPayload, refused, registerAndLogIn } from "../lib/client.mjs";
import { startServer } from "../lib/server.mjs";

describe("realm-web on the example app", () => {
  let server;
  let app;
  let alice;
  let bob;
  const aliceEmail = "alice@example.com";
  const bobEmail = "bob@example.com";
  // Task ids, shared between the ordered steps below.
  const ids = {};

  before(async () => {
    server = await startServer();
    app = appAt(server.url);
  });

  after(async () => {
    const status = await server.stop();
    // SIGTERM stops the server gracefully.
    assert.deepEqual(status, { code: 0, signal: null });
    assert.ok(server.log.some((l) => l.includes("stopped")), server.log.join("\n"));
  });

  test("register and log in with local-userpass", async () => {
    // auth/providers.json enables local-userpass with autoConfirm, so registration logs in at once.
    assert.equal(providers["local-userpass"].disabled, false);
    assert.equal(providers["local-userpass"].config.autoConfirm, true);
    alice = await registerAndLogIn(app, aliceEmail);
    bob = await registerAndLogIn(appAt(server.url), bobEmail);
    for (const [user, email] of [[alice, aliceEmail], [bob, bobEmail]]) {
      assert.match(user.id, /^[0-9a-f]{24}$/);
      assert.equal(user.providerType, "local-userpass");
      assert.equal(user.profile.email, email);
      assert.equal(user.state, Realm.UserState.Active);
      const claims = jwtPayload(user.accessToken);
      assert.equal(claims.sub, user.id);
      assert.equal(typeof claims.exp, "number");
      assert.equal(typeof claims.iat, "number");
    }
    assert.notEqual(alice.id, bob.id);
    // An email registers once.
    await refused(
      app.emailPasswordAuth.registerUser({ email: aliceEmail, password: PASSWORD }),
      "AccountNameInUse",
      409,
    );
    // A wrong password is refused with the generic message.
    await refused(
      app.logIn(Realm.Credentials.emailPassword(aliceEmail, `${PASSWORD}!`)),
      "InvalidPassword",
      401,
    );
  });

  test("anonymous login (enabled by auth/providers.json) and what an anonymous user reads", async () => {
    const enabled = providers["anon-user"] && !providers["anon-user"].disabled;
    const anonApp = appAt(server.url);
    if (!enabled) {
      await refused(anonApp.logIn(Realm.Credentials.anonymous()), "AuthProviderNotFound", 404);
      return;
    }
    const anon = await anonApp.logIn(Realm.Credentials.anonymous());
    assert.equal(anon.providerType, "anon-user");
    assert.match(anon.id, /^[0-9a-f]{24}$/);
    // announcements: role `reader` has apply_when {} and read true; filter
    // hideDraftsInProduction applies in the "production" environment to users outside
    // adminUserIds, so drafts are left out. A projection and a sort, checked in order.
    assert.deepEqual(role("announcements", "reader").apply_when, {});
    const drafts = filter("announcements", "hideDraftsInProduction");
    assert.equal(drafts.apply_when["%%environment.tag"], realmConfig.environment);
    assert.ok(!value("adminUserIds").includes(anon.id));
    const expected = sample("announcements")
      .filter((a) => a.draft !== true)
      .sort(byField("title"))
      .reverse()
      .map((a) => pick(a, ["_id", "title"]));
    assert.ok(expected.length > 0 && expected.length < sample("announcements").length);
    const got = await collection(anon, "announcements").find({}, { projection: { title: 1 }, sort: { title: -1 } });
    assert.deepEqual(got, expected);
    // tasks: no role applies to an anonymous user on any sample task (owner_id and
    // collaborators name other ids; admin and teamViewer read custom data it has not).
    assert.deepEqual(await collection(anon, "tasks").find({}), []);
    await anon.logOut();
  });

  test("find by email: each user reads their own employee record in full, and not the other's", async () => {
    // employees: role `employee` applies when `email` is %%user.data.email and has read true;
    // every other role reads custom data (missing here), so other records are withheld.
    assert.deepEqual(role("employees", "employee").apply_when, { email: "%%user.data.email" });
    assert.equal(role("employees", "employee").read, true);
    for (const [user, email] of [[alice, aliceEmail], [bob, bobEmail]]) {
      const own = sample("employees").filter((e) => e.email === email);
      assert.equal(own.length, 1);
      assert.deepEqual(await collection(user, "employees").find({}), own);
    }
  });

  test("find of projects: the %function role denies, so a registered user sees none", async () => {
    // projects: `teamMember` (the second role, after projectAdmin, which needs an id in
    // adminUserIds) calls %function isTeamMember; `rolegate serve` runs no functions, and an
    // evaluation error denies the document, so the later `publicReader` is never tried.
    const names = rules("projects").roles.map((r) => r.name);
    assert.ok(names.indexOf("teamMember") < names.indexOf("publicReader"));
    assert.ok("%function" in role("projects", "teamMember").apply_when["%%true"]);
    assert.deepEqual(await collection(alice, "projects").find({}), []);
  });

  test("insertOne allowed (owner) and refused (no role, schema)", async () => {
    // tasks: role `owner` applies when owner_id is %%user.id and has insert true; the schema
    // requires owner_id, title, status (an enum) and team.
    assert.equal(role("tasks", "owner").insert, true);
    const tasks = collection(alice, "tasks");
    const mine = { owner_id: alice.id, title: "Alpha: alice's own task", status: "todo", team: "platform", details: { estimateHours: 3 } };
    const shared = { owner_id: alice.id, title: "Beta: shared with bob", status: "todo", team: "platform", collaborators: [bob.id], checklist: [] };
    ids.mine = (await tasks.insertOne(mine)).insertedId;
    ids.shared = (await tasks.insertOne(shared)).insertedId;
    assert.ok(ids.mine instanceof Realm.BSON.ObjectId);
    assert.deepEqual(await tasks.findOne({ _id: ids.mine }), { _id: ids.mine, ...mine });
    // bob inserting a task owned by alice: owner needs owner_id = bob, collaborator and
    // teamViewer have insert false (and need collaborators/custom data), admin needs
    // custom data: no role may insert it.
    await refused(
      collection(bob, "tasks").insertOne({ owner_id: alice.id, title: "Not mine to create", status: "todo", team: "platform" }),
      "InsertNotPermitted",
      400,
    );
    // The schema's enum for `status` refuses "blocked" even for the owner.
    await refused(
      tasks.insertOne({ owner_id: alice.id, title: "Bad status", status: "blocked", team: "platform" }),
      "SchemaValidationFailedWrite",
      400,
    );
    // Nothing of the refused inserts was written.
    assert.equal(await tasks.count({ title: { $in: ["Not mine to create", "Bad status"] } }), 0);
  });

  test("find with a projection and a sort: what each user sees of alice's tasks", async () => {
    // alice is `owner` of both tasks; bob is `collaborator` (collaborators contains his id,
    // read true) of the shared one only, and no role applies to him on the other.
    const options = { projection: { title: 1, status: 1, collaborators: 1 }, sort: { title: -1 } };
    assert.deepEqual(await collection(alice, "tasks").find({ owner_id: alice.id }, options), [
      { _id: ids.shared, title: "Beta: shared with bob", status: "todo", collaborators: [bob.id] },
      { _id: ids.mine, title: "Alpha: alice's own task", status: "todo" },
    ]);
    assert.deepEqual(role("tasks", "collaborator").apply_when, { collaborators: "%%user.id" });
    assert.deepEqual(await collection(bob, "tasks").find({ owner_id: alice.id }, options), [
      { _id: ids.shared, title: "Beta: shared with bob", status: "todo", collaborators: [bob.id] },
    ]);
    assert.equal(await collection(bob, "tasks").findOne({ _id: ids.mine }), null);
  });

  test("updateOne with $inc and $push, allowed and refused", async () => {
    const aliceTasks = collection(alice, "tasks");
    const bobTasks = collection(bob, "tasks");
    // owner: write true.
    assert.deepEqual(await aliceTasks.updateOne({ _id: ids.mine }, { $inc: { "details.estimateHours": 2 } }), {
      matchedCount: 1,
      modifiedCount: 1,
    });
    assert.equal((await aliceTasks.findOne({ _id: ids.mine })).details.estimateHours, 5);
    // collaborator: only `status` and `checklist` are writable (fields.*.write), so an $inc
    // of details.estimateHours on the shared task is refused, and one on the task bob cannot
    // see matches nothing.
    const writable = Object.keys(role("tasks", "collaborator").fields).filter((f) => role("tasks", "collaborator").fields[f].write);
    assert.deepEqual(writable.sort(), ["checklist", "status"]);
    await refused(bobTasks.updateOne({ _id: ids.shared }, { $inc: { "details.estimateHours": 1 } }), "UpdateNotPermitted", 400);
    assert.deepEqual(await bobTasks.updateOne({ _id: ids.mine }, { $inc: { "details.estimateHours": 1 } }), {
      matchedCount: 0,
      modifiedCount: 0,
    });
    assert.equal((await aliceTasks.findOne({ _id: ids.mine })).details.estimateHours, 5);
    // $push to checklist: writable for the collaborator.
    const item = { text: "Proofread", done: false };
    assert.deepEqual(await bobTasks.updateOne({ _id: ids.shared }, { $push: { checklist: item } }), {
      matchedCount: 1,
      modifiedCount: 1,
    });
    // $push to collaborators: not writable for the collaborator, writable for the owner.
    await refused(bobTasks.updateOne({ _id: ids.shared }, { $push: { collaborators: "66b0b000000000000000000b" } }), "UpdateNotPermitted", 400);
    assert.deepEqual(await aliceTasks.updateOne({ _id: ids.mine }, { $push: { collaborators: bob.id } }), {
      matchedCount: 1,
      modifiedCount: 1,
    });
    const shared = await aliceTasks.findOne({ _id: ids.shared });
    assert.deepEqual(shared.checklist, [item]);
    assert.deepEqual(shared.collaborators, [bob.id]);
    // bob now collaborates on the first task too, so he sees it.
    assert.equal((await bobTasks.findOne({ _id: ids.mine })).title, "Alpha: alice's own task");
  });

  test("an upsert reports upsertedId only when it inserts", async () => {
    const tasks = collection(alice, "tasks");
    const query = { owner_id: alice.id, title: "Gamma: upserted" };
    const update = { $set: { status: "doing", team: "platform" } };
    const first = await tasks.updateOne(query, update, { upsert: true });
    assert.equal(first.matchedCount, 0);
    assert.ok(first.upsertedId instanceof Realm.BSON.ObjectId, JSON.stringify(first));
    ids.upserted = first.upsertedId;
    const again = await tasks.updateOne(query, { $set: { status: "done" } }, { upsert: true });
    assert.deepEqual(again, { matchedCount: 1, modifiedCount: 1 });
    assert.ok(!("upsertedId" in again));
    assert.deepEqual(await tasks.findOne({ _id: ids.upserted }), { _id: ids.upserted, ...query, status: "done", team: "platform" });
    // An upsert by bob of a task owned by alice inserts nothing: no role may insert it.
    await refused(collection(bob, "tasks").updateOne({ owner_id: alice.id, title: "Delta" }, update, { upsert: true }), "InsertNotPermitted", 400);
  });

  test("count is a number, and each user counts what they may read", async () => {
    for (const [user, visible] of [[alice, [ids.mine, ids.shared, ids.upserted]], [bob, [ids.mine, ids.shared]]]) {
      const count = await collection(user, "tasks").count({});
      assert.equal(typeof count, "number");
      assert.equal(count, visible.length);
      const found = await collection(user, "tasks").find({}, { sort: { _id: 1 } });
      assert.deepEqual(found.map((t) => t._id.toHexString()), visible.map((i) => i.toHexString()).sort());
    }
  });

  test("deleteMany: refused as a whole when one document may not be deleted, else counted", async () => {
    // collaborator: delete false. bob's deleteMany touches two tasks he collaborates on.
    assert.equal(role("tasks", "collaborator").delete, false);
    await refused(collection(bob, "tasks").deleteMany({}), "DeleteNotPermitted", 400);
    assert.equal(await collection(alice, "tasks").count({}), 3);
    // owner: delete true.
    const result = await collection(alice, "tasks").deleteMany({ owner_id: alice.id, status: { $in: ["todo", "done"] } });
    assert.deepEqual(result, { deletedCount: 3 });
    assert.equal(await collection(alice, "tasks").count({}), 0);
    // The sample tasks are untouched: bob's deleteMany over them matches nothing he may see.
    assert.deepEqual(await collection(bob, "tasks").deleteMany({}), { deletedCount: 0 });
  });

  test("findOneAndDelete of realm-web 2.0.1 is refused, and the document stays", async () => {
    // realm-web 2.0.1 sends findOneAndDelete as a `findOneAndReplace` without `update` (a
    // client bug; App Services replaced the document with an empty one). rolegate refuses a
    // findOneAndReplace without its replacement as an invalid parameter: nothing is written.
    const tasks = collection(alice, "tasks");
    const doc = { owner_id: alice.id, title: "Epsilon: kept", status: "todo", team: "platform" };
    const { insertedId } = await tasks.insertOne(doc);
    await refused(tasks.findOneAndDelete({ _id: insertedId }), "InvalidParameter", 400);
    assert.deepEqual(await tasks.findOne({ _id: insertedId }), { _id: insertedId, ...doc });
    // deleteOne is the way that works (owner: delete true).
    assert.deepEqual(await tasks.deleteOne({ _id: insertedId }), { deletedCount: 1 });
  });

  test("log out revokes the session", async () => {
    const refreshToken = bob.refreshToken;
    await bob.logOut();
    assert.equal(bob.state, Realm.UserState.LoggedOut);
    assert.equal(bob.refreshToken, null);
    // The refresh token no longer opens a session.
    const res = await fetch(`${server.url}/api/client/v2.0/auth/session`, {
      method: "POST",
      headers: { Authorization: `Bearer ${refreshToken}` },
    });
    assert.equal(res.status, 401);
    assert.equal((await res.json()).error_code, "InvalidSession");
    // alice's session is another one, still open.
    assert.equal(await collection(alice, "tasks").count({}), 0);
    await alice.logOut();
  });
});
