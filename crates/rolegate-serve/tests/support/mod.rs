//! What the server's tests (and `benches/direct.rs`) share: a copy of the example app
//! (`examples/tasks-app`) to change per test, with custom user data in `taskboard.users` when
//! asked.

#![allow(
    dead_code,
    clippy::unwrap_used,
    reason = "each test file uses part of it; helpers fail the test by panicking"
)]

use std::path::{Path, PathBuf};

/// The example app's directory in the repository.
pub fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/tasks-app")
}

/// Copies the example app into `dir/app` (with custom user data in `taskboard.users`, keyed
/// by `user_id`, when `custom_user_data`); its path.
pub fn example_app(dir: &Path, custom_user_data: bool) -> PathBuf {
    let app = dir.join("app");
    copy_dir(&example_dir(), &app);
    if custom_user_data {
        std::fs::write(
            app.join("auth/custom_user_data.json"),
            r#"{"enabled": true, "mongo_service_name": "mongodb-atlas", "database_name": "taskboard",
                "collection_name": "users", "user_id_field": "user_id"}"#,
        )
        .unwrap();
    }
    app
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
