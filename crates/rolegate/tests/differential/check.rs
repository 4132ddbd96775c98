//! The differential harness: one generated [`Case`] through two engines, every action compared.
#![allow(dead_code)]

use std::cell::Cell;
use std::time::Instant;

use bson::{Document, RawDocument, RawDocumentBuf};
use proptest::strategy::BoxedStrategy;
use proptest::test_runner::{
    Config, FileFailurePersistence, RngAlgorithm, TestCaseError, TestError, TestRunner,
};
use rolegate::{
    EngineKind, PlanError, PreparedRequest, QueryPlan, ReadOutcome, Scratch, WriteOutcome,
};

use crate::arb::{Case, NAMESPACE, bytes, show};

/// What a case came to.
pub enum Verdict {
    Checked,
    /// The validator rejected the generated rules (the case does not count).
    Rejected(String),
}

/// The two engines compared: `(candidate, oracle)`. `DIFF_SELF=1` runs the reference on both
/// sides (to debug the generators).
pub fn engines() -> (EngineKind, EngineKind) {
    if std::env::var("DIFF_SELF").is_ok_and(|v| v == "1") {
        (EngineKind::Reference, EngineKind::Reference)
    } else {
        (EngineKind::Compiled, EngineKind::Reference)
    }
}

fn report(
    case: &Case,
    action: &str,
    doc: Option<usize>,
    candidate: String,
    oracle: String,
) -> String {
    let (a, b) = engines();
    let mut s = format!("DISAGREEMENT in {action}");
    if let Some(i) = doc {
        s.push_str(&format!(" on document #{i}"));
    }
    s.push_str(&format!("\n--- rules\n{}", case.rules.rules_report()));
    s.push_str(&format!("--- request\n{}\n", case.request.report()));
    if let Some(i) = doc {
        let (pre, post) = &case.updates()[i];
        s.push_str(&format!("--- document (pre-image)\n{}\n", show(pre)));
        if action.starts_with("update") {
            s.push_str(&format!("--- post-image\n{}\n", show(post)));
        }
    } else {
        s.push_str(&format!(
            "--- client query {}\n--- client projection {}\n",
            case.client_query_bson()
                .map(|q| show(&q))
                .unwrap_or_else(|| "none".into()),
            case.client_projection_bson()
                .map(|p| show(&p))
                .unwrap_or_else(|| "none".into()),
        ));
    }
    s.push_str(&format!(
        "--- {} engine\n{candidate}\n--- {} engine\n{oracle}\n",
        a.as_str(),
        b.as_str()
    ));
    s
}

fn show_read(o: &ReadOutcome, explain: bool) -> String {
    let mut s = format!(
        "role: {:?}, visible: {}, document: {}, error: {:?}",
        o.role,
        o.visible,
        o.document
            .as_ref()
            .map(show)
            .unwrap_or_else(|| "none".into()),
        o.error
    );
    if explain {
        s.push_str(&format!("\nexplanation:\n{}", o.explanation));
    }
    s
}

fn show_write(o: &WriteOutcome, explain: bool) -> String {
    let mut s = format!(
        "role: {:?}, allowed: {}, error: {:?}",
        o.role, o.allowed, o.error
    );
    if explain {
        s.push_str(&format!("\nexplanation:\n{}", o.explanation));
    }
    s
}

fn same_read(a: &ReadOutcome, b: &ReadOutcome, explain: bool) -> bool {
    a.role == b.role
        && a.visible == b.visible
        && a.document.as_ref().map(bytes) == b.document.as_ref().map(bytes)
        && a.error.is_some() == b.error.is_some()
        && (!explain || a.explanation == b.explanation)
}

fn same_write(a: &WriteOutcome, b: &WriteOutcome, explain: bool) -> bool {
    a.role == b.role
        && a.allowed == b.allowed
        && a.error.as_ref().map(|e| e.code) == b.error.as_ref().map(|e| e.code)
        && (!explain || a.explanation == b.explanation)
}

fn same_plan(a: &Result<QueryPlan, PlanError>, b: &Result<QueryPlan, PlanError>) -> bool {
    match (a, b) {
        (Ok(a), Ok(b)) => {
            a.applied == b.applied
                && bytes(&a.store_query) == bytes(&b.store_query)
                && bytes(&a.store_projection) == bytes(&b.store_projection)
                && bytes(a.merged_query()) == bytes(b.merged_query())
                && bytes(a.output_projection()) == bytes(b.output_projection())
        }
        (Err(a), Err(b)) => std::mem::discriminant(a) == std::mem::discriminant(b),
        _ => false,
    }
}

/// One write action of a case, applied to a prepared request.
type WriteAction<'a> = Box<dyn Fn(&PreparedRequest<'_, '_>) -> WriteOutcome + 'a>;

/// Runs `case` through the candidate and the oracle engine and compares every outcome.
pub fn differential(case: &Case, explain: bool) -> Result<Verdict, String> {
    let rules = match case.rules.load() {
        Ok(r) => r,
        Err(e) => return Ok(Verdict::Rejected(e)),
    };
    differential_on(&rules, case, explain)
}

/// [`differential`] for several requests against one compiled rule set: `case` with each of
/// `requests` in turn, then `case` again (nothing may leak from one request into another).
pub fn differential_requests(
    case: &Case,
    requests: &[crate::arb::ReqG],
) -> Result<Verdict, String> {
    let rules = match case.rules.load() {
        Ok(r) => r,
        Err(e) => return Ok(Verdict::Rejected(e)),
    };
    let mut others: Vec<Case> = requests
        .iter()
        .map(|r| Case {
            request: r.clone(),
            ..case.clone()
        })
        .collect();
    others.push(case.clone());
    differential_on(&rules, case, false)?;
    for c in &others {
        differential_on(&rules, c, false)?;
    }
    Ok(Verdict::Checked)
}

/// [`differential`] on rules already loaded from `case.rules`.
pub fn differential_on(
    rules: &rolegate::Rules,
    case: &Case,
    explain: bool,
) -> Result<Verdict, String> {
    let (ka, kb) = engines();
    let coll = rules.collection(NAMESPACE).map_err(|e| e.to_string())?;
    let ctx = case.request.context(rules, false);
    let ctx_search = case.request.context(rules, true);
    let pa = coll.prepare_with(&ctx, ka).with_explain(explain);
    let pb = coll.prepare_with(&ctx, kb).with_explain(explain);
    let sa = coll.prepare_with(&ctx_search, ka).with_explain(explain);
    let sb = coll.prepare_with(&ctx_search, kb).with_explain(explain);

    // Filters: the client's query and projection, and none.
    let cq = case.client_query_bson();
    let cp = case.client_projection_bson();
    for (q, p) in [(cq.as_ref(), cp.as_ref()), (None, None)] {
        let a = pa.query_plan(q, p);
        let b = pb.query_plan(q, p);
        if !same_plan(&a, &b) {
            return Err(report(
                case,
                "query_plan",
                None,
                format!("{a:?}"),
                format!("{b:?}"),
            ));
        }
        // Planned reads (issue 9): decided on the stored document, client query on the
        // redacted one, then projected — the same answer from both engines.
        if let Ok(plan) = &a {
            for (i, doc) in case.docs.iter().enumerate() {
                let doc = doc.bson();
                let (ra, rb) = (pa.read_for(plan, &doc), pb.read_for(plan, &doc));
                let same = ra.selected == rb.selected
                    && ra.outcome.role == rb.outcome.role
                    && ra.outcome.visible == rb.outcome.visible
                    && ra.outcome.error.is_some() == rb.outcome.error.is_some()
                    && ra.outcome.document.as_ref().map(bytes)
                        == rb.outcome.document.as_ref().map(bytes);
                if !same {
                    return Err(report(
                        case,
                        "read_for",
                        Some(i),
                        format!("{ra:?}"),
                        format!("{rb:?}"),
                    ));
                }
            }
        }
    }

    // One scratch per thread, reused across documents, requests and rule sets.
    let mut shared = SHARED_SCRATCH.with(|s| std::mem::take(&mut *s.borrow_mut()));
    let result = compare_documents(case, explain, &pa, &pb, &sa, &sb, &mut shared);
    SHARED_SCRATCH.with(|s| *s.borrow_mut() = shared);
    result
}

thread_local! {
    static SHARED_SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::new());
}

#[allow(clippy::too_many_arguments)]
fn compare_documents<'p, 'c>(
    case: &Case,
    explain: bool,
    pa: &PreparedRequest<'p, 'c>,
    pb: &PreparedRequest<'p, 'c>,
    sa: &PreparedRequest<'p, 'c>,
    sb: &PreparedRequest<'p, 'c>,
    shared: &mut Scratch,
) -> Result<Verdict, String> {
    for (i, (pre, post)) in case.updates().iter().enumerate() {
        let mismatch =
            |action: &str, a: String, b: String| Err(report(case, action, Some(i), a, b));

        for (action, a_req, b_req) in [("read", pa, pb), ("search", sa, sb)] {
            let a = a_req.read(pre);
            let b = b_req.read(pre);
            if !same_read(&a, &b, explain) {
                return mismatch(action, show_read(&a, explain), show_read(&b, explain));
            }
            if !explain {
                raw(case, i, action, a_req, pre, &b, shared)?;
            }
        }

        let writes: [(&str, WriteAction<'_>); 4] = [
            ("insert", Box::new(|p| p.insert(pre))),
            ("insert of the post-image", Box::new(|p| p.insert(post))),
            ("update", Box::new(|p| p.update(pre, post))),
            ("delete", Box::new(|p| p.delete(pre))),
        ];
        for (action, f) in &writes {
            let a = f(pa);
            let b = f(pb);
            if !same_write(&a, &b, explain) {
                return mismatch(action, show_write(&a, explain), show_write(&b, explain));
            }
        }
    }
    Ok(Verdict::Checked)
}

/// The raw paths of the candidate (`read_raw`, `redact_raw`, fresh and reused scratch) against
/// the oracle's read outcome `expected`.
fn raw(
    case: &Case,
    i: usize,
    action: &str,
    req: &PreparedRequest<'_, '_>,
    doc: &Document,
    expected: &ReadOutcome,
    shared: &mut Scratch,
) -> Result<(), String> {
    let buf = RawDocumentBuf::from_document(doc).map_err(|e| e.to_string())?;
    let raw: &RawDocument = &buf;
    let expected_role = expected.role.clone();
    let want = format!(
        "role: {:?}, visible: {}, error: {}, document: {}",
        expected_role,
        expected.visible,
        expected.error.is_some(),
        expected
            .document
            .as_ref()
            .map(show)
            .unwrap_or_else(|| "none".into())
    );
    let decision_ok = |d: &rolegate::RawDecision| {
        d.role.and_then(|r| req.role_name(r)).map(str::to_string) == expected_role
            && d.role.is_some() == expected_role.is_some()
            && d.visible == expected.visible
            && d.error == expected.error.is_some()
    };
    // Valid documents get the same answer with and without full validation.
    let checked = req.clone().with_raw_validation(true);
    // Unvalidated raw input is trusted to be MongoDB output, which never nests deeper than the
    // limit; beyond it only the validated path must agree.
    let trusted = req.limits().check_document(doc).is_ok();
    for (scratch_kind, fresh, req) in [
        ("fresh scratch", true, req),
        ("reused scratch", false, req),
        ("reused scratch, raw validation on", false, &checked),
    ] {
        if !trusted && !req.validates_raw() {
            continue;
        }
        let mut own = Scratch::new();
        let scratch: &mut Scratch = if fresh { &mut own } else { &mut *shared };
        let d = req.read_raw(raw, scratch);
        if !decision_ok(&d) {
            return Err(report(
                case,
                &format!("{action} read_raw ({scratch_kind})"),
                Some(i),
                format!(
                    "{d:?} (role name {:?})",
                    d.role.and_then(|r| req.role_name(r))
                ),
                want,
            ));
        }
        // Output is appended: start with some bytes already in the buffer.
        let prefix: Vec<u8> = vec![0xA5; i];
        let mut out = prefix.clone();
        let d = req.redact_raw(raw, scratch, &mut out);
        let appended = out.get(prefix.len()..).unwrap_or_default();
        let decoded = if appended.is_empty() {
            None
        } else {
            Some(
                RawDocument::from_bytes(appended)
                    .map_err(|e| e.to_string())
                    .and_then(|r| Document::try_from(r).map_err(|e| e.to_string())),
            )
        };
        let out_ok = out.starts_with(&prefix)
            && match (&expected.document, &decoded) {
                (None, None) => true,
                (Some(e), Some(Ok(got))) => bytes(e) == appended && bytes(e) == bytes(got),
                _ => false,
            };
        if !decision_ok(&d) || !out_ok {
            return Err(report(
                case,
                &format!("{action} redact_raw ({scratch_kind})"),
                Some(i),
                format!(
                    "{d:?} (role name {:?}), output: {}",
                    d.role.and_then(|r| req.role_name(r)),
                    match &decoded {
                        None => "nothing".to_string(),
                        Some(Ok(doc)) => show(doc),
                        Some(Err(e)) => format!("undecodable ({e}): {appended:02x?}"),
                    }
                ),
                want,
            ));
        }
    }
    Ok(())
}

/// Where failing seeds are kept (committed by the lead).
pub const REGRESSIONS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/proptest-regressions/differential.txt"
);

/// Cases per property: `default`, or `PROPTEST_CASES` when set.
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs one property: `check` on `cases` generated cases; fails with the shrunk counterexample.
/// Asserts that fewer than 10% of generated cases were rejected by the validator.
pub fn run_property<T: std::fmt::Debug>(
    name: &'static str,
    regressions: &'static str,
    default_cases: u32,
    strategy: BoxedStrategy<T>,
    check: impl Fn(&T) -> Result<Verdict, String>,
) {
    let n = cases(default_cases);
    let config = Config {
        cases: n,
        max_global_rejects: n.max(100),
        max_shrink_iters: 4096,
        max_shrink_time: 120_000,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(regressions))),
        test_name: Some(name),
        // ChaCha dominates generation time in debug builds; XorShift is plenty for tests.
        rng_algorithm: RngAlgorithm::XorShift,
        ..Config::default()
    };
    let accepted = Cell::new(0u32);
    let rejected = Cell::new(0u32);
    let first_rejections = std::cell::RefCell::new(Vec::<String>::new());
    let start = Instant::now();
    let mut runner = TestRunner::new(config);
    let result = runner.run(&strategy, |case| match check(&case) {
        Ok(Verdict::Checked) => {
            accepted.set(accepted.get() + 1);
            Ok(())
        }
        Ok(Verdict::Rejected(why)) => {
            rejected.set(rejected.get() + 1);
            let mut f = first_rejections.borrow_mut();
            if f.len() < 3 {
                f.push(why.clone());
            }
            Err(TestCaseError::reject(why))
        }
        Err(message) => Err(TestCaseError::fail(message)),
    });
    let (acc, rej) = (accepted.get(), rejected.get());
    let rate = f64::from(rej) / f64::from((acc + rej).max(1));
    eprintln!(
        "{name}: {acc} cases checked, {rej} rejected by the validator ({:.2}%), {:.2?}",
        rate * 100.0,
        start.elapsed()
    );
    match result {
        Ok(()) => {}
        Err(TestError::Fail(reason, case)) => {
            panic!("{name} failed; minimal counterexample:\n{reason}\ngenerated case: {case:?}")
        }
        Err(TestError::Abort(reason)) => panic!(
            "{name} aborted: {reason}; first rejections:\n{}",
            first_rejections.borrow().join("\n")
        ),
    }
    assert!(
        rate < 0.10,
        "{name}: {:.1}% of generated rule sets were rejected by the validator; first:\n{}",
        rate * 100.0,
        first_rejections.borrow().join("\n")
    );
}

/// Raw BSON that a `Document` cannot hold: `members` written in order, duplicate keys included.
pub fn raw_with_duplicates(members: &[(&'static str, crate::arb::Val)]) -> RawDocumentBuf {
    let mut raw = RawDocumentBuf::new();
    for (k, v) in members {
        raw.append(*k, bson::RawBson::try_from(v.bson()).unwrap());
    }
    raw
}

/// `read_raw` and `redact_raw` of the candidate against the oracle's own raw path, on raw
/// documents with repeated keys (which the oracle reads through `Document::try_from`).
pub fn differential_raw(
    case: &Case,
    raws: &[RawDocumentBuf],
    what: &str,
) -> Result<Verdict, String> {
    let rules = match case.rules.load() {
        Ok(r) => r,
        Err(e) => return Ok(Verdict::Rejected(e)),
    };
    let (ka, kb) = engines();
    let coll = rules.collection(NAMESPACE).map_err(|e| e.to_string())?;
    for search in [false, true] {
        let ctx = case.request.context(&rules, search);
        // Bytes that break MongoDB's guarantees are only promised the reference's answer with
        // raw validation on (`PreparedRequest::with_raw_validation`).
        let pa = coll.prepare_with(&ctx, ka).with_raw_validation(true);
        let pb = coll.prepare_with(&ctx, kb);
        let (mut sa, mut sb) = (Scratch::new(), Scratch::new());
        for (i, raw) in raws.iter().enumerate() {
            let (mut oa, mut ob) = (Vec::new(), Vec::new());
            let da = pa.redact_raw(raw, &mut sa, &mut oa);
            let db = pb.redact_raw(raw, &mut sb, &mut ob);
            let ra = pa.read_raw(raw, &mut sa);
            let rb = pb.read_raw(raw, &mut sb);
            if da != db || oa != ob || ra != rb {
                let show_out = |o: &[u8]| match RawDocument::from_bytes(o) {
                    Ok(r) => r
                        .iter()
                        .map(|e| {
                            e.map(|(k, v)| format!("{k}: {v:?}"))
                                .unwrap_or_else(|e| e.to_string())
                        })
                        .collect::<Vec<_>>()
                        .join(", "),
                    Err(_) if o.is_empty() => "nothing".into(),
                    Err(e) => e.to_string(),
                };
                return Err(format!(
                    "DISAGREEMENT in raw read of a document with {what} (#{i}, search {search})\n--- rules\n{}--- request\n{}\n--- raw document (in order)\n{}\n--- {} engine\nredact_raw {da:?}, output {{{}}}; read_raw {ra:?}\n--- {} engine\nredact_raw {db:?}, output {{{}}}; read_raw {rb:?}\n",
                    case.rules.rules_report(),
                    case.request.report(),
                    show_out(raw.as_bytes()),
                    ka.as_str(),
                    show_out(&oa),
                    kb.as_str(),
                    show_out(&ob),
                ));
            }
        }
    }
    Ok(Verdict::Checked)
}

/// The bytes of one element `key: value`.
fn element_bytes(key: &str, value: &bson::Bson) -> Vec<u8> {
    let mut one = RawDocumentBuf::new();
    one.append(key, bson::RawBson::try_from(value.clone()).unwrap());
    let b = one.as_bytes();
    b[4..b.len() - 1].to_vec()
}

/// A raw document of `members` with one malformed element inserted at `at`: a string whose
/// bytes are not UTF-8 (`bad_key`: in the key instead of the value).
pub fn raw_with_bad_string(
    members: &[(&'static str, crate::arb::Val)],
    at: usize,
    key: &str,
    bad_key: bool,
) -> Vec<u8> {
    let mut elems = Vec::new();
    for (i, (k, v)) in members.iter().enumerate() {
        if i == at {
            elems.extend(bad_string(key, bad_key));
        }
        elems.extend(element_bytes(k, &v.bson()));
    }
    if at >= members.len() {
        elems.extend(bad_string(key, bad_key));
    }
    let mut doc = Vec::new();
    doc.extend_from_slice(&i32::try_from(elems.len() + 5).unwrap().to_le_bytes());
    doc.extend(elems);
    doc.push(0);
    doc
}

fn bad_string(key: &str, bad_key: bool) -> Vec<u8> {
    let mut e = vec![0x02];
    e.extend_from_slice(key.as_bytes());
    if bad_key {
        e.extend_from_slice(&[0xC3, 0x28]);
    }
    e.push(0);
    let value: &[u8] = if bad_key { b"ok" } else { &[0xFF, 0xFE, 0x41] };
    e.extend_from_slice(&i32::try_from(value.len() + 1).unwrap().to_le_bytes());
    e.extend_from_slice(value);
    e.push(0);
    e
}

/// Like [`differential_raw`] for raw byte buffers that may not be valid BSON.
pub fn differential_raw_bytes(case: &Case, docs: &[Vec<u8>]) -> Result<Verdict, String> {
    let mut raws = Vec::new();
    for d in docs {
        match RawDocumentBuf::from_bytes(d.clone()) {
            Ok(r) => raws.push(r),
            Err(e) => return Err(format!("test bug: {e}")),
        }
    }
    differential_raw(case, &raws, "a malformed element")
}
