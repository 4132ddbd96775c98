//! Stage: the crate's unit tests only. Input: the path of a property's regressions file.
//! Output: its proptest configuration, so that every property of the crate records its failing
//! cases the same way (committed under `crates/rolegate/proptest-regressions/`).

use proptest::test_runner::{Config as ProptestConfig, FileFailurePersistence};

/// The default configuration (cases from `PROPTEST_CASES`, else 256), with failing cases kept
/// in `regressions` (relative to the crate's folder) and replayed first on every run.
pub(crate) fn persisted(regressions: &'static str) -> ProptestConfig {
    ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(regressions))),
        ..ProptestConfig::default()
    }
}
