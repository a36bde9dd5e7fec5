//! Evaluates a step's `when` condition (CEL) against the incident.

use super::state::Incident;
use crate::playbook::types::Severity;
use crate::playbook::validate::compile_when;
use cel_interpreter::{Context, Value};

/// True if the step should run. Errors explain what went wrong in the expression.
pub fn eval(expr: &str, inc: &Incident) -> Result<bool, String> {
    let program = compile_when(expr).map_err(|e| format!("`when` does not parse: {}", e.msg))?;
    let mut ctx = Context::default();
    let sev: Severity = inc.severity.parse().unwrap_or(Severity::Sev3);
    ctx.add_variable_from_value("severity", sev.number());
    for n in 1..=5i64 {
        ctx.add_variable_from_value(format!("sev{n}"), n);
    }
    ctx.add_variable_from_value("category", inc.category.clone());
    ctx.add_variable_from_value("drill", inc.is_drill());
    ctx.add_variable("fields", inc.fields.clone()).map_err(|e| e.to_string())?;
    ctx.add_variable("labels", inc.labels.clone()).map_err(|e| e.to_string())?;
    match program.execute(&ctx) {
        Ok(Value::Bool(b)) => Ok(b),
        Ok(other) => Err(format!("`when` must be true or false, got {other:?}")),
        Err(e) => Err(format!("`when` failed: {e}")),
    }
}
