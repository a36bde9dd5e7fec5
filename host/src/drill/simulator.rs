//! The playbook's `[drill] simulator` plugin (e.g. the built-in `drill-sim`)
//! as a scenario source and a score hook.
//!
//! The simulator's timed injects (complaint bursts, a duplicate alert, a
//! failing step, the outcome) are laid over the host's default scenario,
//! which keeps the responders that walk every step of this playbook and times
//! the owner's silence against its escalation ladder; its extra criteria are
//! rated like the host's own and merged into the host's by id.

use super::responders::{alert_labels, default_scenario};
use super::scenario::{Scenario, ScenarioSource, overlay};
use super::score::{Criterion, Rating, ScoreHook, ScoreInput};
use crate::playbook::Playbook;
use crate::playbook::inject::{Inject, InjectKind};
use crate::plugin::PluginHost;
use crate::plugin::api::{self as papi, IncidentInfo, Invocation, RunMode};
use std::sync::Arc;
use std::time::Duration;

/// Adapts a drill-world plugin to [`ScenarioSource`] and [`ScoreHook`].
pub struct Simulator {
    host: Arc<PluginHost>,
}

impl Simulator {
    /// Uses the plugins loaded in `host`; each playbook names its own simulator in `[drill] simulator`.
    pub fn new(host: Arc<PluginHost>) -> Self {
        Simulator { host }
    }
}

fn conv<T: serde::de::DeserializeOwned + Default>(v: impl serde::Serialize) -> T {
    serde_json::to_value(v).ok().and_then(|v| serde_json::from_value(v).ok()).unwrap_or_default()
}

fn invocation(id: String) -> Invocation {
    Invocation { invocation_id: id, incident_id: String::new(), mode: RunMode::Drill, now_unix_ms: 0, budget_ms: None }
}

/// Maps the plugin's injects onto the runner's, keeping only those that fit this playbook.
fn map_injects(pb: &Playbook, injects: &[papi::Inject]) -> Vec<Inject> {
    let offset = |i: &papi::Inject| Duration::from_millis(i.at_offset_ms);
    let payload = |i: &papi::Inject| serde_json::from_str::<serde_json::Value>(&i.payload_json).unwrap_or_default();
    let next_of = |from: usize, kind: papi::InjectKind, target: &Option<String>| {
        injects[from..]
            .iter()
            .find(|j| j.kind == kind && (target.is_none() || &j.target == target))
            .map(|j| Duration::from_millis(j.at_offset_ms))
    };
    let mut out = Vec::new();
    for (n, i) in injects.iter().enumerate() {
        let at = offset(i);
        let p = payload(i);
        let kind = match i.kind {
            papi::InjectKind::ComplaintBurst => InjectKind::ComplaintBurst {
                count: p["count"].as_u64().unwrap_or(10) as u32,
                channel: p["channel"].as_str().map(str::to_string),
            },
            papi::InjectKind::DuplicateAlert => InjectKind::DuplicateAlert,
            // The owner's silence is timed by the host against this playbook's
            // own ladder (the default scenario makes the owner miss the window
            // whenever there is an escalation level to exercise): the plugin
            // cannot know when the page goes out or when escalation is due.
            papi::InjectKind::NoAck | papi::InjectKind::Ack => continue,
            papi::InjectKind::StepFailure => {
                // Only for a step this playbook has; otherwise the fault has nothing to hit.
                let Some(spec) = i.target.as_deref().and_then(|s| pb.step(s)) else {
                    continue;
                };
                // Timed against the step's own deadline, so the retried step can still meet it:
                // the failure a fifth of the way in, the retry at most two fifths later.
                let within = spec.within.unwrap_or(Duration::from_secs(3600)).min(super::responders::EXERCISE_STEP_CAP);
                let retry = next_of(n, papi::InjectKind::StepDone, &i.target).unwrap_or(at + Duration::from_secs(240));
                let retry_after = retry.saturating_sub(at).clamp(Duration::from_secs(1), within * 2 / 5);
                out.push(Inject {
                    at: Duration::ZERO,
                    after: within / 5,
                    kind: InjectKind::StepFailure {
                        step: spec.id.clone(),
                        reason: p["error"].as_str().unwrap_or("simulated failure").to_string(),
                        retry_after,
                    },
                });
                continue;
            }
            papi::InjectKind::Outcome => InjectKind::Outcome {
                cause: p["cause"].as_str().unwrap_or_default().to_string(),
                process: p["process"].as_str().unwrap_or_default().to_string(),
                aftermath: p["aftermath"].as_str().unwrap_or_default().to_string(),
            },
            // The host's default scenario already raises the alert from the
            // playbook's trigger labels and walks every step.
            papi::InjectKind::Alert | papi::InjectKind::StepDone => continue,
        };
        out.push(Inject { at, after: Duration::ZERO, kind });
    }
    out
}

impl ScenarioSource for Simulator {
    fn name(&self) -> &str {
        "simulator plugin"
    }

    fn plan(&self, pb: &Playbook, seed: u64) -> anyhow::Result<Option<Scenario>> {
        let Some(sim) = pb.drill.as_ref().and_then(|d| d.simulator.clone()) else {
            return Ok(None);
        };
        let labels = alert_labels(pb).into_iter().collect();
        let info = IncidentInfo {
            id: format!("drill-plan-{}", pb.id),
            title: pb.name.clone(),
            playbook_id: pb.id.clone(),
            severity: conv(pb.severity),
            category: conv(pb.category),
            phase: "report".into(),
            summary: pb.summary.clone(),
            labels,
        };
        // The step that fails: the first step people carry out by hand.
        let failing =
            pb.act.iter().find(|s| super::responders::is_hands_on(s.kind)).map(|s| s.id.clone()).unwrap_or_default();
        let params = vec![("failing_step".to_string(), failing), ("seed".to_string(), seed.to_string())];
        let out = self
            .host
            .drill_plan(&sim, &invocation(format!("plan-{}-{seed}", pb.id)), &info, &params)
            .map_err(|e| anyhow::anyhow!("simulator plugin `{sim}`: {e}"))?;
        let base = default_scenario(pb, seed);
        let mut s = overlay(base, &map_injects(pb, &out.value.injects));
        s.title = out.value.title.clone();
        s.source = format!("{sim} {} (over the playbook's responders)", out.plugin.version);
        Ok(Some(s))
    }
}

impl ScoreHook for Simulator {
    fn name(&self) -> &str {
        "simulator plugin"
    }

    fn criteria(&self, input: &ScoreInput<'_>) -> anyhow::Result<Vec<Criterion>> {
        let Some(sim) = input.playbook.drill.as_ref().and_then(|d| d.simulator.clone()) else {
            return Ok(Vec::new());
        };
        let journal: Vec<serde_json::Value> = input
            .events
            .iter()
            .map(|e| serde_json::json!({"seq": e.seq, "at": e.at, "kind": e.kind, "data": e.data}))
            .collect();
        let out = self
            .host
            .drill_score(&sim, &invocation(format!("score-{}", input.playbook.id)), &serde_json::to_string(&journal)?)
            .map_err(|e| anyhow::anyhow!("simulator plugin `{sim}`: {e}"))?;
        Ok(out.value.into_iter().map(|c| criterion(&sim, c)).collect())
    }
}

/// A simulator's criterion as a host criterion. A name written `ID: title`
/// (ID in lower case, digits, `-`, `_`, `:`) gives the stable id the merge
/// with the host's criteria goes by, e.g. `dedup: duplicate alert
/// deduplicated` judges what the host's `dedup` judges; other names get the
/// id `SIMULATOR:slug`. `max_points = 0` means the criterion's condition
/// never arose: `n/a`.
fn criterion(sim: &str, c: papi::Criterion) -> Criterion {
    let (id, title) = match c.name.split_once(": ") {
        Some((id, title))
            if !id.is_empty()
                && id.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "-_:".contains(ch)) =>
        {
            (id.to_string(), title.to_string())
        }
        _ => (format!("{sim}:{}", c.name.to_lowercase().replace(' ', "-")), c.name.clone()),
    };
    let rating = if c.max_points == 0 {
        Rating::NotApplicable
    } else {
        match c.points as f64 / c.max_points as f64 {
            r if r >= 1.0 => Rating::Performed,
            r if r >= 0.66 => Rating::SomeChallenges,
            r if r >= 0.33 => Rating::MajorChallenges,
            _ => Rating::Unable,
        }
    };
    Criterion {
        id,
        title,
        rating,
        points: rating.points(),
        measured: (c.max_points > 0).then(|| format!("{}/{} points", c.points, c.max_points)),
        limit: None,
        finding: c.note,
        evidence: Vec::new(),
        section: "[drill] simulator".into(),
        source: sim.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(name: &str, points: u32, max_points: u32) -> papi::Criterion {
        papi::Criterion { name: name.into(), points, max_points, note: "n".into() }
    }

    #[test]
    fn ids_come_from_the_name_prefix_and_zero_max_points_is_not_applicable() {
        let x = criterion("drill-sim", c("dedup: duplicate alert deduplicated", 10, 10));
        assert_eq!(
            (x.id.as_str(), x.title.as_str(), x.rating),
            ("dedup", "duplicate alert deduplicated", Rating::Performed)
        );
        let x = criterion("drill-sim", c("Escalation: after silence", 5, 10));
        assert_eq!((x.id.as_str(), x.rating), ("drill-sim:escalation:-after-silence", Rating::MajorChallenges));
        let x = criterion("drill-sim", c("escalation: escalation after missed acknowledgement", 0, 0));
        assert_eq!((x.id.as_str(), x.rating, x.points, x.measured), ("escalation", Rating::NotApplicable, 0, None));
        assert_eq!(criterion("s", c("x: y", 0, 10)).rating, Rating::Unable);
    }
}
