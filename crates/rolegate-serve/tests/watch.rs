//! `watch` over a real socket: the server on a loopback port, a raw HTTP/1.1 client (no client
//! library), change streams read as the clients parse them (chunked body, SSE lines, the
//! three-sequence percent-decoding). The app is a copy of the example app (custom user data
//! enabled, no default rule) on a temporary store.
//!
//! Where a test shows that an event was *not* sent, it writes a later event the stream does
//! see, and checks that this one comes first: no sleeps, no waiting for silence.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers fail the test by panicking"
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bson::doc;
use rolegate::ops::{Change, Namespace, Store, WriteSet};
use rolegate_serve::feed::PublishingStore;
use rolegate_serve::{AppState, ServeConfig, router, serve};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::timeout;

mod support;

const APP_ID: &str = "taskboard-ab1cd";
const KEY: &[u8] = b"a test signing key of at least thirty-two bytes";
/// How long any one read may take before the test fails (nothing here should come close).
const PATIENCE: Duration = Duration::from_secs(10);

struct Server {
    state: Arc<AppState>,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

async fn server(configure: impl FnOnce(&mut ServeConfig)) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let app = support::example_app(dir.path(), true);
    // Without the default rule, a collection without a rule file has no rules.
    std::fs::remove_file(app.join("data_sources/mongodb-atlas/default_rule.json")).unwrap();
    let mut config = ServeConfig::new(&app, dir.path().join("data"));
    config.signing_key = Some(KEY.to_vec());
    configure(&mut config);
    let state = AppState::open(&config).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let closing = Arc::clone(&state);
    let task = tokio::spawn(serve(listener, router(Arc::clone(&state)), async move {
        let _ = stopped.await;
        closing.streams.close();
    }));
    Server {
        state,
        addr,
        stop: Some(stop),
        task,
        _dir: dir,
    }
}

/// A response read whole: status, headers (lower-cased names), body.
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads the status line and headers; returns them and the bytes read past them.
async fn read_head(stream: &mut TcpStream) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut buf = Vec::new();
    let end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i;
        }
        let mut chunk = [0u8; 4096];
        let n = timeout(PATIENCE, stream.read(&mut chunk))
            .await
            .expect("the response head in time")
            .unwrap();
        assert!(n > 0, "the connection closed before the response head");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..end].to_vec()).unwrap();
    let rest = buf[end + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, rest)
}

/// Decodes the complete chunks at the front of `raw` into `body`; true once the last chunk
/// (size 0) was read.
fn dechunk(raw: &mut Vec<u8>, body: &mut Vec<u8>) -> bool {
    loop {
        let Some(line_end) = find(raw, b"\r\n") else {
            return false;
        };
        let size_text = String::from_utf8(raw[..line_end].to_vec()).unwrap();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        if size == 0 {
            return true;
        }
        if raw.len() < line_end + 2 + size + 2 {
            return false;
        }
        body.extend_from_slice(&raw[line_end + 2..line_end + 2 + size]);
        raw.drain(..line_end + 2 + size + 2);
    }
}

impl Server {
    fn path(&self, rest: &str) -> String {
        format!("/api/client/v2.0/app/{APP_ID}/{rest}")
    }

    async fn connect(&self) -> TcpStream {
        TcpStream::connect(self.addr).await.unwrap()
    }

    /// One request on its own connection, read to its end.
    async fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut stream = self.connect().await;
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        if !body.is_empty() {
            head.push_str("Content-Type: application/json\r\n");
        }
        if let Some(t) = token {
            head.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(body.as_bytes()).await.unwrap();
        let (status, headers, mut raw) = read_head(&mut stream).await;
        timeout(PATIENCE, stream.read_to_end(&mut raw))
            .await
            .expect("the response body in time")
            .unwrap();
        let chunked = headers
            .iter()
            .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
        let body = if chunked {
            let mut body = Vec::new();
            dechunk(&mut raw, &mut body);
            body
        } else {
            raw
        };
        Response {
            status,
            headers,
            body,
        }
    }

    /// Registers and logs in; returns (user id, access token).
    async fn user(&self, email: &str) -> (String, String) {
        let r = self
            .request(
                "POST",
                &self.path("auth/providers/local-userpass/register"),
                None,
                Some(json!({"email": email, "password": "secret12"})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        let r = self
            .request(
                "POST",
                &self.path("auth/providers/local-userpass/login"),
                None,
                Some(json!({"username": email, "password": "secret12"})),
            )
            .await;
        assert_eq!(r.status, 200);
        let login = r.json();
        (
            login["user_id"].as_str().unwrap().to_string(),
            login["access_token"].as_str().unwrap().to_string(),
        )
    }

    /// `functions/call` of a MongoDB action on `taskboard.<collection>`.
    async fn call(&self, token: &str, name: &str, collection: &str, args: Value) -> Value {
        let mut arguments = json!({"database": "taskboard", "collection": collection});
        arguments
            .as_object_mut()
            .unwrap()
            .extend(args.as_object().unwrap().clone());
        let r = self
            .request(
                "POST",
                &self.path("functions/call"),
                Some(token),
                Some(json!({"name": name, "service": "mongodb-atlas", "arguments": [arguments]})),
            )
            .await;
        assert_eq!(
            r.status,
            200,
            "{name}: {}",
            String::from_utf8_lossy(&r.body)
        );
        r.json()
    }

    /// Custom user data (team, admin flag), written to the data store directly.
    fn profile(&self, user_id: &str, team: &str) {
        self.state
            .data
            .write(&WriteSet {
                namespace: Namespace::new("taskboard", "users"),
                changes: vec![Change::Insert(
                    doc! {"_id": bson::oid::ObjectId::new(), "user_id": user_id, "team": team, "isAdmin": false},
                )],
            })
            .unwrap();
    }

    /// Opens a watch: `auth` is `Some(token)` for a bearer header, and `baas_at` adds the
    /// token as the query parameter instead.
    async fn watch(&self, body: Value, auth: Auth<'_>) -> Result<Watch, Response> {
        let parameter = percent_encode(&base64(body.to_string().as_bytes()));
        let mut path = self.path(&format!("functions/call?baas_request={parameter}"));
        let mut head = String::new();
        match auth {
            Auth::Bearer(t) => head.push_str(&format!("Authorization: Bearer {t}\r\n")),
            Auth::Query(t) => path.push_str(&format!("&baas_at={t}")),
            Auth::None => {}
        }
        let mut stream = self.connect().await;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n{head}\r\n",
            self.addr
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let (status, headers, mut raw) = read_head(&mut stream).await;
        if status != 200 {
            let length: usize = headers
                .iter()
                .find(|(n, _)| n == "content-length")
                .map_or(0, |(_, v)| v.parse().unwrap());
            while raw.len() < length {
                let mut chunk = [0u8; 4096];
                let n = timeout(PATIENCE, stream.read(&mut chunk))
                    .await
                    .unwrap()
                    .unwrap();
                assert!(n > 0);
                raw.extend_from_slice(&chunk[..n]);
            }
            return Err(Response {
                status,
                headers,
                body: raw,
            });
        }
        let content_type = headers
            .iter()
            .find(|(n, _)| n == "content-type")
            .map(|(_, v)| v.clone());
        assert_eq!(content_type.as_deref(), Some("text/event-stream"));
        let mut watch = Watch {
            stream,
            raw,
            body: Vec::new(),
            ended: false,
        };
        // The stream opens with a comment: the server has subscribed.
        assert_eq!(watch.frame().await.as_deref(), Some(": watching"));
        Ok(watch)
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        timeout(PATIENCE, self.task)
            .await
            .expect("the server stops in time")
            .unwrap()
            .unwrap();
    }
}

#[derive(Clone, Copy)]
enum Auth<'a> {
    Bearer(&'a str),
    Query(&'a str),
    None,
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `encodeURIComponent` of base64 text.
fn percent_encode(text: &str) -> String {
    text.replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D")
}

/// The clients' decoding of event data: exactly `%25`, `%0A`, `%0D`.
fn client_decode(data: &str) -> String {
    let mut out = String::new();
    let mut rest = data;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let seq = rest.get(i..i + 3).unwrap_or(&rest[i..]);
        out.push_str(match seq {
            "%25" => "%",
            "%0A" => "\n",
            "%0D" => "\r",
            other => other,
        });
        rest = &rest[i + seq.len()..];
    }
    out.push_str(rest);
    out
}

struct Watch {
    stream: TcpStream,
    raw: Vec<u8>,
    body: Vec<u8>,
    ended: bool,
}

/// One event as a client reads it.
#[derive(Debug)]
enum Event {
    /// `data:` (decoded, parsed).
    Data(Value),
    /// `event: error`.
    Error(Value),
    /// The body ended.
    End,
}

impl Watch {
    /// The next frame (the lines up to an empty line, without it); `None` at the end.
    async fn frame(&mut self) -> Option<String> {
        loop {
            if !self.ended && dechunk(&mut self.raw, &mut self.body) {
                self.ended = true;
            }
            if let Some(i) = find(&self.body, b"\n\n") {
                let frame = String::from_utf8(self.body[..i].to_vec()).unwrap();
                self.body.drain(..i + 2);
                return Some(frame);
            }
            if self.ended {
                assert!(self.body.is_empty(), "a partial frame at the end");
                return None;
            }
            let mut chunk = [0u8; 4096];
            let Ok(read) = timeout(PATIENCE, self.stream.read(&mut chunk)).await else {
                panic!(
                    "no frame in time; received {:?}, decoded {:?}",
                    String::from_utf8_lossy(&self.raw),
                    String::from_utf8_lossy(&self.body)
                );
            };
            let n = read.unwrap();
            assert!(n > 0, "the connection closed without the last chunk");
            self.raw.extend_from_slice(&chunk[..n]);
        }
    }

    /// The next event, skipping comments (keep-alives).
    async fn event(&mut self) -> Event {
        loop {
            let Some(frame) = self.frame().await else {
                return Event::End;
            };
            let mut kind = "message";
            let mut data = None;
            for line in frame.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    kind = if v == "error" { "error" } else { "other" };
                } else if let Some(v) = line.strip_prefix("data: ") {
                    assert!(data.is_none(), "one data line per event: {frame}");
                    data = Some(client_decode(v));
                } else {
                    assert!(line.starts_with(':'), "unexpected line {line:?}");
                }
            }
            let Some(data) = data else { continue };
            let value: Value = serde_json::from_str(&data).unwrap();
            return match kind {
                "error" => Event::Error(value),
                _ => Event::Data(value),
            };
        }
    }

    async fn data(&mut self) -> Value {
        match self.event().await {
            Event::Data(v) => v,
            other => panic!("expected a change event, got {other:?}"),
        }
    }

    /// The stream's error, then its end.
    async fn error_then_end(&mut self) -> Value {
        let error = match self.event().await {
            Event::Error(v) => v,
            other => panic!("expected an error event, got {other:?}"),
        };
        assert!(matches!(self.event().await, Event::End));
        error
    }
}

fn watch_body(args: Value) -> Value {
    let mut arguments = json!({"database": "taskboard", "collection": "tasks"});
    arguments
        .as_object_mut()
        .unwrap()
        .extend(args.as_object().unwrap().clone());
    json!({"name": "watch", "arguments": [arguments], "service": "mongodb-atlas"})
}

/// The `_id` of test task `n` (the schema wants ObjectIds), as canonical Extended JSON.
fn oid(n: i32) -> Value {
    json!({"$oid": format!("{n:024x}")})
}

fn task(id: i32, owner: &str, team: &str, title: &str) -> Value {
    json!({"_id": oid(id), "owner_id": owner, "title": title, "status": "todo", "team": team,
           "collaborators": [], "archived": false,
           "details": {"summary": "s", "internalNotes": "private"}})
}

/// Alice owns tasks of team platform; Bob is in team platform (the `teamViewer` role: title,
/// status, team, details without internalNotes; not owner_id).
async fn alice_and_bob(s: &Server) -> ((String, String), (String, String)) {
    let alice = s.user("alice@example.com").await;
    let bob = s.user("bob@example.com").await;
    s.profile(&alice.0, "platform");
    s.profile(&bob.0, "platform");
    (alice, bob)
}

#[tokio::test]
async fn inserts_arrive_redacted_for_each_watcher_and_invisible_ones_leave_no_trace() {
    let s = server(|_| {}).await;
    let ((alice_id, alice), (_, bob)) = alice_and_bob(&s).await;
    let mut bobs = s
        .watch(watch_body(json!({})), Auth::Bearer(&bob))
        .await
        .ok()
        .unwrap();
    let mut alices = s
        .watch(watch_body(json!({})), Auth::Bearer(&alice))
        .await
        .ok()
        .unwrap();

    // Team infra: Bob cannot see it.
    s.call(
        &alice,
        "insertOne",
        "tasks",
        json!({"document": task(1, &alice_id, "infra", "hidden")}),
    )
    .await;
    s.call(
        &alice,
        "insertOne",
        "tasks",
        json!({"document": task(2, &alice_id, "platform", "shared")}),
    )
    .await;

    let e = bobs.data().await;
    assert_eq!(e["operationType"], "insert", "{e}");
    assert_eq!(e["documentKey"], json!({"_id": oid(2)}), "{e}");
    assert_eq!(e["ns"], json!({"db": "taskboard", "coll": "tasks"}));
    assert!(e["_id"]["_data"].is_string(), "{e}");
    assert!(e["clusterTime"]["$timestamp"].is_object(), "{e}");
    let full = &e["fullDocument"];
    assert_eq!(full["title"], "shared");
    assert!(full.get("owner_id").is_none(), "{e}");
    assert_eq!(full["details"], json!({"summary": "s"}), "{e}");
    assert!(full.get("archived").is_none(), "{e}");

    // Alice, the owner, sees both, whole.
    let first = alices.data().await;
    assert_eq!(first["documentKey"], json!({"_id": oid(1)}));
    assert_eq!(first["fullDocument"]["owner_id"], alice_id.as_str());
    let second = alices.data().await;
    assert_eq!(
        second["fullDocument"]["details"]["internalNotes"],
        "private"
    );
    drop((bobs, alices));
    s.stop().await;
}

#[tokio::test]
async fn ids_and_filters_select_from_the_redacted_events() {
    let s = server(|_| {}).await;
    let ((alice_id, alice), (_, bob)) = alice_and_bob(&s).await;
    let ids = s
        .watch(watch_body(json!({"ids": [oid(2)]})), Auth::Bearer(&bob))
        .await
        .ok()
        .unwrap();
    let by_title = s
        .watch(
            watch_body(json!({"filter": {"fullDocument.title": "b"}})),
            Auth::Bearer(&bob),
        )
        .await
        .ok()
        .unwrap();
    // owner_id is hidden from Bob: the condition meets it missing and never matches; the
    // `end` marker shows the stream is live.
    let hidden = json!({"filter": {"$or": [{"fullDocument.owner_id": &alice_id},
                                             {"fullDocument.title": "end"}]}});
    let by_owner = s
        .watch(watch_body(hidden.clone()), Auth::Bearer(&bob))
        .await
        .ok()
        .unwrap();
    let alices_by_owner = s
        .watch(watch_body(hidden), Auth::Bearer(&alice))
        .await
        .ok()
        .unwrap();
    let mut streams = [ids, by_title, by_owner, alices_by_owner];

    for (id, title) in [(1, "a"), (2, "b"), (3, "end")] {
        s.call(
            &alice,
            "insertOne",
            "tasks",
            json!({"document": task(id, &alice_id, "platform", title)}),
        )
        .await;
    }
    let firsts = [
        streams[0].data().await,
        streams[1].data().await,
        streams[2].data().await,
        streams[3].data().await,
    ];
    assert_eq!(firsts[0]["documentKey"]["_id"], oid(2));
    assert_eq!(firsts[1]["documentKey"]["_id"], oid(2));
    assert_eq!(
        firsts[2]["documentKey"]["_id"],
        oid(3),
        "the hidden field matched"
    );
    // Alice can read owner_id: her filter matches the first insert.
    assert_eq!(firsts[3]["documentKey"]["_id"], oid(1));
    drop(streams);
    s.stop().await;
}

#[tokio::test]
async fn updates_replacements_and_deletes() {
    let s = server(|_| {}).await;
    let ((alice_id, alice), (_, bob)) = alice_and_bob(&s).await;
    s.call(
        &alice,
        "insertOne",
        "tasks",
        json!({"document": task(1, &alice_id, "platform", "t")}),
    )
    .await;
    let mut bobs = s
        .watch(watch_body(json!({})), Auth::Bearer(&bob))
        .await
        .ok()
        .unwrap();
    let mut alices = s
        .watch(watch_body(json!({})), Auth::Bearer(&alice))
        .await
        .ok()
        .unwrap();

    s.call(
        &alice,
        "updateOne",
        "tasks",
        json!({"query": {"_id": oid(1)}, "update": {
            "$set": {"status": "doing", "details.internalNotes": "new"},
            "$unset": {"details.summary": "", "archived": ""}}}),
    )
    .await;
    // Bob reads status and details.summary, not details.internalNotes nor archived.
    let e = bobs.data().await;
    assert_eq!(e["operationType"], "update", "{e}");
    assert_eq!(
        e["updateDescription"],
        json!({"updatedFields": {"status": "doing"}, "removedFields": ["details.summary"]}),
        "{e}"
    );
    assert_eq!(e["fullDocument"]["status"], "doing");
    assert!(e["fullDocument"].get("owner_id").is_none(), "{e}");
    // The owner reads everything.
    let e = alices.data().await;
    assert_eq!(
        e["updateDescription"],
        json!({"updatedFields": {"status": "doing", "details.internalNotes": "new"},
               "removedFields": ["archived", "details.summary"]}),
        "{e}"
    );

    // A change of a field Bob cannot read, only: Alice gets it; Bob gets nothing (his next
    // event is the replacement below), and his events' numbers show no gap.
    s.call(
        &alice,
        "updateOne",
        "tasks",
        json!({"query": {"_id": oid(1)}, "update": {"$set": {"details.internalNotes": "newer"}}}),
    )
    .await;
    let e = alices.data().await;
    assert_eq!(
        e["updateDescription"],
        json!({"updatedFields": {"details.internalNotes": "newer"}, "removedFields": []}),
        "{e}"
    );
    assert_eq!(e["_id"], json!({"_data": "0000000000000002"}), "{e}");

    let mut replacement = task(1, &alice_id, "platform", "replaced");
    replacement.as_object_mut().unwrap().remove("_id");
    s.call(
        &alice,
        "replaceOne",
        "tasks",
        json!({"query": {"_id": oid(1)}, "update": replacement}),
    )
    .await;
    let e = bobs.data().await;
    assert_eq!(e["operationType"], "replace", "{e}");
    assert_eq!(e["fullDocument"]["title"], "replaced");
    assert_eq!(e["_id"], json!({"_data": "0000000000000002"}), "{e}");
    assert_eq!(e["clusterTime"]["$timestamp"]["i"], 2, "{e}");
    assert!(e.get("updateDescription").is_none(), "{e}");

    s.call(
        &alice,
        "deleteOne",
        "tasks",
        json!({"query": {"_id": oid(1)}}),
    )
    .await;
    let e = bobs.data().await;
    assert_eq!(e["operationType"], "delete", "{e}");
    assert_eq!(e["documentKey"], json!({"_id": oid(1)}));
    assert!(e.get("fullDocument").is_none(), "{e}");
    drop((bobs, alices));
    s.stop().await;
}

#[tokio::test]
async fn baas_at_auth_the_percent_quirk_and_refusals_before_the_stream() {
    let s = server(|_| {}).await;
    let ((alice_id, alice), (_, bob)) = alice_and_bob(&s).await;
    // realm-core's way: the token as `baas_at`, no header.
    let mut bobs = s
        .watch(watch_body(json!({})), Auth::Query(&bob))
        .await
        .ok()
        .unwrap();
    let title = "50%0A off\nnow %25 \r";
    s.call(
        &alice,
        "insertOne",
        "tasks",
        json!({"document": task(1, &alice_id, "platform", title)}),
    )
    .await;
    // The raw frame carries the encoded data; the client's decoding gives the value back.
    let frame = bobs.frame().await.unwrap();
    assert!(frame.starts_with("data: "), "{frame}");
    assert!(frame.contains("50%250A off\\nnow %2525 \\r"), "{frame}");
    assert!(!frame[6..].contains('\n'), "{frame}");
    let e: Value = serde_json::from_str(&client_decode(&frame[6..])).unwrap();
    assert_eq!(e["fullDocument"]["title"], title);
    drop(bobs);

    let refused = |r: Result<Watch, Response>, status: u16, code: &str| {
        let r = r.err().expect("refused");
        assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(
            r.json()["error_code"],
            code,
            "{}",
            String::from_utf8_lossy(&r.body)
        );
    };
    let ok = watch_body(json!({}));
    refused(
        s.watch(ok.clone(), Auth::Bearer("not.a.token")).await,
        401,
        "InvalidSession",
    );
    refused(
        s.watch(ok.clone(), Auth::Query("not.a.token")).await,
        401,
        "InvalidSession",
    );
    refused(s.watch(ok.clone(), Auth::None).await, 401, "InvalidSession");
    let mut other = ok.clone();
    other["name"] = json!("find");
    refused(s.watch(other, Auth::Bearer(&bob)).await, 400, "BadRequest");
    refused(
        s.watch(
            watch_body(json!({"ids": [oid(1)], "filter": {}})),
            Auth::Bearer(&bob),
        )
        .await,
        400,
        "InvalidParameter",
    );
    refused(
        s.watch(
            watch_body(json!({"filter": {"title": {"$where": "1"}}})),
            Auth::Bearer(&bob),
        )
        .await,
        400,
        "InvalidParameter",
    );
    let mut service = ok.clone();
    service["service"] = json!("mongo-db");
    refused(
        s.watch(service, Auth::Bearer(&bob)).await,
        404,
        "ServiceNotFound",
    );
    let mut reserved = ok.clone();
    reserved["arguments"][0]["database"] = json!("$rolegate");
    reserved["arguments"][0]["collection"] = json!("users");
    refused(
        s.watch(reserved, Auth::Bearer(&bob)).await,
        403,
        "NoMatchingRuleFound",
    );
    let mut unruled = ok.clone();
    unruled["arguments"][0]["collection"] = json!("no_rules_here");
    refused(
        s.watch(unruled, Auth::Bearer(&bob)).await,
        403,
        "NoMatchingRuleFound",
    );
    // A parameter that is not base64 of a JSON body.
    let mut stream = s.connect().await;
    let path = s.path("functions/call?baas_request=%%%");
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {bob}\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
    let (status, _, _) = read_head(&mut stream).await;
    assert_eq!(status, 400);
    let r = s
        .request(
            "GET",
            &s.path("functions/call?baas_request=bm90IGpzb24%3D"),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(
        (r.status, r.json()["error_code"].as_str()),
        (400, Some("BadRequest"))
    );
    s.stop().await;
}

#[tokio::test]
async fn a_stream_that_falls_behind_ends_with_an_error() {
    let s = server(|c| c.watch_buffer = 2).await;
    let ((_, _), (_, bob)) = alice_and_bob(&s).await;
    let mut bobs = s
        .watch(watch_body(json!({})), Auth::Bearer(&bob))
        .await
        .ok()
        .unwrap();
    // Five commits with no await in between: the stream's task (on this test's one-thread
    // runtime) cannot run until they are all published, two more than the buffer holds.
    for id in 0..5 {
        PublishingStore::new(&*s.state.data, &s.state.feed, false)
            .write(&WriteSet {
                namespace: Namespace::new("taskboard", "tasks"),
                changes: vec![Change::Insert(
                    doc! {"_id": id, "team": "platform", "title": "x"},
                )],
            })
            .unwrap();
    }
    let error = bobs.error_then_end().await;
    assert_eq!(error["error_code"], "ChangeStreamHistoryLost", "{error}");
    s.stop().await;
}

#[tokio::test]
async fn the_stream_ends_when_its_access_token_expires() {
    let s = server(|c| c.access_lifetime = Duration::from_secs(2)).await;
    let ((_, _), (_, bob)) = alice_and_bob(&s).await;
    let mut bobs = s
        .watch(watch_body(json!({})), Auth::Bearer(&bob))
        .await
        .ok()
        .unwrap();
    let error = bobs.error_then_end().await;
    assert_eq!(error["error_code"], "InvalidSession", "{error}");
    s.stop().await;
}

#[tokio::test]
async fn the_cap_keep_alives_and_shutdown() {
    let s = server(|c| {
        c.max_watch_streams = 1;
        c.watch_keep_alive = Duration::from_millis(50);
    })
    .await;
    let ((_, _), (_, bob)) = alice_and_bob(&s).await;
    let mut bobs = s
        .watch(watch_body(json!({})), Auth::Bearer(&bob))
        .await
        .ok()
        .unwrap();
    let r = s
        .watch(watch_body(json!({})), Auth::Bearer(&bob))
        .await
        .err()
        .expect("refused");
    assert_eq!(
        (r.status, r.json()["error_code"].as_str()),
        (429, Some("TooManyRequests"))
    );
    assert_eq!(s.state.streams.open_count(), 1);
    assert_eq!(bobs.frame().await.as_deref(), Some(": keep-alive"));
    // A client that goes away frees its place: the next watch is served.
    drop(bobs);
    timeout(PATIENCE, async {
        while s.state.streams.open_count() != 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the closed stream's place is freed");
    let mut bobs = s
        .watch(watch_body(json!({})), Auth::Bearer(&bob))
        .await
        .ok()
        .unwrap();
    assert_eq!(bobs.frame().await.as_deref(), Some(": keep-alive"));
    // Shutdown ends the open stream (with an error the client sees) and the server stops.
    let stopping = tokio::spawn(s.stop());
    let error = bobs.error_then_end().await;
    assert_eq!(error["error_code"], "ServiceUnavailable", "{error}");
    timeout(PATIENCE, stopping).await.unwrap().unwrap();
}

/// Guard: the test's own encoders match what the server reads.
#[test]
fn the_test_encoders() {
    assert_eq!(base64(b"foob"), "Zm9vYg==");
    assert_eq!(base64(b"fo"), "Zm8=");
    assert_eq!(percent_encode("a+b/c="), "a%2Bb%2Fc%3D");
    assert_eq!(client_decode("%250A%0A%0D%2"), "%0A\n\r%2");
}
