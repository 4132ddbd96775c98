// Realm Web pointed at `rolegate serve examples/tasks-app` (see the README's quick start).
import * as Realm from "realm-web";

const baseUrl = process.env.ROLEGATE_URL ?? "http://127.0.0.1:8080";
const app = new Realm.App({ id: "taskboard-ab1cd", baseUrl });
const credentials = { email: "ann@example.com", password: "s3cret-pass" };

try {
  await app.emailPasswordAuth.registerUser(credentials);
} catch (e) {
  if (e.errorCode !== "AccountNameInUse") throw e; // registered by an earlier run
}
const user = await app.logIn(Realm.Credentials.emailPassword(credentials.email, credentials.password));
const tasks = user.mongoClient("mongodb-atlas").db("taskboard").collection("tasks");

// The rules let a user create tasks they own, and read them back.
await tasks.insertOne({ owner_id: user.id, title: "Try rolegate", status: "todo", team: "platform" });
console.log(await tasks.find({ status: "todo" }, { sort: { title: 1 } }));
await user.logOut();
