//! The classification pipeline: the category given with the complaint,
//! else the first `[[complaints.rule]]` that matches, else the configured
//! classifier plugin, else `other` with confidence 0.

use crate::config::complaints::ComplaintsConfig;
use crate::incident::complaint::ClassifiedBy;
use crate::playbook::types::{Category, Channel, Mode};
use crate::plugin::PluginHost;
use crate::plugin::api::{Invocation, RunMode};
use crate::plugin::classifier::ComplaintInput;

/// A complaint's category, how sure it is (0 to 1) and which step decided.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Classification {
    /// The category.
    pub category: Category,
    /// 0.0 to 1.0.
    pub confidence: f64,
    /// The step that decided.
    pub by: ClassifiedBy,
}

/// The complaint being classified, its contact details already masked.
pub(crate) struct Complaint<'a> {
    /// The complaint's id, for the plugin call's invocation id.
    pub id: &'a str,
    /// The category sent with it, if any.
    pub given: Option<Category>,
    /// The customer's locale.
    pub locale: &'a str,
    /// The masked text.
    pub text: &'a str,
    /// The channel it came in on.
    pub channel: Channel,
}

/// Classifies one complaint, trying each step in order. The plugin is asked
/// only when no rule matched; when it fails (error, timeout, quarantine) or
/// no plugin host is at hand the complaint is `other` and the reason is
/// logged, so intake never waits on a broken classifier for longer than its deadline.
pub(crate) fn classify(
    host: Option<&PluginHost>,
    cfg: &ComplaintsConfig,
    mode: Mode,
    now: i64,
    c: &Complaint<'_>,
) -> Classification {
    if let Some(category) = c.given {
        return Classification { category, confidence: 1.0, by: ClassifiedBy::Given };
    }
    if let Some((i, r)) = cfg.rules.iter().enumerate().find(|(_, r)| r.matches(c.locale, c.text)) {
        return Classification {
            category: r.category,
            confidence: r.confidence,
            by: ClassifiedBy::Rule { index: i + 1 },
        };
    }
    if let Some(plugin) = &cfg.classifier {
        let inv = Invocation {
            invocation_id: format!("{}.classify", c.id),
            incident_id: c.id.to_string(),
            mode: if mode == Mode::Drill { RunMode::Drill } else { RunMode::Live },
            now_unix_ms: now.max(0) as u64,
            budget_ms: None,
        };
        let input = ComplaintInput::new(c.text, c.channel.into(), c.locale);
        let Some(host) = host else {
            tracing::warn!(
                complaint = c.id,
                "classifier `{plugin}` not asked: this run has no plugin host; the complaint is `other`"
            );
            return Classification { category: Category::Other, confidence: 0.0, by: ClassifiedBy::Default };
        };
        match host.classify(plugin, &inv, &input) {
            Ok(out) => {
                return Classification {
                    category: out.value.category.into(),
                    confidence: f64::from(out.value.confidence),
                    by: ClassifiedBy::Plugin { plugin: plugin.clone() },
                };
            }
            Err(e) => tracing::warn!(complaint = c.id, "classifier `{plugin}` failed, the complaint is `other`: {e}"),
        }
    }
    Classification { category: Category::Other, confidence: 0.0, by: ClassifiedBy::Default }
}
