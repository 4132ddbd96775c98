// realm-web helpers shared by the tests: an app pointed at a server, users, and the error a
// refused call raises.
//
// Input: a running server's URL. Output: `Realm.App`s, logged-in users, collections, and the
// `MongoDBRealmError` of a refused call.

import assert from "node:assert/strict";
import * as Realm from "realm-web";

import { appId } from "./app.mjs";

export { Realm };

/** A password every test user gets. */
export const PASSWORD = "correct horse battery";

/** A realm-web app pointed at `url` (a new one per call: each keeps its own users). */
export function appAt(url) {
  return new Realm.App({ id: appId, baseUrl: url });
}

/** Registers `email` (local-userpass, auto-confirmed by the app) and logs it in. */
export async function registerAndLogIn(app, email) {
  await app.emailPasswordAuth.registerUser({ email, password: PASSWORD });
  return app.logIn(Realm.Credentials.emailPassword(email, PASSWORD));
}

/** `taskboard.<name>` as `user`. */
export function collection(user, name) {
  return user.mongoClient("mongodb-atlas").db("taskboard").collection(name);
}

/**
 * Awaits `promise`, which must fail as realm-web reports a server refusal: a
 * `MongoDBRealmError` with `errorCode` and `statusCode`.
 */
export async function refused(promise, errorCode, statusCode) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof Realm.MongoDBRealmError, `a MongoDBRealmError, not ${e}`);
    assert.equal(e.errorCode, errorCode, e.message);
    assert.equal(e.statusCode, statusCode, e.message);
    return true;
  });
}

/** The decoded payload of a JWT (no signature check: the client never checks one either). */
export function jwtPayload(token) {
  const part = token.split(".")[1];
  return JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
}
