//! Stage: the end of a command. Input: how the command went. Output: the process exit code.
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | done, and the answer is yes: the rules are valid (`check`), every case passed (`test`), the decisions were printed (`eval`; with `--fail-on-deny`: every document visible and every write allowed), the figures were printed (`bench`) |
//! | 1 | done, and the answer is no: invalid rules (or warnings with `--deny-warnings`), a failed case, or (`eval --fail-on-deny`) a withheld document, a refused write or a failed request |
//! | 2 | could not do the job: a usage error, a file that cannot be read or parsed, rules that do not load for `eval` |

use std::process::ExitCode;

/// The exit status of a `rolegate` command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Exit {
    /// 0: done, the answer is yes.
    Ok,
    /// 1: done, the answer is no.
    Failure,
    /// 2: usage error or unusable input.
    Usage,
}

impl Exit {
    /// The numeric code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Failure => 1,
            Exit::Usage => 2,
        }
    }

    /// `Ok` when `yes`, else `Failure`.
    pub fn answer(yes: bool) -> Self {
        if yes { Exit::Ok } else { Exit::Failure }
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e.code())
    }
}

/// The table above, for `--help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  done, and the answer is yes: rules valid (check), every case passed (test),
     decisions printed (eval; with --fail-on-deny: every document visible and
     every write allowed), figures printed (bench)
  1  done, and the answer is no: invalid rules (or warnings with --deny-warnings),
     a failed case, or (eval --fail-on-deny) a withheld document, a refused write
     or a failed request
  2  usage error, or input that cannot be read or parsed (for eval and bench: rules that
     do not load)";
