//! Compile time per workload: loading (JSON → validated `RuleSet`, the only preparation the
//! reference evaluator needs) and `Rules::new` (compiling the validated set into the decision
//! program), measured separately — W1, W2, W3 at 10 / 100 / 1,000 / 10,000 roles (both
//! variants), and W4: every loadable file of the real-rules corpus (outside the repository, found
//! as [`workloads::corpus_dir`] says; skipped with a `SKIPPED:` line when missing).
//!
//! `cargo bench --bench compile` (filter: `cargo bench --bench compile -- w3`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "bench code: bad bench data is a bug to stop at"
)]

mod workloads;

use std::hint::black_box;
use std::time::Duration;

use criterion::{
    BatchSize, BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use rolegate::Rules;
use workloads::{W3_SIZES, W3Kind, Workload};

/// Short runs: medians are what the report uses, so 5,000 bootstrap resamples (instead of
/// 100,000) are plenty and keep the whole `cargo bench` within minutes.
fn config() -> Criterion {
    Criterion::default()
        .nresamples(5_000)
        .without_plots()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(10)
}

/// `load` (the reference's whole preparation) and `rules_new` (the compile) of one rule file.
/// `roles`: the parameter of the W3 benchmarks (`load/1000`), `None` for W1 and W2.
fn one(c: &mut Criterion, group: &str, roles: Option<usize>, w: &Workload) {
    let id = |f: &str| match roles {
        Some(n) => BenchmarkId::new(f, n),
        None => BenchmarkId::from_parameter(f),
    };
    let json = workloads::read_json(&w.rules_file);
    let set = workloads::load(&w.rules_file, &json);
    let mut g = c.benchmark_group(group);
    g.sampling_mode(SamplingMode::Flat);
    g.bench_function(id("load"), |b| {
        b.iter(|| workloads::load(&w.rules_file, black_box(&json)));
    });
    g.bench_function(id("rules_new"), |b| {
        b.iter_batched(|| set.clone(), Rules::new, BatchSize::LargeInput);
    });
    g.finish();
}

fn w1_w2(c: &mut Criterion) {
    one(c, "compile/w1", None, &workloads::w1());
    one(c, "compile/w2", None, &workloads::w2());
}

fn w3(c: &mut Criterion) {
    for kind in W3Kind::ALL {
        for n in W3_SIZES {
            one(
                c,
                &format!("compile/w3-{}", kind.name()),
                Some(n),
                &workloads::w3(kind, n),
            );
        }
    }
}

fn w4(c: &mut Criterion) {
    let Some(files) = workloads::corpus() else {
        return;
    };
    let loaded = workloads::corpus_loaded(&files);
    eprintln!(
        "W4: {} corpus files, {} load ({} refused, skipped)",
        files.len(),
        loaded.len(),
        files.len() - loaded.len()
    );
    let sets: Vec<_> = loaded.iter().map(|(_, set)| set.clone()).collect();
    let mut g = c.benchmark_group("compile/w4");
    g.sampling_mode(SamplingMode::Flat);
    g.throughput(Throughput::Elements(loaded.len() as u64));
    g.bench_function("load_all", |b| {
        b.iter(|| {
            for (f, _) in &loaded {
                black_box(rolegate::RuleSet::from_json(
                    &f.path,
                    black_box(&f.json),
                    &rolegate::LoadOptions::default(),
                ))
                .ok();
            }
        });
    });
    g.bench_function("rules_new_all", |b| {
        b.iter_batched(
            || sets.clone(),
            |sets| sets.into_iter().map(Rules::new).collect::<Vec<_>>(),
            BatchSize::LargeInput,
        );
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = w1_w2, w3, w4
}
criterion_main!(benches);
