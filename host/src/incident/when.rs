//! Evaluates a step's `when` condition against the incident.

use super::state::Incident;

/// True if the step should run. Errors explain what went wrong in the expression.
pub(crate) fn eval(expr: &str, inc: &Incident) -> Result<bool, String> {
    let vars = crate::when::Vars {
        severity: inc.severity.number(),
        category: inc.category.as_str(),
        drill: inc.is_drill(),
        fields: &inc.fields,
        labels: &inc.labels,
    };
    crate::when::eval(expr, &vars)
}
