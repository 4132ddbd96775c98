// realm-web's `collection.watch()` (an async generator over change events: `GET
// …/functions/call?baas_request=…` with the access token in the Authorization header, answered
// with server-sent events) against `rolegate serve` on the example app with custom user data
// (as test/custom-data.test.mjs: a copy of examples/tasks-app plus `auth/custom_user_data.json`).
//
// Two registered users get the custom data of the sample users alice and bob (team
// "platform", no admin). bob writes tasks he owns; alice watches `taskboard.tasks` and sees
// bob's tasks of her team through role `teamViewer`, redacted; bob, their `owner`, sees them
// whole.
//
// A stream counts as open once the server logged its request line: the server subscribes the
// stream to the change feed before it answers, and logs the line after it answered. A change
// that must send nothing is proved by the next event received being a later, visible marker
// change, never by a sleep. Every wait is bounded (EVENT_MS), so a missing event fails fast.

import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, describe, test } from "node:test";

import { omit, pick, readableFields, role, sampleUser } from "../lib/app.mjs";
import { Realm, appAt, collection, registerAndLogIn } from "../lib/client.mjs";
import { appWithCustomUserData, importDocuments, startServer } from "../lib/server.mjs";

const { ObjectId } = Realm.BSON;

/** How long a test waits for one event or for a stream to open. */
const EVENT_MS = 3_000;

/** Rejects after `ms` with `what` in the message (the timer never keeps the process alive). */
function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, fail) => {
    timer = setTimeout(() => fail(new Error(`${what}: nothing within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

describe("realm-web watch", () => {
  let server;
  const users = {};
  const custom = {};
  /** The streams a test opened, closed after it (also when it failed). */
  let streams = [];

  before(async () => {
    const app = appWithCustomUserData();
    server = await startServer({ app });
    for (const name of ["alice", "bob"]) {
      users[name] = await registerAndLogIn(appAt(server.url), sampleUser(name).data.email);
      custom[name] = { ...sampleUser(name).custom_data, user_id: users[name].id };
    }
    const file = join(mkdtempSync(join(tmpdir(), "rolegate-e2e-watch-users-")), "users.jsonl");
    writeFileSync(file, Object.values(custom).map((d) => JSON.stringify(d)).join("\n"));
    await server.stop();
    importDocuments(app, server.store, "taskboard.users", file);
    server = await server.restart();
  });

  afterEach(async () => {
    await Promise.all(streams.map((s) => within(s.return(), EVENT_MS, "closing a stream")));
    streams = [];
  });

  after(async () => {
    assert.deepEqual(await server.stop(), { code: 0, signal: null });
  });

  /** `user`'s watch of `taskboard.tasks` with `options`, once the server has opened it. */
  async function watch(user, options) {
    const from = server.log.length;
    const stream = collection(user, "tasks").watch(options);
    streams.push(stream);
    const opened = async () => {
      for (;;) {
        const line = server.log
          .slice(from)
          .find((l) => l.includes(" request ") && l.includes("watch taskboard.tasks") && l.includes(user.id));
        if (line) return line;
        await new Promise((ok) => setTimeout(ok, 10));
      }
    };
    const line = await within(opened(), EVENT_MS, "the watch request's log line");
    assert.match(line, /status=200/, line);
    return stream;
  }

  /** The next event of `stream` (it must not end or fail). */
  async function next(stream, what) {
    const { done, value } = await within(stream.next(), EVENT_MS, what);
    assert.equal(done, false, `${what}: the stream ended`);
    return value;
  }

  /** A task bob owns (role `owner` lets him insert it), with fields `teamViewer` hides. */
  function bobsTask(title, extra = {}) {
    return {
      _id: new ObjectId(),
      owner_id: users.bob.id,
      project_id: new ObjectId(),
      title,
      status: "todo",
      team: "platform",
      collaborators: [],
      checklist: [{ text: "first step", done: false }],
      details: { summary: `${title}, in short`, estimateHours: 2, internalNotes: "not for viewers" },
      due: new Date("2025-10-01T12:00:00Z"),
      archived: false,
      ...extra,
    };
  }

  /** What `teamViewer` lets alice read of a task: its readable fields, details without
   * the sub-fields with read false. */
  function teamView(task) {
    const viewer = role("tasks", "teamViewer");
    const hidden = Object.entries(viewer.fields.details.fields)
      .filter(([, rule]) => rule.read === false)
      .map(([name]) => name);
    const seen = pick(task, readableFields(viewer));
    if (seen.details) seen.details = omit(seen.details, hidden);
    return seen;
  }

  const ns = { db: "taskboard", coll: "tasks" };
  const tasks = {};

  test("an insert by bob reaches alice redacted, as her find returns it, and bob whole", async () => {
    // alice: no custom isAdmin (not `admin`), owner_id is bob's (not `owner`), collaborators
    // empty (not `collaborator`), team = her custom_data.team: `teamViewer`, which reads only
    // the fields with read true and `details` without internalNotes.
    const viewer = role("tasks", "teamViewer");
    assert.deepEqual(viewer.apply_when, { team: "%%user.custom_data.team" });
    assert.equal(custom.alice.team, "platform");
    const alice = await watch(users.alice);
    const bob = await watch(users.bob);
    tasks.first = bobsTask("Watched: first");
    await collection(users.bob, "tasks").insertOne(tasks.first);

    const seen = await next(alice, "alice's insert event");
    const expected = teamView(tasks.first);
    assert.ok(!("owner_id" in expected) && !("internalNotes" in expected.details));
    assert.deepEqual(seen.fullDocument, expected);
    assert.deepEqual(await collection(users.alice, "tasks").findOne({ _id: tasks.first._id }), expected);
    assert.equal(seen.operationType, "insert");
    assert.deepEqual(seen.ns, ns);
    assert.deepEqual(seen.documentKey, { _id: tasks.first._id });
    assert.equal(seen.updateDescription, undefined);
    assert.ok(seen.clusterTime instanceof Realm.BSON.Timestamp);
    assert.equal(typeof seen._id._data, "string");

    // bob: `owner` (owner_id is his id), read true: the whole document.
    assert.deepEqual(role("tasks", "owner").apply_when, { owner_id: "%%user.id" });
    const whole = await next(bob, "bob's insert event");
    assert.deepEqual(whole.fullDocument, tasks.first);
    assert.equal(whole.operationType, "insert");
  });

  test("a large event with %, line breaks and non-ASCII text arrives intact", async () => {
    // The server percent-encodes `%`, LF and CR in the event data and realm-web decodes them;
    // the event (about 300 KB) spans many reads, so lines and UTF-8 characters are split.
    // details.summary is readable under teamViewer (details' additional_fields read true).
    assert.equal(role("tasks", "teamViewer").fields.details.additional_fields.read, true);
    const alice = await watch(users.alice);
    const summary = "50% done %0A %25 \n line\r\n é ✓ 𝄞 ".repeat(10_000);
    tasks.large = bobsTask("Watched: large", { details: { summary, estimateHours: 1 } });
    await collection(users.bob, "tasks").insertOne(tasks.large);
    const seen = await next(alice, "the large insert");
    assert.deepEqual(seen.documentKey, { _id: tasks.large._id });
    assert.equal(seen.fullDocument.details.summary.length, summary.length);
    assert.ok(seen.fullDocument.details.summary === summary, "the summary arrived altered");
    assert.deepEqual(seen.fullDocument, teamView(tasks.large));
  });

  test("inserts alice may not see send her nothing: her next event is the visible marker", async () => {
    // team "design" is not alice's team: no role applies to her (teamViewer needs her team,
    // owner and collaborator her id, admin isAdmin), so she cannot read it.
    tasks.otherTeam = bobsTask("Watched: another team", { team: "design" });
    const alice = await watch(users.alice);
    await collection(users.bob, "tasks").insertOne(tasks.otherTeam);
    assert.equal(await collection(users.alice, "tasks").findOne({ _id: tasks.otherTeam._id }), null);
    tasks.marker = bobsTask("Watched: marker");
    await collection(users.bob, "tasks").insertOne(tasks.marker);

    const seen = await next(alice, "the marker insert");
    assert.deepEqual(seen.documentKey, { _id: tasks.marker._id });
    assert.deepEqual(seen.fullDocument, teamView(tasks.marker));
    // The stream numbers its own events: the hidden insert left no gap (S8).
    assert.equal(seen.clusterTime.getLowBits(), 1);
  });

  test("an update of hidden fields only: nothing for alice, an event for the owner", async () => {
    // details.internalNotes has read false in teamViewer and `due` is not among its readable
    // fields: alice's view of the task is the same before and after. bob (owner) reads both.
    const alice = await watch(users.alice);
    const bob = await watch(users.bob);
    const hidden = { "details.internalNotes": "changed, still hidden", due: new Date("2025-11-01T12:00:00Z") };
    await collection(users.bob, "tasks").updateOne({ _id: tasks.first._id }, { $set: hidden });
    const owners = await next(bob, "bob's hidden-field update");
    assert.equal(owners.operationType, "update");
    assert.deepEqual(owners.documentKey, { _id: tasks.first._id });
    assert.deepEqual(owners.updateDescription, { updatedFields: hidden, removedFields: [] });
    assert.equal(owners.fullDocument.details.internalNotes, hidden["details.internalNotes"]);

    // status has read true in teamViewer: this update is the marker alice receives next.
    await collection(users.bob, "tasks").updateOne({ _id: tasks.first._id }, { $set: { status: "doing" } });
    const seen = await next(alice, "alice's status update");
    assert.equal(seen.operationType, "update");
    assert.deepEqual(seen.documentKey, { _id: tasks.first._id });
    assert.deepEqual(seen.updateDescription, { updatedFields: { status: "doing" }, removedFields: [] });
    assert.deepEqual(seen.fullDocument, teamView({ ...tasks.first, status: "doing" }));
    assert.equal(seen.clusterTime.getLowBits(), 1);
    const again = await next(bob, "bob's status update");
    assert.deepEqual(again.updateDescription.updatedFields, { status: "doing" });
  });

  test("watch({ids}) sends the changes of those documents only", async () => {
    // Both tasks are visible to alice (teamViewer); only the marker's id is asked for.
    const alice = await watch(users.alice, { ids: [tasks.marker._id] });
    await collection(users.bob, "tasks").updateOne({ _id: tasks.first._id }, { $set: { status: "done" } });
    await collection(users.bob, "tasks").updateOne({ _id: tasks.marker._id }, { $set: { status: "doing" } });
    const seen = await next(alice, "the update of the watched id");
    assert.deepEqual(seen.documentKey, { _id: tasks.marker._id });
    assert.deepEqual(seen.updateDescription.updatedFields, { status: "doing" });
  });

  test("watch({filter}) matches the redacted event: a hidden field is missing to alice", async () => {
    // The filter asks for bob's tasks (owner_id, which teamViewer hides from alice) or a
    // status of "done" (readable). alice's copy of the insert has no owner_id: no match; the
    // later status change matches. bob (owner) reads owner_id: both match for him.
    assert.ok(!readableFields(role("tasks", "teamViewer")).includes("owner_id"));
    const query = { $or: [{ "fullDocument.owner_id": users.bob.id }, { "fullDocument.status": "done" }] };
    const alice = await watch(users.alice, { filter: query });
    const bob = await watch(users.bob, { filter: query });
    tasks.filtered = bobsTask("Watched: filtered");
    await collection(users.bob, "tasks").insertOne(tasks.filtered);
    await collection(users.bob, "tasks").updateOne({ _id: tasks.filtered._id }, { $set: { status: "done" } });

    const seen = await next(alice, "alice's filtered event");
    assert.equal(seen.operationType, "update");
    assert.deepEqual(seen.documentKey, { _id: tasks.filtered._id });
    assert.equal(seen.fullDocument.status, "done");
    assert.ok(!("owner_id" in seen.fullDocument));

    const inserted = await next(bob, "bob's filtered insert");
    assert.equal(inserted.operationType, "insert");
    assert.equal(inserted.fullDocument.owner_id, users.bob.id);
    const updated = await next(bob, "bob's filtered update");
    assert.equal(updated.operationType, "update");
    assert.deepEqual(updated.documentKey, { _id: tasks.filtered._id });
  });

  test("deletes: alice receives those of documents she could see, with no document", async () => {
    // Role owner has delete true for bob. A delete is sent when the deleted version was
    // visible: the other team's task never was to alice (no role), the filtered one was
    // (teamViewer).
    assert.equal(role("tasks", "owner").delete, true);
    const alice = await watch(users.alice);
    const bobs = collection(users.bob, "tasks");
    assert.deepEqual(await bobs.deleteOne({ _id: tasks.otherTeam._id }), { deletedCount: 1 });
    assert.deepEqual(await bobs.deleteOne({ _id: tasks.filtered._id }), { deletedCount: 1 });
    const seen = await next(alice, "alice's delete event");
    assert.equal(seen.operationType, "delete");
    assert.deepEqual(seen.documentKey, { _id: tasks.filtered._id });
    assert.deepEqual(seen.ns, ns);
    assert.equal(seen.fullDocument, undefined);
    assert.equal(seen.updateDescription, undefined);
  });

  test("return() ends the stream cleanly, and watching again works", async () => {
    const from = server.log.length;
    const alice = await watch(users.alice);
    const pending = alice.next();
    assert.deepEqual(await within(alice.return(), EVENT_MS, "return()"), { done: true, value: undefined });
    // The read in progress ends as the end of the stream, not as an error.
    assert.deepEqual(await within(pending, EVENT_MS, "the pending next()"), { done: true, value: undefined });
    assert.deepEqual(await alice.next(), { done: true, value: undefined });
    // The server still serves the user: a new watch receives the next change.
    const again = await watch(users.alice);
    await collection(users.bob, "tasks").updateOne({ _id: tasks.marker._id }, { $set: { status: "done" } });
    const seen = await next(again, "the new stream's event");
    assert.deepEqual(seen.documentKey, { _id: tasks.marker._id });
    // The server logged no warning or error about the closed stream.
    const logged = server.log.slice(from);
    assert.ok(!logged.some((l) => / (ERROR|WARN) /.test(l)), logged.join("\n"));
  });
});
