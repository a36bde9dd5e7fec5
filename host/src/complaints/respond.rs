//! Composing a complaint's first response: the configured appeasement
//! plugin writes it for the customer (by category, tier, locale and
//! channel); when it fails or writes nothing, the plain template is used and
//! the reason is journaled with the complaint.

use crate::incident::complaint::Composer;
use crate::incident::first_response_template;
use crate::playbook::types::{Category, Channel, Mode, Severity};
use crate::plugin::PluginHost;
use crate::plugin::api::{CustomerRef, IncidentInfo, Invocation, RunMode};

/// Who the answer is for, as the composer may see them (no contact details).
pub(crate) struct Addressee<'a> {
    /// The customer's id.
    pub id: &'a str,
    /// The customer's segment.
    pub segment: &'a str,
    /// The customer's tier.
    pub tier: &'a str,
    /// The customer's locale.
    pub locale: &'a str,
    /// The channel the answer goes out on.
    pub channel: Channel,
}

/// The first response's subject and text, and what composed them; the plain
/// template (with the reason) when the plugin fails, composes nothing or cannot be asked.
pub(crate) fn compose(
    host: Option<&PluginHost>,
    composer: Option<&str>,
    complaint_id: &str,
    category: Category,
    mode: Mode,
    now: i64,
    who: &Addressee<'_>,
) -> (Composer, String, String) {
    let (subject, body) = first_response_template(who.locale, complaint_id, category);
    let Some(plugin) = composer else {
        return (Composer::Template { reason: "no [complaints] composer is configured".into() }, subject, body);
    };
    let inv = Invocation {
        invocation_id: format!("{complaint_id}.first-response"),
        incident_id: complaint_id.to_string(),
        mode: if mode == Mode::Drill { RunMode::Drill } else { RunMode::Live },
        now_unix_ms: now.max(0) as u64,
        budget_ms: None,
    };
    let info = IncidentInfo {
        id: complaint_id.to_string(),
        title: format!("Complaint {complaint_id}"),
        playbook_id: "complaints".into(),
        severity: Severity::Sev4.into(),
        category: category.into(),
        phase: "report".into(),
        summary: format!("A {category} complaint on {}; this is the first response.", who.channel),
        labels: Vec::new(),
    };
    let customer = CustomerRef {
        id: who.id.to_string(),
        segment: who.segment.to_string(),
        tier: who.tier.to_string(),
        locale: who.locale.to_string(),
        channel: who.channel.into(),
    };
    let called = match host {
        Some(host) => host.compose(plugin, &inv, &info, &customer).map_err(|e| format!("{plugin} failed: {e}")),
        None => Err(format!("{plugin} not asked: this run has no plugin host")),
    };
    let reason = match called {
        Ok(out) => match out.value.into_iter().next() {
            Some(m) if !m.body.trim().is_empty() => {
                let subject = m.subject.filter(|s| !s.trim().is_empty()).unwrap_or(subject);
                return (Composer::Plugin { plugin: plugin.to_string() }, subject, m.body);
            }
            _ => format!("{plugin} composed no message"),
        },
        Err(reason) => reason,
    };
    tracing::warn!(complaint = complaint_id, "first response falls back to the plain template: {reason}");
    (Composer::Template { reason }, subject, body)
}
