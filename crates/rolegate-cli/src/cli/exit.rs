//! Stage: the end of a command. Input: how the command went. Output: the process exit code.
//!
//! One table for every command (`check`, `eval`, `test`, `bench`, `prop`, `diff`, `call`, `import`,
//! `export`);
//! the code says whose fault a failure is — the command line, an input file, or the rules:
//!
//! | code | name | meaning |
//! | --- | --- | --- |
//! | 0 | yes | done, and the answer is yes: the rules are valid (`check`), every case passed (`test`), the decisions were printed (`eval`; with `--fail-on-deny`: every document visible and every write allowed), the figures were printed (`bench`), the operation ran and its result was printed (`call`), the documents were imported or printed (`import`, `export`), every property passed (`prop`), no difference was found (`diff`) |
//! | 1 | no | done, and the answer is no: warnings under `check --deny-warnings`, a failed case or a coverage below `--min-coverage` (`test`), a withheld document, a refused write or a failed request (`eval --fail-on-deny`), a failed request (`bench`: nothing to time), an operation that failed as App Services answers a client (`call`: refused by the rules, no rule for the namespace, a duplicate key, ...; nothing was written); a failed or vacuous property (`prop`); a difference (`diff`) |
//! | 2 | usage | the command line is wrong: an unknown or missing option, options that conflict, `-` (stdin) given twice, a `--collection` that names no data source or could be in several, or (with `--strict`) one that no rule file names, a `DB.COLL` that is not a namespace, an unknown `--environment`, a rule file without `--store`, `--mongodb` in a build without MongoDB support |
//! | 3 | input | an input other than the rules cannot be used: a user, request, document, pre-image, case, property, body or documents file that is missing, unreadable, not UTF-8, not JSON or not of the expected shape (every problem is printed, with its line or JSON path; for `call`, a body that is not a valid operation); an `_id` that `import` finds already stored; a data store that cannot be opened or fails (`export`: a data folder that holds no store); or the output cannot be written |
//! | 4 | rules | the rules do not load: the path is missing, a rule file is unreadable, not UTF-8, not JSON or invalid, or the folder is not an App Services app (for `check` this is its "invalid" verdict) |

use std::process::ExitCode;

/// The exit status of a `rolegate` command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Exit {
    /// 0: done, the answer is yes.
    Yes,
    /// 1: done, the answer is no.
    No,
    /// 2: the command line is wrong.
    Usage,
    /// 3: an input file (not the rules) cannot be used, or the output cannot be written.
    Input,
    /// 4: the rules do not load.
    Rules,
}

impl Exit {
    /// The numeric code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Yes => 0,
            Exit::No => 1,
            Exit::Usage => 2,
            Exit::Input => 3,
            Exit::Rules => 4,
        }
    }

    /// `Yes` when `yes`, else `No`.
    pub fn answer(yes: bool) -> Self {
        if yes { Exit::Yes } else { Exit::No }
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e.code())
    }
}

/// The table above, for `--help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes (the same for every command):
  0  yes: rules valid (check), every case passed (test), decisions printed (eval;
     with --fail-on-deny: every document visible, every write allowed), figures
     printed (bench), the operation ran and its result is printed (call),
     documents imported or printed (import, export), every property passed
     (prop), no difference (diff)
  1  no: warnings with check --deny-warnings, a failed case or a coverage below
     test --min-coverage, or (eval --fail-on-deny)
     a withheld document, a refused write or a failed request; a failed request
     (bench); an operation refused or failed as a client would be answered (call:
     the code and message on stderr; nothing written); a failed or vacuous
     property (prop); a difference (diff)
  2  usage: a wrong command line (unknown or missing option, conflicting options,
     `-` given twice, a --collection naming no data source or several, or with
     --strict one that no rule file names; a DB.COLL that is not a namespace, an
     unknown --environment, a rule file without --store, --mongodb in a build
     without MongoDB support)
  3  input: a user, request, document, pre-image, case, property, body or documents
     file
     that is missing, unreadable, not UTF-8, not JSON or not of the expected shape
     (call: a body that is not a valid operation); an _id import finds already
     stored; a data store that cannot be opened or fails; output that cannot be
     written
  4  rules: the rules do not load (missing path, a rule file unreadable, not UTF-8,
     not JSON or invalid, a folder that is not an app); check's \"invalid\"";
