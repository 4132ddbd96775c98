// realm-web against the example app with custom user data enabled (a copy of
// examples/tasks-app plus `auth/custom_user_data.json`: `taskboard.users`, keyed by `user_id`).
// Three registered users get the custom data of the sample users alice, bob and admin
// (imported with `rolegate import` while the server is stopped, then the server restarts on
// the same store and key): the roles that read custom data now tell them apart, and
// `teamViewer`, `manager` and `teammate` redact fields.

import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { byField, filter, omit, pick, readableFields, role, sample, sampleUser } from "../lib/app.mjs";
import { appAt, collection, registerAndLogIn } from "../lib/client.mjs";
import { appWithCustomUserData, importDocuments, startServer } from "../lib/server.mjs";

describe("realm-web with custom user data", () => {
  let server;
  const users = {};
  const custom = {};

  before(async () => {
    const app = appWithCustomUserData();
    server = await startServer({ app });
    for (const name of ["alice", "bob", "admin"]) {
      users[name] = await registerAndLogIn(appAt(server.url), sampleUser(name).data.email);
      custom[name] = { ...sampleUser(name).custom_data, user_id: users[name].id };
    }
    const file = join(mkdtempSync(join(tmpdir(), "rolegate-e2e-users-")), "users.jsonl");
    writeFileSync(file, Object.values(custom).map((d) => JSON.stringify(d)).join("\n"));
    await server.stop();
    importDocuments(app, server.store, "taskboard.users", file);
    server = await server.restart();
  });

  after(async () => {
    assert.deepEqual(await server.stop(), { code: 0, signal: null });
  });

  test("the access token carries the custom data after a refresh", async () => {
    for (const [name, user] of Object.entries(users)) {
      assert.deepEqual(user.customData, {});
      const data = await user.refreshCustomData();
      assert.deepEqual(omit(data, ["_id"]), custom[name]);
      assert.equal(user.customData.team, custom[name].team);
    }
  });

  test("find with a projection and a sort: teamViewer redacts the sample tasks", async () => {
    // alice owns and collaborates on no sample task (they name the sample users' ids, not
    // hers), and she is no admin: on the tasks of her team `teamViewer` applies. Its field rules keep only
    // the fields with read true, and `details` without `internalNotes`. The filter
    // hideArchivedFromNonAdmins removes archived tasks first.
    const viewer = role("tasks", "teamViewer");
    assert.deepEqual(viewer.apply_when, { team: "%%user.custom_data.team" });
    assert.deepEqual(filter("tasks", "hideArchivedFromNonAdmins").query, { archived: { $ne: true } });
    const hiddenInDetails = Object.keys(viewer.fields.details.fields).filter((f) => viewer.fields.details.fields[f].read === false);
    const readable = readableFields(viewer);
    const projection = { title: 1, owner_id: 1, status: 1, details: 1 };
    const expected = sample("tasks")
      .filter((t) => t.team === custom.alice.team && t.archived !== true)
      .map((t) => {
        const seen = pick(t, readable);
        if (seen.details) seen.details = omit(seen.details, hiddenInDetails);
        return pick(seen, ["_id", ...Object.keys(projection)]);
      })
      .sort(byField("title"));
    // The case is not vacuous: owner_id is asked for and redacted, and one task has notes.
    assert.ok(!readable.includes("owner_id"));
    assert.ok(sample("tasks").some((t) => t.team === custom.alice.team && t.details?.internalNotes));
    assert.ok(expected.length >= 2);
    // bob (a new id too, same team in his custom data) sees exactly the same.
    for (const name of ["alice", "bob"]) {
      const got = await collection(users[name], "tasks").find({}, { projection, sort: { title: 1 } });
      assert.deepEqual(got, expected, name);
    }
  });

  test("the admin (custom_data.isAdmin) reads every task, archived ones too; alice fewer", async () => {
    // Role `admin` is first and reads isAdmin; the archive filter's apply_when is isAdmin $ne true.
    assert.deepEqual(role("tasks", "admin").apply_when, { "%%user.custom_data.isAdmin": true });
    assert.equal(custom.admin.isAdmin, true);
    const all = sample("tasks").sort(byField("title"));
    assert.deepEqual(await collection(users.admin, "tasks").find({}, { sort: { title: 1 } }), all);
    const count = await collection(users.admin, "tasks").count({});
    assert.equal(typeof count, "number");
    assert.equal(count, all.length);
    assert.ok((await collection(users.alice, "tasks").count({})) < count);
  });

  test("employees: manager, employee and teammate by custom data and email", async () => {
    // For alice, first matching role: hrAdmin (isAdmin: no); manager (email in her
    // custom_data.manages): every field but those with read false; employee (email is her
    // own): read true; teammate (same team): the fields with read true, contact limited to
    // its readable sub-fields; anyone else: withheld.
    const manager = role("employees", "manager");
    const teammate = role("employees", "teammate");
    const notForManagers = Object.keys(manager.fields).filter((f) => manager.fields[f].read === false);
    const contactForTeammates = Object.keys(teammate.fields.contact.fields).filter((f) => teammate.fields.contact.fields[f].read);
    const me = sampleUser("alice").data.email;
    const expected = sample("employees").flatMap((e) => {
      if (custom.alice.manages.includes(e.email)) return [omit(e, notForManagers)];
      if (e.email === me) return [e];
      if (e.team === custom.alice.team) {
        const seen = pick(e, readableFields(teammate));
        seen.contact = pick(e.contact, contactForTeammates);
        return [seen];
      }
      return [];
    });
    assert.deepEqual(notForManagers, ["ssn"]);
    assert.ok(expected.length < sample("employees").length);
    assert.deepEqual(await collection(users.alice, "employees").find({}, { sort: { _id: 1 } }), expected);
    // bob manages nobody (an empty `manages` never matches): his own record in full, his
    // teammates' directory entries, and no ssn but his own.
    const bobs = await collection(users.bob, "employees").find({}, { sort: { _id: 1 } });
    assert.deepEqual(
      bobs.filter((e) => "ssn" in e).map((e) => e.email),
      [sampleUser("bob").data.email],
    );
  });

  test("a user cannot write their own custom data (the default rule's ownerOnly needs owner_id)", async () => {
    // taskboard.users has no rules.json: the default rule governs it, whose filter keeps
    // only documents with owner_id = the user, which the custom data documents lack.
    const own = collection(users.alice, "users");
    assert.deepEqual(await own.find({}), []);
    assert.deepEqual(await own.updateOne({ user_id: users.alice.id }, { $set: { isAdmin: true } }), {
      matchedCount: 0,
      modifiedCount: 0,
    });
    assert.equal((await users.alice.refreshCustomData()).isAdmin, false);
  });
});
