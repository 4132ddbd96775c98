//! How fast the W1 decision is against the limit of what the machine can do (issue 16):
//! generates the first N documents of W1 (as `benches/evaluate.rs` does, 10,000 there) and
//! times, in alternating passes over all of them (200 each, one process), rolegate's
//! `read_raw` (compiled engine) and a hand-written byte scan that makes the same decision for
//! W1's rules and user `u0` and nothing else. It prints the fastest and the median pass of
//! each in ns per document, and stops if the two decide any document differently.
//!
//! ```text
//! cargo run --profile bench --example time-w1-decision -- 1000    # 0.4 MB of documents
//! cargo run --profile bench --example time-w1-decision -- 10000   # 4.3 MB, as the bench
//! ```
//!
//! A pass over fewer documents than the processor's caches hold measures the decision's own
//! work; the difference to the bench's 10,000 is the cost of fetching the documents' bytes.
//! The hand-written scan meets the same documents, memory and data-dependent branches, so its
//! time is the floor for this loop on this machine.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a measuring tool: bad arguments stop it"
)]

#[path = "../benches/workloads/mod.rs"]
mod workloads;

use std::hint::black_box;
use std::time::Instant;

use bson::RawDocumentBuf;
use rolegate::{EngineKind, Scratch};

/// Timed passes over the documents, for each of the two.
const PASSES: usize = 200;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .unwrap_or_else(|| panic!("usage: time-w1-decision <documents>"))
        .parse()
        .expect("a number of documents");
    let w = workloads::w1();
    let docs = workloads::raw(&workloads::w1_documents(n));
    let rules = workloads::rules(&w);
    let ctx = workloads::context(&rules, &w);
    let coll = rules
        .collection(&w.namespace)
        .expect("the workload's collection");
    let p = coll.prepare_with(&ctx, EngineKind::Compiled);
    let mut scratch = Scratch::new();
    for (i, d) in docs.iter().enumerate() {
        let r = p.read_raw(d, &mut scratch);
        let ours = (r.role, r.visible, r.error);
        let (role, visible) = hand_written::decide(d.as_bytes()).expect("well-formed BSON");
        assert_eq!(
            ours,
            (role, visible, false),
            "document {i}: rolegate and the hand-written scan differ"
        );
    }
    let mut rolegate_pass = Vec::with_capacity(PASSES);
    let mut hand_pass = Vec::with_capacity(PASSES);
    for _ in 0..PASSES {
        rolegate_pass.push(time_pass(&docs, |d| {
            p.read_raw(black_box(d), &mut scratch).visible
        }));
        hand_pass.push(time_pass(&docs, |d| {
            hand_written::decide(black_box(d).as_bytes()).is_some_and(|(_, v)| v)
        }));
    }
    let (r_fast, r_median) = fastest_and_median(&mut rolegate_pass);
    let (h_fast, h_median) = fastest_and_median(&mut hand_pass);
    println!("documents={n} passes={PASSES} (ns per document)");
    println!("rolegate read_raw   fastest={r_fast:.1} median={r_median:.1}");
    println!("hand-written scan   fastest={h_fast:.1} median={h_median:.1}");
    println!("ratio of medians    {:.2}", r_median / h_median);
}

/// One pass of `decide` over `docs`, in ns per document.
fn time_pass(docs: &[RawDocumentBuf], mut decide: impl FnMut(&RawDocumentBuf) -> bool) -> f64 {
    let start = Instant::now();
    let mut visible = 0usize;
    for d in docs {
        visible += usize::from(decide(d));
    }
    black_box(visible);
    start.elapsed().as_nanos() as f64 / docs.len() as f64
}

fn fastest_and_median(passes: &mut [f64]) -> (f64, f64) {
    passes.sort_by(f64::total_cmp);
    (passes[0], passes[passes.len() / 2])
}

/// W1's decision for user `u0`, written by hand for these rules only: the first `owner_id`,
/// `shared_with` and `public` elements of a document, read in one forward scan from its bytes
/// (stopping as soon as the roles are settled), with the roles tested in order.
mod hand_written {
    const STRING: u8 = 0x02;
    const ARRAY: u8 = 0x04;
    const BOOLEAN: u8 = 0x08;
    const USER: &[u8] = b"u0";

    /// `Some((role, visible))` (role `None`: none applies); `None` when the bytes are
    /// malformed. Each role keeps `_id`, which every W1 document has: with a role, visible.
    pub fn decide(doc: &[u8]) -> Option<(Option<usize>, bool)> {
        let mut owner: Option<bool> = None;
        let mut shared: Option<bool> = None;
        let mut public: Option<bool> = None;
        let mut pos = 4;
        loop {
            let kind = *doc.get(pos)?;
            if kind == 0 {
                break;
            }
            let key_start = pos + 1;
            let key_len = doc.get(key_start..)?.iter().position(|&b| b == 0)?;
            let key = &doc[key_start..key_start + key_len];
            let value_start = key_start + key_len + 1;
            let size = value_size(kind, doc.get(value_start..)?)?;
            let value = doc.get(value_start..value_start + size)?;
            match key {
                b"owner_id" if owner.is_none() => {
                    let hit = kind == STRING && is_user(value);
                    if hit {
                        return Some((Some(0), true));
                    }
                    owner = Some(false);
                }
                b"shared_with" if shared.is_none() => {
                    shared = Some(match kind {
                        STRING => is_user(value),
                        ARRAY => array_has_user(value)?,
                        _ => false,
                    });
                    if owner.is_some() && shared == Some(true) {
                        return Some((Some(1), true));
                    }
                }
                b"public" if public.is_none() => {
                    public = Some(kind == BOOLEAN && value == [1]);
                }
                _ => {}
            }
            if owner.is_some() && shared.is_some() && public.is_some() {
                break;
            }
            pos = value_start + size;
        }
        if shared == Some(true) {
            Some((Some(1), true))
        } else if public == Some(true) {
            Some((Some(2), true))
        } else {
            Some((None, false))
        }
    }

    fn is_user(string: &[u8]) -> bool {
        string.len() == USER.len() + 5 && &string[4..4 + USER.len()] == USER
    }

    fn array_has_user(array: &[u8]) -> Option<bool> {
        let mut pos = 4;
        loop {
            let kind = *array.get(pos)?;
            if kind == 0 {
                return Some(false);
            }
            let key_len = array.get(pos + 1..)?.iter().position(|&b| b == 0)?;
            let value_start = pos + 1 + key_len + 1;
            let size = value_size(kind, array.get(value_start..)?)?;
            if kind == STRING && is_user(array.get(value_start..value_start + size)?) {
                return Some(true);
            }
            pos = value_start + size;
        }
    }

    /// The size of a value of type `kind` at the start of `tail`, for the types W1 holds.
    fn value_size(kind: u8, tail: &[u8]) -> Option<usize> {
        let prefix = || -> Option<usize> {
            usize::try_from(i32::from_le_bytes(tail.get(..4)?.try_into().ok()?)).ok()
        };
        match kind {
            0x01 | 0x09 | 0x11 | 0x12 => Some(8),
            0x10 => Some(4),
            0x08 => Some(1),
            0x07 => Some(12),
            0x0A => Some(0),
            STRING => Some(4 + prefix()?),
            0x03 | ARRAY => prefix(),
            _ => None,
        }
    }
}
