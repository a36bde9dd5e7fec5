//! Dedup keys: rendered from the playbook's template, and never silently
//! absent. When the template renders empty (the alert lacks a label it
//! names), the key falls back to one the sender gave (the Alertmanager
//! fingerprint) and the incident's journal says so.

use crate::playbook::spec::Playbook;
use crate::playbook::types::Severity;
use std::collections::BTreeMap;

/// Who writes the journal note about a fallback key.
pub(crate) const NOTE_BY: &str = "crisis";

/// The dedup key chosen for one trigger or resolve, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DedupKey {
    /// The caller named the key.
    Given(String),
    /// The playbook's template rendered it.
    Template(String),
    /// The template rendered empty; the sender's own key is used instead.
    Fallback { key: String, fallback: String },
    /// The template rendered empty and there is nothing to fall back to.
    Empty,
    /// The playbook has no template and the caller gave no key.
    None,
}

impl DedupKey {
    /// The key itself, if any.
    pub(crate) fn key(&self) -> Option<&str> {
        match self {
            DedupKey::Given(k) | DedupKey::Template(k) | DedupKey::Fallback { key: k, .. } => Some(k),
            DedupKey::Empty | DedupKey::None => None,
        }
    }

    /// The warning to journal with the incident, when the template rendered empty.
    pub(crate) fn warning(&self, pb: &Playbook) -> Option<String> {
        let tpl = pb.trigger.as_ref().and_then(|t| t.dedup_key.as_deref()).unwrap_or_default();
        match self {
            DedupKey::Fallback { key, fallback } => Some(format!(
                "warning: the dedup_key template `{tpl}` of playbook {} rendered empty for this alert's labels; using {fallback} `{key}` as the dedup key instead",
                pb.id
            )),
            DedupKey::Empty => Some(format!(
                "warning: the dedup_key template `{tpl}` of playbook {} rendered empty and the sender gave no key to fall back to; this incident has no dedup key, so repeats open new incidents",
                pb.id
            )),
            _ => None,
        }
    }
}

/// A key the sender gave that stands in for an empty template, and what it is
/// ("the Alertmanager fingerprint").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FallbackKey {
    /// The key, already prefixed so it cannot clash with template keys.
    pub key: String,
    /// What the key is, for the journal note.
    pub what: String,
}

impl FallbackKey {
    /// The fallback for an Alertmanager alert: its fingerprint, as `am:<fingerprint>`.
    pub fn alertmanager(fingerprint: &str) -> Self {
        FallbackKey { key: format!("am:{fingerprint}"), what: "the Alertmanager fingerprint".into() }
    }
}

/// Chooses the dedup key: the caller's, else the template's, else the fallback.
pub(crate) fn choose(
    pb: &Playbook,
    given: Option<&str>,
    labels: &BTreeMap<String, String>,
    fields: &BTreeMap<String, String>,
    sev: Severity,
    fallback: Option<&FallbackKey>,
) -> Result<DedupKey, String> {
    if let Some(k) = given.filter(|k| !k.is_empty()) {
        return Ok(DedupKey::Given(k.to_string()));
    }
    let Some(tpl) = pb.trigger.as_ref().and_then(|t| t.dedup_key.as_ref()) else {
        return Ok(DedupKey::None);
    };
    if let Some(k) = render(pb, tpl, labels, fields, sev)? {
        return Ok(DedupKey::Template(k));
    }
    Ok(match fallback {
        Some(f) => DedupKey::Fallback { key: f.key.clone(), fallback: f.what.clone() },
        None => DedupKey::Empty,
    })
}

/// Renders a dedup-key template; a result of only separators counts as empty.
fn render(
    pb: &Playbook,
    tpl: &str,
    labels: &BTreeMap<String, String>,
    fields: &BTreeMap<String, String>,
    sev: Severity,
) -> Result<Option<String>, String> {
    // One environment for the process: building one per trigger costs more than rendering.
    static ENV: std::sync::OnceLock<minijinja::Environment<'static>> = std::sync::OnceLock::new();
    let env = ENV.get_or_init(minijinja::Environment::new);
    let ctx = minijinja::context! { labels => labels, fields => fields, severity => sev.as_str(), playbook => pb.id };
    let key = env
        .render_str(tpl, ctx)
        .map_err(|e| format!("cannot render the dedup key template of playbook {}: {e}", pb.id))?;
    let key = key.trim().to_string();
    Ok(if key.is_empty() || key.chars().all(|c| c == ':' || c == '/' || c == '-') { None } else { Some(key) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playbook::spec::TriggerSpec;

    fn playbook(tpl: Option<&str>) -> Playbook {
        let f = crate::incident::tests::fixture_with(crate::incident::tests::PLAYBOOK);
        let mut pb = (*f.engine.generation().playbooks["outage"]).clone();
        pb.trigger = Some(TriggerSpec {
            matches: [("alertname".to_string(), "Down".to_string())].into(),
            dedup_key: tpl.map(String::from),
            surge: None,
        });
        pb
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn a_template_that_renders_falls_back_to_nothing() {
        let pb = playbook(Some("{{ labels.billing_run }}"));
        let fp = FallbackKey::alertmanager("c0ffee");
        let k =
            choose(&pb, None, &labels(&[("billing_run", "42")]), &BTreeMap::new(), Severity::Sev1, Some(&fp)).unwrap();
        assert_eq!(k, DedupKey::Template("42".into()));
        assert_eq!(k.warning(&pb), None);
    }

    #[test]
    fn an_empty_render_falls_back_to_the_fingerprint_with_a_warning() {
        let pb = playbook(Some("{{ labels.billing_run }}"));
        let fp = FallbackKey::alertmanager("c0ffee");
        let k =
            choose(&pb, None, &labels(&[("alertname", "Down")]), &BTreeMap::new(), Severity::Sev1, Some(&fp)).unwrap();
        assert_eq!(k.key(), Some("am:c0ffee"));
        let w = k.warning(&pb).unwrap();
        assert!(
            w.contains("rendered empty") && w.contains("Alertmanager fingerprint") && w.contains("am:c0ffee"),
            "{w}"
        );
    }

    #[test]
    fn separators_alone_count_as_empty() {
        let pb = playbook(Some("{{ labels.service }}:{{ labels.region }}"));
        let k = choose(&pb, None, &BTreeMap::new(), &BTreeMap::new(), Severity::Sev1, None).unwrap();
        assert_eq!(k, DedupKey::Empty);
        assert!(k.warning(&pb).unwrap().contains("no dedup key"));
    }

    #[test]
    fn a_given_key_wins_and_no_template_means_no_key() {
        let pb = playbook(Some("{{ labels.service }}"));
        let k =
            choose(&pb, Some("evt-1"), &labels(&[("service", "x")]), &BTreeMap::new(), Severity::Sev1, None).unwrap();
        assert_eq!(k, DedupKey::Given("evt-1".into()));
        let pb = playbook(None);
        let fp = FallbackKey::alertmanager("c0ffee");
        assert_eq!(
            choose(&pb, None, &BTreeMap::new(), &BTreeMap::new(), Severity::Sev1, Some(&fp)).unwrap(),
            DedupKey::None
        );
    }
}
