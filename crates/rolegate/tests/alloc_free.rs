//! The compiled engine's per-document decision path allocates nothing: with a counting global
//! allocator (this test binary only), after one warm-up pass that lets the `Scratch` grow, N more
//! passes of `read_raw` over W1, W2 and W3 documents allocate zero times. `redact_raw` into a
//! reused buffer is checked the same way.
//!
//! The library forbids `unsafe` (`#![forbid(unsafe_code)]` in `src/lib.rs` and `src/main.rs`);
//! a `GlobalAlloc` needs an `unsafe impl`, which this test file alone allows.
#![allow(unsafe_code, reason = "a counting GlobalAlloc for this test binary")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

#[path = "../benches/workloads/mod.rs"]
mod workloads;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bson::RawDocumentBuf;
use rolegate::{EngineKind, PreparedRequest, Scratch};
use workloads::{W3Kind, Workload};

thread_local! {
    /// Allocations made by this thread (const-initialized, no destructor: touching it never
    /// allocates).
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

/// `System`, counting `alloc` / `alloc_zeroed` / `realloc` calls per thread.
struct Counting;

fn count() {
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: every method forwards its arguments unchanged to `System`, which upholds the
// `GlobalAlloc` contract; the only other work is incrementing a thread-local `Cell` that is
// const-initialized and has no destructor, so it neither allocates nor re-enters the allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's guarantees for `layout` are `System::alloc`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: `ptr` was allocated by `System` (every allocation goes through it) with
        // `layout`; the caller guarantees `new_size`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// Timed passes after the warm-up.
const PASSES: u64 = 3;

/// Allocations over [`PASSES`] passes of `decide` over `docs`, after one warm-up pass.
fn allocations_per_pass(
    docs: &[RawDocumentBuf],
    mut decide: impl FnMut(&RawDocumentBuf) -> bool,
) -> (u64, usize) {
    let mut visible = 0;
    for d in docs {
        visible += usize::from(decide(d));
    }
    let before = allocations();
    for _ in 0..PASSES {
        for d in docs {
            std::hint::black_box(decide(d));
        }
    }
    (allocations() - before, visible)
}

/// Checks `read_raw` and `redact_raw` of the compiled engine on `docs`; returns a line for each
/// path that allocated.
fn check(w: &Workload, docs: &[bson::Document]) -> Vec<String> {
    let raw = workloads::raw(docs);
    let rules = workloads::rules(w);
    let ctx = workloads::context(&rules, w);
    let coll = rules.collection(&w.namespace).unwrap();
    let prepared: PreparedRequest<'_, '_> = coll.prepare_with(&ctx, EngineKind::Compiled);
    let mut failures = Vec::new();
    let total = raw.len() as u64 * PASSES;

    let mut scratch = Scratch::new();
    let (n, visible) = allocations_per_pass(&raw, |d| prepared.read_raw(d, &mut scratch).visible);
    assert!(visible > 0, "{}: no document is visible", w.id);
    if n > 0 {
        failures.push(format!(
            "{}: read_raw allocated {n} times over {total} decisions ({:.2} per document)",
            w.id,
            n as f64 / total as f64
        ));
    }

    let mut scratch = Scratch::new();
    let mut out = Vec::new();
    let (n, _) = allocations_per_pass(&raw, |d| {
        out.clear();
        prepared.redact_raw(d, &mut scratch, &mut out).visible
    });
    if n > 0 {
        failures.push(format!(
            "{}: redact_raw allocated {n} times over {total} documents ({:.2} per document)",
            w.id,
            n as f64 / total as f64
        ));
    }
    failures
}

#[test]
fn the_compiled_decision_path_allocates_nothing_per_document() {
    let mut failures = Vec::new();
    failures.extend(check(&workloads::w1(), &workloads::w1_documents(3_000)));
    failures.extend(check(&workloads::w2(), &workloads::w2_documents(20, 500)));
    failures.extend(check(&workloads::w2(), &workloads::w2_documents(100, 200)));
    for kind in W3Kind::ALL {
        for n in [10, 10_000] {
            failures.extend(check(
                &workloads::w3(kind, n),
                &workloads::w3_documents(n, 500),
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "NOT ALLOCATION-FREE:\n{}",
        failures.join("\n")
    );
}

#[test]
fn the_counter_counts() {
    let before = allocations();
    let v = std::hint::black_box(vec![1u8; 100]);
    assert!(allocations() > before);
    drop(v);
}
