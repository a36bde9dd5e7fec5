//! Conversions between the plain API types and the 0.1.0 generated types.

use super::api::{self, *};
use super::bindings::v0_1_0::crisis::plugin::types as t;
use super::bindings::v0_1_0::exports::crisis::plugin::{appease as a, notify as n, simulate as s};
use super::error::PluginError;

pub(crate) fn mode(m: RunMode) -> t::RunMode {
    match m {
        RunMode::Live => t::RunMode::Live,
        RunMode::Drill => t::RunMode::Drill,
    }
}

pub(crate) fn severity(s: Severity) -> t::Severity {
    match s {
        Severity::Sev1 => t::Severity::Sev1,
        Severity::Sev2 => t::Severity::Sev2,
        Severity::Sev3 => t::Severity::Sev3,
        Severity::Sev4 => t::Severity::Sev4,
        Severity::Sev5 => t::Severity::Sev5,
    }
}

pub(crate) fn severity_back(s: t::Severity) -> Severity {
    match s {
        t::Severity::Sev1 => Severity::Sev1,
        t::Severity::Sev2 => Severity::Sev2,
        t::Severity::Sev3 => Severity::Sev3,
        t::Severity::Sev4 => Severity::Sev4,
        t::Severity::Sev5 => Severity::Sev5,
    }
}

fn category(c: Category) -> t::Category {
    match c {
        Category::ProductQuality => t::Category::ProductQuality,
        Category::ServiceAttitude => t::Category::ServiceAttitude,
        Category::ServiceProcess => t::Category::ServiceProcess,
        Category::Price => t::Category::Price,
        Category::Other => t::Category::Other,
    }
}

pub(crate) fn invocation(i: &Invocation, budget_ms: u32) -> t::Invocation {
    let now = if i.now_unix_ms == 0 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
    } else {
        i.now_unix_ms
    };
    t::Invocation {
        invocation_id: i.invocation_id.clone(),
        incident_id: i.incident_id.clone(),
        mode: mode(i.mode),
        budget_ms,
        now_unix_ms: now,
    }
}

pub(crate) fn incident(i: &IncidentInfo) -> t::Incident {
    t::Incident {
        id: i.id.clone(),
        title: i.title.clone(),
        playbook_id: i.playbook_id.clone(),
        severity: severity(i.severity),
        category: category(i.category),
        phase: i.phase.clone(),
        summary: i.summary.clone(),
        labels: i.labels.clone(),
    }
}

pub(crate) fn notification(nt: &Notification) -> n::Notification {
    n::Notification {
        incident: incident(&nt.incident),
        target: nt.target.clone(),
        subject: nt.subject.clone(),
        body_text: nt.body_text.clone(),
        params: nt.params.clone(),
    }
}

pub(crate) fn receipt(r: n::Receipt) -> Receipt {
    Receipt { provider_id: r.provider_id, http_status: r.http_status, detail: r.detail }
}

fn channel(c: Channel) -> a::Channel {
    match c {
        Channel::Phone => a::Channel::Phone,
        Channel::Sms => a::Channel::Sms,
        Channel::Email => a::Channel::Email,
        Channel::Social => a::Channel::Social,
    }
}

fn channel_back(c: a::Channel) -> Channel {
    match c {
        a::Channel::Phone => Channel::Phone,
        a::Channel::Sms => Channel::Sms,
        a::Channel::Email => Channel::Email,
        a::Channel::Social => Channel::Social,
    }
}

pub(crate) fn customer(c: &CustomerRef) -> a::Customer {
    a::Customer {
        id: c.id.clone(),
        segment: c.segment.clone(),
        tier: c.tier.clone(),
        locale: c.locale.clone(),
        channel: channel(c.channel),
    }
}

pub(crate) fn message(m: a::Message) -> ComposedMessage {
    ComposedMessage {
        channel: channel_back(m.channel),
        locale: m.locale,
        subject: m.subject,
        body: m.body,
        compensation: m.compensation,
    }
}

fn inject_kind(k: s::InjectKind) -> InjectKind {
    match k {
        s::InjectKind::Alert => InjectKind::Alert,
        s::InjectKind::ComplaintBurst => InjectKind::ComplaintBurst,
        s::InjectKind::DuplicateAlert => InjectKind::DuplicateAlert,
        s::InjectKind::NoAck => InjectKind::NoAck,
        s::InjectKind::Ack => InjectKind::Ack,
        s::InjectKind::StepFailure => InjectKind::StepFailure,
        s::InjectKind::StepDone => InjectKind::StepDone,
        s::InjectKind::Outcome => InjectKind::Outcome,
    }
}

pub(crate) fn scenario(sc: s::Scenario) -> Scenario {
    Scenario {
        title: sc.title,
        severity: severity_back(sc.severity),
        injects: sc
            .injects
            .into_iter()
            .map(|i| Inject {
                at_offset_ms: i.at_offset_ms,
                kind: inject_kind(i.kind),
                target: i.target,
                payload_json: i.payload_json,
            })
            .collect(),
    }
}

pub(crate) fn criterion(c: s::Criterion) -> Criterion {
    Criterion { name: c.name, points: c.points, max_points: c.max_points, note: c.note }
}

pub(crate) fn plugin_error(e: t::PluginError) -> PluginError {
    match e {
        t::PluginError::Config(m) => PluginError::Config(m),
        t::PluginError::Denied(m) => PluginError::Denied(m),
        t::PluginError::Transient(m) => PluginError::Transient(m),
        t::PluginError::Permanent(m) => PluginError::Permanent(m),
    }
}

pub(crate) fn description(i: t::PluginInfo) -> api::PluginDescription {
    api::PluginDescription {
        name: i.name,
        version: i.version,
        description: i.description,
        allowed_hosts: i.allowed_hosts,
        config_keys: i.config_keys,
    }
}
