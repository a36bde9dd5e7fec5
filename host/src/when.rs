//! `when` conditions: CEL expressions over an incident's severity, category,
//! mode, fields and labels, compiled without ever panicking.
//!
//! A leaf module so that validation (which checks the variables an expression
//! uses) and the engine (which evaluates it) share one compiler.

use cel_interpreter::{Context, Value};
use std::collections::BTreeMap;

/// Variables a `when` expression may use.
pub(crate) const VARIABLES: &[&str] =
    &["severity", "sev1", "sev2", "sev3", "sev4", "sev5", "category", "drill", "fields", "labels"];

/// Why a `when` expression does not compile: the parser's message and its
/// (1-based line, 0-based column) inside the expression, when known.
#[derive(Debug, Clone)]
pub(crate) struct WhenError {
    pub msg: String,
    pub pos: Option<(isize, isize)>,
}

/// The variables a `when` expression uses, or why it does not compile.
///
/// Memoized by expression text: the CEL parser is the most expensive part of
/// validation, and playbooks repeat the same few conditions (and a reload
/// re-validates every file). The memo is bounded; it is cleared when full.
pub(crate) fn variables(expr: &str) -> Result<Vec<String>, WhenError> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    type Memo = Mutex<HashMap<String, Result<Vec<String>, WhenError>>>;
    static MEMO: OnceLock<Memo> = OnceLock::new();
    let memo = MEMO.get_or_init(Default::default);
    if let Some(hit) = memo.lock().unwrap_or_else(|p| p.into_inner()).get(expr) {
        return hit.clone();
    }
    let result = compile(expr).map(|p| p.references().variables().into_iter().map(str::to_string).collect());
    let mut m = memo.lock().unwrap_or_else(|p| p.into_inner());
    if m.len() >= 4096 {
        m.clear();
    }
    m.insert(expr.to_string(), result.clone());
    result
}

/// Compiles a `when` expression without ever panicking.
///
/// cel-parser 0.10 panics (an `unreachable!` in antlr4rust) on some
/// incomplete expressions such as `severity <= ` instead of returning an
/// error. A playbook typo must not crash the validator or the daemon, so the
/// panic is caught here, kept off stderr, and reported as a syntax error.
pub(crate) fn compile(expr: &str) -> Result<cel_interpreter::Program, WhenError> {
    install_quiet_panic_hook();
    QUIET_PANICS.with(|q| q.set(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cel_interpreter::Program::compile(expr)));
    QUIET_PANICS.with(|q| q.set(false));
    match result {
        Ok(Ok(p)) => Ok(p),
        Ok(Err(e)) => {
            let first = e.errors.first();
            Err(WhenError {
                msg: first.map(|e| e.msg.clone()).unwrap_or_else(|| e.to_string()),
                pos: first.map(|e| e.pos),
            })
        }
        Err(_) => Err(WhenError { msg: "incomplete or malformed expression".to_string(), pos: None }),
    }
}

thread_local! {
    /// Set while [`compile`] runs, so the panic hook stays quiet for parser panics.
    static QUIET_PANICS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn install_quiet_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET_PANICS.with(|q| q.get()) {
                previous(info);
            }
        }));
    });
}

/// The values a `when` expression can see.
pub(crate) struct Vars<'a> {
    /// 1 for sev1 … 5 for sev5.
    pub severity: i64,
    pub category: &'a str,
    pub drill: bool,
    pub fields: &'a BTreeMap<String, String>,
    pub labels: &'a BTreeMap<String, String>,
}

/// True if the condition holds. Errors explain what went wrong in the expression.
pub(crate) fn eval(expr: &str, vars: &Vars<'_>) -> Result<bool, String> {
    let program = compile(expr).map_err(|e| format!("`when` does not parse: {}", e.msg))?;
    let mut ctx = Context::default();
    ctx.add_variable_from_value("severity", vars.severity);
    for n in 1..=5i64 {
        ctx.add_variable_from_value(format!("sev{n}"), n);
    }
    ctx.add_variable_from_value("category", vars.category.to_string());
    ctx.add_variable_from_value("drill", vars.drill);
    ctx.add_variable("fields", vars.fields.clone()).map_err(|e| e.to_string())?;
    ctx.add_variable("labels", vars.labels.clone()).map_err(|e| e.to_string())?;
    match program.execute(&ctx) {
        Ok(Value::Bool(b)) => Ok(b),
        Ok(other) => Err(format!("`when` must be true or false, got {other:?}")),
        Err(e) => Err(format!("`when` failed: {e}")),
    }
}
