// What the example app says, read from its files, so that the tests derive their expectations
// from the rules and the sample data instead of copying them.
//
// Input: examples/tasks-app (realm_config.json, auth/providers.json, the collections'
// rules.json, sample/*.jsonl and sample/users/*.json). Output: parsed JSON, sample documents as
// BSON values (realm-web's own EJSON, so ObjectIds and dates compare with what the client
// returns), and small helpers over them.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as Realm from "realm-web";

import { exampleApp } from "./server.mjs";

const { EJSON } = Realm.BSON;

function json(path) {
  return JSON.parse(readFileSync(join(exampleApp, path), "utf8"));
}

/** `realm_config.json`. */
export const realmConfig = json("realm_config.json");

/** The app id clients pass to `new Realm.App`. */
export const appId = realmConfig.app_id;

/** `auth/providers.json`. */
export const providers = json("auth/providers.json");

/** `values/<name>.json`'s value. */
export function value(name) {
  return json(`values/${name}.json`).value;
}

/** The rules of `taskboard.<collection>`. */
export function rules(collection) {
  return json(`data_sources/mongodb-atlas/taskboard/${collection}/rules.json`);
}

/** The role named `name` of `taskboard.<collection>`. */
export function role(collection, name) {
  const found = rules(collection).roles.find((r) => r.name === name);
  if (!found) throw new Error(`no role ${name} in ${collection}`);
  return found;
}

/** The filter named `name` of `taskboard.<collection>`. */
export function filter(collection, name) {
  const found = rules(collection).filters.find((f) => f.name === name);
  if (!found) throw new Error(`no filter ${name} in ${collection}`);
  return found;
}

/** The sample documents of `taskboard.<collection>` (Extended JSON lines), as BSON values. */
export function sample(collection) {
  return readFileSync(join(exampleApp, `sample/${collection}.jsonl`), "utf8")
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => EJSON.parse(line, { relaxed: true }));
}

/** A sample user file (`sample/users/<name>.json`). */
export function sampleUser(name) {
  return json(`sample/users/${name}.json`);
}

/** The top-level fields a role's field rules let a reader see (`fields.X.read` true). */
export function readableFields(r) {
  return Object.entries(r.fields ?? {})
    .filter(([, rule]) => rule.read === true || rule.fields || rule.additional_fields)
    .map(([name]) => name);
}

/** `doc` with only `keys` (those it has). */
export function pick(doc, keys) {
  return Object.fromEntries(Object.entries(doc).filter(([k]) => keys.includes(k)));
}

/** `doc` without `keys`. */
export function omit(doc, keys) {
  return Object.fromEntries(Object.entries(doc).filter(([k]) => !keys.includes(k)));
}

/** Compares by a string field, as MongoDB sorts plain ASCII strings. */
export function byField(field) {
  return (a, b) => (a[field] < b[field] ? -1 : a[field] > b[field] ? 1 : 0);
}
