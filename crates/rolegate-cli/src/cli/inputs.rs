//! Stage: command-line input shared by `eval` and `bench`. Input: the paths they are given (the
//! user file, the optional request file, the app directory or rule file). Output: the parsed
//! user and request ([`Inputs`]), the loaded rule set with its load time ([`load_app`]), and the
//! request context built from them ([`Inputs::context`]) — read, and their errors worded, the
//! same way by both commands.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rolegate::{
    RequestContext, RuleSet,
    testing::{CaseRequest, InputError, add_app_values, request_context},
};
use serde_json::Value;

use super::{CliError, load_rules, read_json};

/// The user and the request of one command.
pub struct Inputs {
    user: Value,
    user_path: PathBuf,
    request: Option<CaseRequest>,
    request_path: Option<PathBuf>,
}

impl Inputs {
    /// Reads the user file and the request file (the same object as a conformance case's
    /// `request`).
    pub fn read(user: &Path, request: Option<&Path>) -> Result<Inputs, CliError> {
        let user_value = read_json(user)?;
        let parsed = match request {
            Some(path) => Some(
                serde_json::from_value::<CaseRequest>(read_json(path)?).map_err(|e| {
                    CliError::new(format!("`{}` is not a valid request: {e}", path.display()))
                })?,
            ),
            None => None,
        };
        Ok(Inputs {
            user: user_value,
            user_path: user.to_path_buf(),
            request: parsed,
            request_path: request.map(Path::to_path_buf),
        })
    }

    /// The request, when a request file was given.
    pub fn request(&self) -> Option<&CaseRequest> {
        self.request.as_ref()
    }

    /// The request context for `set`: the user, the request, and the app's values and
    /// environment; the system user (every rule bypassed) only when `system` (the `--system`
    /// flag), never because the user file says `"type": "system"`. An error names the file it
    /// comes from.
    pub fn context(
        &self,
        set: &RuleSet,
        search: bool,
        system: bool,
    ) -> Result<RequestContext, CliError> {
        let mut ctx = request_context(Some(&self.user), self.request.as_ref(), search)
            .map_err(|e| self.input_error(e))?
            .with_system(system);
        add_app_values(set, &mut ctx, self.request.as_ref())
            .map_err(|e| CliError::new(e.to_string()))?;
        Ok(ctx)
    }

    fn input_error(&self, e: InputError) -> CliError {
        let file = if e.path == "user" || e.path.starts_with("user.") {
            self.user_path.display().to_string()
        } else {
            self.request_path
                .as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        };
        CliError::new(format!("`{file}`: {e}"))
    }
}

/// Loads and validates the app directory or rule file at `path`, with the time it took; every
/// diagnostic of a set that does not load is in the error.
pub fn load_app(path: &Path) -> Result<(RuleSet, Duration), CliError> {
    if !path.exists() {
        return Err(CliError::new(format!(
            "cannot read `{}`: no such file or directory",
            path.display()
        )));
    }
    let started = Instant::now();
    let set = load_rules(path).map_err(|e| {
        let lines: Vec<String> = e.diagnostics.0.iter().map(ToString::to_string).collect();
        CliError::new(format!("the rules do not load:\n{}", lines.join("\n")))
    })?;
    Ok((set, started.elapsed()))
}
