//! Containment: a drill can never reach a customer or a target that is not
//! marked `drill_safe`.
//!
//! [`DrillExecutor`] wraps the executor the daemon would use (the log target
//! today, the Wasm plugin executor later) and decides, from the host's own
//! configuration and never from the plugin, what may pass:
//!
//! - customer (appease) messages: always captured, never executed;
//! - notifications to a target not marked `drill_safe` (or not configured): captured;
//! - notifications to `drill_safe` targets (the participants): passed to the
//!   inner executor, subject prefixed `[DRILL <run>]`, so people get paged;
//! - anything whose payload is not in drill mode: refused.
//!
//! A captured effect is journaled as a successful result whose detail starts
//! with [`CAPTURED`], so the playbook runs on and the report can count it.

use crate::config::Target;
use crate::incident::effects::{EffectKind, EffectOutcome, Executor, IntentPayload};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Prefix of the journaled detail of every captured effect.
pub const CAPTURED: &str = "captured (drill): ";

/// An [`Executor`] wrapper that captures every drill effect except notices to `drill_safe` targets, and refuses live-mode effects.
pub struct DrillExecutor {
    inner: Arc<dyn Executor>,
    targets: BTreeMap<String, Target>,
    run_id: String,
}

impl DrillExecutor {
    /// `targets` come from the configuration the drill runs under.
    pub fn new(inner: Arc<dyn Executor>, targets: BTreeMap<String, Target>, run_id: impl Into<String>) -> Self {
        DrillExecutor { inner, targets, run_id: run_id.into() }
    }

    /// Whether a notification to `target` may leave the drill.
    pub fn passes(&self, p: &IntentPayload) -> bool {
        p.mode == crate::playbook::types::Mode::Drill
            && p.kind == EffectKind::Notify
            && p.customer.is_none()
            && self.targets.get(&p.target).is_some_and(|t| t.drill_safe)
    }
}

impl Executor for DrillExecutor {
    fn execute(&self, invocation_id: &str, p: &IntentPayload) -> EffectOutcome {
        if p.mode != crate::playbook::types::Mode::Drill {
            // Two locks: the engine sets the mode, and this wrapper checks it again.
            return EffectOutcome::failed(
                format!("refused: the drill executor only runs drill-mode effects, got mode `{}`", p.mode),
                false,
            );
        }
        if self.passes(p) {
            let mut out = p.clone();
            let tag = format!("[DRILL {}]", self.run_id);
            if !out.subject.starts_with(&tag) {
                out.subject = format!("{tag} {}", out.subject);
            }
            return self.inner.execute(invocation_id, &out);
        }
        let detail = match (p.kind, &p.customer) {
            (EffectKind::Appease, Some(c)) => {
                format!("{CAPTURED}customer message for customer {} by {} ({}), not sent", c.id, c.channel, p.purpose)
            }
            (EffectKind::Appease, None) => {
                format!("{CAPTURED}customer message ({}), not sent", p.purpose)
            }
            (EffectKind::Notify, _) => {
                let why = match self.targets.get(&p.target) {
                    None => "not configured",
                    Some(_) => "not drill_safe",
                };
                format!("{CAPTURED}{} notice to target `{}` ({why}), not sent", p.purpose, p.target)
            }
        };
        tracing::debug!(invocation_id, run = %self.run_id, "{detail}");
        EffectOutcome::sent(detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::effects::{CustomerRef, IncidentSummary};
    use std::sync::Mutex;

    #[derive(Default)]
    struct Rec(Mutex<Vec<String>>);
    impl Executor for Rec {
        fn execute(&self, id: &str, p: &IntentPayload) -> EffectOutcome {
            self.0.lock().unwrap().push(format!("{id} {} {}", p.target, p.subject));
            EffectOutcome::sent("ok")
        }
    }

    fn payload(kind: EffectKind, target: &str, mode: &str, customer: bool) -> IntentPayload {
        IntentPayload {
            kind,
            purpose: "report".parse().unwrap(),
            target: target.into(),
            notifier: "log".into(),
            composer: None,
            mode: mode.parse().unwrap(),
            incident: IncidentSummary {
                id: "DRL-1".into(),
                title: "t".into(),
                playbook_id: "p".into(),
                severity: "sev2".parse().unwrap(),
                category: "price".parse().unwrap(),
                phase: "report".parse().unwrap(),
                summary: String::new(),
            },
            subject: "s".into(),
            body: "b".into(),
            recipients: vec![],
            customer: customer.then(|| CustomerRef {
                id: "c1".into(),
                segment: "affected".into(),
                tier: "vip".into(),
                locale: "en".into(),
                channel: "sms".into(),
            }),
            status: None,
        }
    }

    #[test]
    fn only_drill_safe_notifications_pass() {
        let rec = Arc::new(Rec::default());
        let t = |safe| Target {
            plugin: "log".into(),
            drill_safe: safe,
            digest: None,
            config: BTreeMap::new(),
            delivery: Default::default(),
            smtp: None,
        };
        let targets = BTreeMap::from([
            ("oncall".to_string(), t(true)),
            ("customers".to_string(), t(false)),
            ("regulator".to_string(), t(false)),
        ]);
        let x = DrillExecutor::new(rec.clone(), targets, "run-1");
        let r = x.execute("a", &payload(EffectKind::Notify, "oncall", "drill", false));
        assert!(r.ok && r.detail == "ok");
        let r = x.execute("b", &payload(EffectKind::Notify, "regulator", "drill", false));
        assert!(r.ok && r.detail.starts_with(CAPTURED) && r.detail.contains("not drill_safe"), "{r:?}");
        let r = x.execute("c", &payload(EffectKind::Notify, "nowhere", "drill", false));
        assert!(r.detail.contains("not configured"));
        // A customer message is captured even if addressed through a drill-safe target.
        let r = x.execute("d", &payload(EffectKind::Appease, "oncall", "drill", true));
        assert!(r.detail.starts_with(CAPTURED) && r.detail.contains("customer c1"), "{r:?}");
        let r = x.execute("e", &payload(EffectKind::Notify, "oncall", "live", false));
        assert!(!r.ok && r.detail.starts_with("refused"));
        assert_eq!(*rec.0.lock().unwrap(), vec!["a oncall [DRILL run-1] s".to_string()]);
    }
}
