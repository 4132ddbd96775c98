//! Stage: report. Input: `target/criterion` after `cargo bench -p rolegate-peers`. Output: the
//! Markdown tables (medians, speed-ups, targets) on stdout, and the chart `docs/peers.svg`.
//!
//! `cargo run -p rolegate-peers --release --bin peers-report [-- --svg PATH] [--criterion DIR]`;
//! `PEERS_NOTE=...` replaces the machine line under the chart's title.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use rolegate_peers::report::{self, Results};

fn main() -> ExitCode {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let mut criterion = target.join("criterion");
    let mut svg = root.join("docs/peers.svg");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--svg", Some(p)) => svg = PathBuf::from(p),
            ("--criterion", Some(p)) => criterion = PathBuf::from(p),
            _ => {
                eprintln!("usage: peers-report [--svg PATH] [--criterion DIR]");
                return ExitCode::from(2);
            }
        }
    }
    let results = match Results::read(&criterion) {
        Ok(r) if !r.all.is_empty() => r,
        Ok(_) => {
            eprintln!(
                "no peers/* results under {}: run `cargo bench -p rolegate-peers` first",
                criterion.display()
            );
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("{}: {e}", criterion.display());
            return ExitCode::FAILURE;
        }
    };
    let machine = report::machine();
    let note = std::env::var("PEERS_NOTE").unwrap_or_else(|_| {
        format!("{machine}; cargo bench -p rolegate-peers; medians from criterion")
    });
    println!("Machine: {machine}.\n");
    println!("{}", report::table(&results));
    println!("{}", report::targets(&results));
    if let Err(e) = std::fs::write(&svg, report::svg(&results, &note)) {
        eprintln!("{}: {e}", svg.display());
        return ExitCode::FAILURE;
    }
    eprintln!("wrote {}", svg.display());
    ExitCode::SUCCESS
}
