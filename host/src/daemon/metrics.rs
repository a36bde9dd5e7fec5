//! Prometheus metrics (`GET /metrics`), fed by the engine's observer, the
//! reload task and the intake.

use crate::incident::events::Event;
use crate::incident::state::{Incident, Status};
use crate::playbook::types::Mode;
use crate::store::Store;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IncidentLabels {
    pub playbook: String,
    pub severity: String,
    pub mode: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpenLabels {
    pub playbook: String,
    pub severity: String,
    pub phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeadlineLabels {
    pub playbook: String,
    pub what: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EffectLabels {
    pub target: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChannelLabels {
    pub channel: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IntakeLabels {
    pub source: String,
    pub result: String,
}

/// Labels of the per-target outbox gauges.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetLabels {
    pub target: String,
}

/// Labels of the per-node membership gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NodeLabels {
    pub node: String,
}

/// Labels of the per-node lease gauge: `kind` is `intent` or `timer`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NodeLeaseLabels {
    pub node: String,
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginLabels {
    pub plugin: String,
    pub result: String,
}

/// Labels of per-plugin gauges.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginNameLabels {
    pub plugin: String,
}

/// Every metric the daemon exports.
pub struct Metrics {
    registry: Mutex<Registry>,
    /// The label set each open live incident is counted under in `open`.
    /// Why: the gauge is moved by the engine's observer, one incident at a
    /// time, instead of a scrape re-reading every open incident under the
    /// journal's lock (which let unauthenticated scrapes stall intake).
    open_by_incident: Mutex<HashMap<String, OpenLabels>>,
    pub opened: Family<IncidentLabels, Counter>,
    pub open: Family<OpenLabels, Gauge>,
    pub time_to_ack: Histogram,
    pub time_to_resolve: Histogram,
    pub deadlines_missed: Family<DeadlineLabels, Counter>,
    pub escalations: Counter,
    pub notifications: Family<EffectLabels, Counter>,
    pub customer_messages: Family<ChannelLabels, Counter>,
    pub plugin_calls: Family<PluginLabels, Counter>,
    /// 1 for a plugin whose running version is quarantined, else 0.
    pub plugin_quarantined: Family<PluginNameLabels, Gauge>,
    /// When a quarantined plugin's quarantine ends (Unix seconds).
    pub plugin_quarantine_end: Family<PluginNameLabels, Gauge>,
    pub reloads: Family<ResultLabels, Counter>,
    pub last_reload_successful: Gauge,
    pub last_reload_success_time: Gauge,
    pub out_of_sync: Gauge,
    pub generation: Gauge,
    pub ready: Gauge,
    pub intake: Family<IntakeLabels, Counter>,
    /// 1 while a target's circuit breaker holds its calls back.
    pub breaker_open: Family<TargetLabels, Gauge>,
    /// Pending side effects per target.
    pub outbox_depth: Family<TargetLabels, Gauge>,
    /// How long each target's oldest pending side effect has waited.
    pub outbox_oldest_age: Family<TargetLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    /// Side effects executed per target in the last minute.
    pub outbox_executed_last_minute: Family<TargetLabels, Gauge>,
    /// Timers and intents set aside after failing persistently.
    pub dead_letters: Gauge,
    /// 1 for a node sharing the journal database whose heartbeat is within its lease, else 0.
    pub node_up: Family<NodeLabels, Gauge>,
    /// Live leases each node holds, by kind (`intent`, `timer`).
    pub node_leases: Family<NodeLeaseLabels, Gauge>,
    pub(crate) complaints: super::complaints::metrics::ComplaintMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut r = Registry::with_prefix("crisis");
        let m = Metrics {
            registry: Mutex::new(Registry::default()),
            open_by_incident: Mutex::new(HashMap::new()),
            opened: Family::default(),
            open: Family::default(),
            time_to_ack: Histogram::new(exponential_buckets(5.0, 2.0, 12)),
            time_to_resolve: Histogram::new(exponential_buckets(60.0, 2.0, 14)),
            deadlines_missed: Family::default(),
            escalations: Counter::default(),
            notifications: Family::default(),
            customer_messages: Family::default(),
            plugin_calls: Family::default(),
            plugin_quarantined: Family::default(),
            plugin_quarantine_end: Family::default(),
            reloads: Family::default(),
            last_reload_successful: Gauge::default(),
            last_reload_success_time: Gauge::default(),
            out_of_sync: Gauge::default(),
            generation: Gauge::default(),
            ready: Gauge::default(),
            intake: Family::default(),
            breaker_open: Family::default(),
            outbox_depth: Family::default(),
            outbox_oldest_age: Family::default(),
            outbox_executed_last_minute: Family::default(),
            dead_letters: Gauge::default(),
            node_up: Family::default(),
            node_leases: Family::default(),
            complaints: Default::default(),
        };
        m.complaints.register(&mut r);
        super::metric_registry::register_all!(
            r,
            ("incidents_opened", "Incidents opened", m.opened),
            ("incidents_open", "Incidents not yet closed, by phase", m.open),
            ("time_to_acknowledge_seconds", "Time from opening to acknowledgement", m.time_to_ack),
            ("time_to_resolve_seconds", "Time from opening to resolution", m.time_to_resolve),
            ("deadlines_missed", "Phase, acknowledgement and step deadlines missed", m.deadlines_missed),
            ("escalations", "Escalation notices sent", m.escalations),
            ("notifications", "Notifications by target and result", m.notifications),
            ("customer_messages", "Customer messages by channel and result", m.customer_messages),
            ("plugin_calls", "Plugin calls by plugin and result", m.plugin_calls),
            ("plugin_quarantined", "1 if the plugin's running version is quarantined", m.plugin_quarantined),
            (
                "plugin_quarantine_end_timestamp_seconds",
                "When a quarantined plugin's quarantine ends",
                m.plugin_quarantine_end
            ),
            ("reloads", "Reload attempts by result", m.reloads),
            ("config_last_reload_successful", "1 if the last reload attempt succeeded", m.last_reload_successful),
            (
                "config_last_reload_success_timestamp_seconds",
                "When the last successful reload happened",
                m.last_reload_success_time
            ),
            ("config_out_of_sync", "1 if the files on disk differ from the applied generation", m.out_of_sync),
            ("config_generation", "The applied generation number", m.generation),
            ("ready", "1 if a valid playbook generation is loaded", m.ready),
            ("intake", "Intake requests by source and result", m.intake),
            ("target_breaker_open", "1 while the target's circuit breaker holds its calls back", m.breaker_open),
            ("outbox_depth", "Pending side effects by target", m.outbox_depth),
            (
                "outbox_oldest_age_seconds",
                "How long the target's oldest pending side effect has waited",
                m.outbox_oldest_age
            ),
            (
                "outbox_executed_last_minute",
                "Side effects executed for the target in the last minute",
                m.outbox_executed_last_minute
            ),
            ("dead_letters", "Timers and side effects set aside after failing persistently", m.dead_letters),
            ("node_up", "1 while the node's heartbeat is within its lease", m.node_up),
            ("node_leases", "Live leases the node holds, by kind", m.node_leases),
        );
        *m.registry.lock().unwrap_or_else(|p| p.into_inner()) = r;
        m
    }

    /// Counts the open live incidents of the journal; called once at start,
    /// before the engine's observer is installed, so no event is missed or
    /// counted twice.
    pub(crate) fn init_open(&self, store: &dyn Store) -> anyhow::Result<()> {
        let rows = store.open_incidents(Some(Mode::Live.as_str()))?;
        let mut map = self.open_by_incident.lock().unwrap_or_else(|p| p.into_inner());
        for r in rows {
            let labels = OpenLabels { playbook: r.playbook_id, severity: r.severity, phase: r.phase };
            self.open.get_or_create(&labels).inc();
            map.insert(r.id, labels);
        }
        Ok(())
    }

    /// Moves `inc` to the label set of its current state in the open gauge
    /// (or out of it once it is closed).
    fn track_open(&self, inc: &Incident) {
        let now = (inc.mode == Mode::Live && inc.status != Status::Closed).then(|| OpenLabels {
            playbook: inc.playbook_id.clone(),
            severity: inc.severity.to_string(),
            phase: inc.phase.to_string(),
        });
        let mut map = self.open_by_incident.lock().unwrap_or_else(|p| p.into_inner());
        let before = match &now {
            Some(l) => map.insert(inc.id.clone(), l.clone()),
            None => map.remove(&inc.id),
        };
        if before == now {
            return;
        }
        if let Some(b) = before {
            // A label set no incident is in any more disappears, as it did
            // when the gauge was recounted per scrape.
            if self.open.get_or_create(&b).dec() <= 1 {
                self.open.remove(&b);
            }
        }
        if let Some(n) = now {
            self.open.get_or_create(&n).inc();
        }
    }

    /// Updates counters and the open-incident gauge from one journaled event.
    pub fn observe(&self, ev: &Event, inc: &Incident) {
        self.track_open(inc);
        match ev {
            Event::Opened { playbook_id, severity, mode, .. } => {
                self.opened
                    .get_or_create(&IncidentLabels {
                        playbook: playbook_id.clone(),
                        severity: severity.to_string(),
                        mode: mode.to_string(),
                    })
                    .inc();
            }
            Event::Acknowledged { .. } => {
                if let Some(a) = inc.acked_at {
                    self.time_to_ack.observe((a - inc.opened_at) as f64 / 1000.0);
                }
            }
            Event::Resolved { .. } => {
                if let Some(r) = inc.resolved_at {
                    self.time_to_resolve.observe((r - inc.opened_at) as f64 / 1000.0);
                }
            }
            Event::DeadlineMissed { what, .. } => {
                let what = what.split(':').next().unwrap_or(what).to_string();
                self.deadlines_missed.get_or_create(&DeadlineLabels { playbook: inc.playbook_id.clone(), what }).inc();
            }
            Event::Escalated { .. } => {
                self.escalations.inc();
            }
            Event::EffectResult { target, channel, ok, .. } => {
                let result = if *ok { "sent" } else { "failed" }.to_string();
                match channel {
                    Some(c) => {
                        self.customer_messages.get_or_create(&ChannelLabels { channel: c.clone(), result }).inc()
                    }
                    None => self.notifications.get_or_create(&EffectLabels { target: target.clone(), result }).inc(),
                };
            }
            _ => {}
        }
    }

    /// Refreshes the outbox gauges: breakers per target, depth, oldest wait,
    /// executions in the last minute, dead letters.
    pub(crate) fn refresh_outbox(
        &self,
        open: &std::collections::BTreeMap<String, bool>,
        executed: &std::collections::BTreeMap<String, u64>,
        store: &dyn Store,
        now_ms: i64,
    ) {
        for (target, open) in open {
            self.breaker_open.get_or_create(&TargetLabels { target: target.clone() }).set(i64::from(*open));
        }
        for (target, n) in executed {
            self.outbox_executed_last_minute
                .get_or_create(&TargetLabels { target: target.clone() })
                .set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
        self.outbox_depth.clear();
        self.outbox_oldest_age.clear();
        if let Ok(lanes) = store.outbox_lanes() {
            for l in lanes {
                let labels = TargetLabels { target: l.target.clone() };
                self.outbox_oldest_age.get_or_create(&labels).set(super::lag::oldest_age_secs(&l, now_ms));
                self.outbox_depth.get_or_create(&labels).set(l.depth);
            }
        }
        if let Ok(dead) = store.dead_letters() {
            self.dead_letters.set(dead.len() as i64);
        }
    }

    /// Sets the per-node gauges from the current membership.
    pub(crate) fn refresh_nodes(&self, nodes: &[super::node_status::NodeStatus]) {
        self.node_up.clear();
        self.node_leases.clear();
        for n in nodes {
            self.node_up.get_or_create(&NodeLabels { node: n.id.clone() }).set(i64::from(n.alive));
            for (kind, held) in [("intent", n.intents), ("timer", n.timers)] {
                let labels = NodeLeaseLabels { node: n.id.clone(), kind: kind.into() };
                self.node_leases.get_or_create(&labels).set(held);
            }
        }
    }

    /// Sets the plugin quarantine gauges from the host's current list.
    pub fn refresh_plugins(&self, plugins: &[crate::plugin::PluginStatus]) {
        self.plugin_quarantined.clear();
        self.plugin_quarantine_end.clear();
        for p in plugins {
            let labels = PluginNameLabels { plugin: p.name.clone() };
            self.plugin_quarantined.get_or_create(&labels).set(i64::from(p.quarantined));
            if let Some(end) = p.quarantine_ends_at {
                self.plugin_quarantine_end.get_or_create(&labels).set(end.timestamp());
            }
        }
    }

    /// Renders the text exposition format from memory: a scrape reads no
    /// journal.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let reg = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        let _ = prometheus_client::encoding::text::encode(&mut out, &reg);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playbook::types::{Category, Phase, Severity};
    use crate::store::{IncidentRow, SqliteStore, Tx};

    fn opened(id: &str, playbook: &str, mode: Mode) -> Incident {
        let ev = Event::Opened {
            playbook_id: playbook.into(),
            playbook_hash: "h".into(),
            mode,
            title: "t".into(),
            severity: Severity::Sev2,
            category: Category::Other,
            dedup_key: None,
            fields: Default::default(),
            labels: Default::default(),
            source: "test".into(),
            by: "test".into(),
        };
        Incident::open(id, &ev, 1).expect("an opened event opens an incident")
    }

    /// The gauge's samples as `(playbook, severity, phase) value` lines, sorted.
    fn open_samples(m: &Metrics) -> Vec<String> {
        let mut out: Vec<String> = m
            .render()
            .lines()
            .filter(|l| l.starts_with("crisis_incidents_open{"))
            .map(|l| l.replace("crisis_incidents_open", ""))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn the_open_gauge_follows_each_incident_and_forgets_empty_label_sets() {
        let m = Metrics::new();
        let mut a = opened("INC-1", "outage", Mode::Live);
        let b = opened("INC-2", "outage", Mode::Live);
        let ev = Event::Acknowledged { by: "ann".into() };
        m.track_open(&a);
        m.track_open(&b);
        m.track_open(&a);
        let first = a.phase;
        let phase = |p: Phase| p.to_string();
        assert_eq!(
            open_samples(&m),
            vec![format!("{{playbook=\"outage\",severity=\"sev2\",phase=\"{}\"}} 2", phase(first))],
            "an incident seen twice in one state is counted once"
        );
        a.phase = Phase::Act;
        a.severity = Severity::Sev1;
        m.observe(&ev, &a);
        assert_eq!(
            open_samples(&m),
            vec![
                "{playbook=\"outage\",severity=\"sev1\",phase=\"act\"} 1".to_string(),
                format!("{{playbook=\"outage\",severity=\"sev2\",phase=\"{}\"}} 1", phase(first)),
            ]
        );
        a.status = Status::Resolved;
        m.track_open(&a);
        assert_eq!(open_samples(&m).len(), 2, "a resolved incident is still open until closed");
        a.status = Status::Closed;
        m.track_open(&a);
        assert_eq!(
            open_samples(&m),
            vec![format!("{{playbook=\"outage\",severity=\"sev2\",phase=\"{}\"}} 1", phase(first))],
            "a closed incident leaves the gauge, and its label set with it"
        );
        m.track_open(&opened("DRL-x-1", "outage", Mode::Drill));
        assert_eq!(open_samples(&m).len(), 1, "drills are not counted");
    }

    #[test]
    fn the_open_gauge_is_rebuilt_from_the_journal_at_start() {
        let store = SqliteStore::in_memory().unwrap();
        let row = |id: &str, mode: &str, status: &str, phase: &str| IncidentRow {
            id: id.into(),
            playbook_id: "outage".into(),
            playbook_hash: "h".into(),
            mode: mode.into(),
            dedup_key: None,
            status: status.into(),
            phase: phase.into(),
            severity: "sev3".into(),
            title: "t".into(),
            opened_at: 1,
            updated_at: 1,
            state: serde_json::json!({}),
        };
        store
            .transaction(&mut |tx: &mut dyn Tx| {
                tx.put_incident(&row("INC-1", "live", "open", "act"))?;
                tx.put_incident(&row("INC-2", "live", "open", "act"))?;
                tx.put_incident(&row("INC-3", "live", "closed", "act"))?;
                tx.put_incident(&row("INC-4", "drill", "open", "act"))?;
                tx.put_incident(&row("INC-5", "live", "open", "report"))
            })
            .unwrap();
        let m = Metrics::new();
        m.init_open(&store).unwrap();
        assert_eq!(
            open_samples(&m),
            vec![
                "{playbook=\"outage\",severity=\"sev3\",phase=\"act\"} 2".to_string(),
                "{playbook=\"outage\",severity=\"sev3\",phase=\"report\"} 1".to_string(),
            ]
        );
        // The observer then moves an incident counted at start without counting it twice.
        let mut inc = opened("INC-5", "outage", Mode::Live);
        inc.severity = Severity::Sev3;
        inc.phase = Phase::Act;
        m.track_open(&inc);
        assert_eq!(open_samples(&m), vec!["{playbook=\"outage\",severity=\"sev3\",phase=\"act\"} 3".to_string()]);
    }
}
