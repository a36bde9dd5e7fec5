//! Evaluates a step's `when` condition against the incident.

use super::state::Incident;
use crate::playbook::types::Severity;

/// True if the step should run. Errors explain what went wrong in the expression.
pub fn eval(expr: &str, inc: &Incident) -> Result<bool, String> {
    let sev: Severity = inc.severity.parse().unwrap_or(Severity::Sev3);
    let vars = crate::when::Vars {
        severity: sev.number(),
        category: &inc.category,
        drill: inc.is_drill(),
        fields: &inc.fields,
        labels: &inc.labels,
    };
    crate::when::eval(expr, &vars)
}
