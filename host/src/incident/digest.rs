//! Storm control: per-target digests instead of floods.
//!
//! A target with `digest = { after = N, within = "30s" }` has windows: the
//! first foldable notice to it opens a window of `within`; the first `N`
//! foldable notices in the window go out one by one; the rest are folded into
//! one digest, an ordinary outbox intent due when the window ends, so the
//! outbox sends it exactly once across crashes and restarts. Each folded
//! notice is journaled on its incident as included in that digest.
//!
//! Never folded, whatever the rule: pages to people (commanders, roles,
//! escalation levels), customer messages and digests themselves. Which
//! notices are foldable is decided from their kind and purpose, not their text.
//!
//! Window state and the digest's members live in the store (in the same
//! transaction as the notice), so a kill -9 loses nothing: a digest whose
//! window ended while the daemon was down is due, and sent, at start.
//!
//! A notice folds only while `now` (taken inside the writing transaction) is
//! before the window's end, and the digest is claimed only from its end on, so
//! no member is added after the digest's text was built for sending.

use super::Engine;
use super::ctx::Ctx;
use super::effects::{EffectKind, IncidentSummary, IntentPayload};
use super::events::Event;
use crate::config::DigestRule;
use crate::playbook::types::{Purpose, Severity};
use crate::store::IntentRow;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Key prefix of a target's window state, followed by `mode:target`.
const WINDOW_KEY: &str = "digest-window:";
/// Key prefix of a digest's members, followed by `DIGEST-ID:NNNNNNNN`.
const MEMBER_KEY: &str = "digest-member:";
/// Id prefix of digests; their number comes from the store's id counters.
const DIGEST_PREFIX: &str = "DIG";
/// Most id ranges listed per group before "and N more".
const MAX_ID_RANGES: usize = 40;

/// Whether a notice may be folded into a digest. Pages to people (which
/// carry recipients), escalations and customer messages always go out alone.
pub(crate) fn foldable(kind: EffectKind, purpose: &Purpose, recipients: &[String]) -> bool {
    if kind != EffectKind::Notify || !recipients.is_empty() {
        return false;
    }
    match purpose {
        Purpose::Page
        | Purpose::Escalate
        | Purpose::Digest
        | Purpose::FirstResponse
        | Purpose::FollowUp
        | Purpose::ComplaintNotice
        | Purpose::ComplaintOutcome => false,
        Purpose::Report
        | Purpose::Activate
        | Purpose::Deadline
        | Purpose::Track
        | Purpose::Outcome
        | Purpose::Step(_) => true,
    }
}

/// One target's current window (per mode), kept in the store.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Window {
    /// Unix ms when the window opened (its first foldable notice).
    pub(crate) started_at: i64,
    /// Unix ms when it ends; a notice at or after this opens a new window.
    pub(crate) ends_at: i64,
    /// Notices sent one by one in this window.
    pub(crate) singles: u32,
    /// The digest carrying this window's folded notices, once one was folded.
    pub(crate) digest: Option<String>,
    /// Notices folded in this window.
    pub(crate) folded: u32,
    /// Windows opened so far, for `crisis status`.
    #[serde(default)]
    pub(crate) windows_total: u64,
    /// Digests opened over every window, for `crisis status`.
    #[serde(default)]
    pub(crate) digests_total: u64,
    /// Notices folded over every window, for `crisis status`.
    #[serde(default)]
    pub(crate) folded_total: u64,
}

/// What to do with one foldable notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Send it on its own.
    Send,
    /// Fold it into this window's digest (`None`: open the window's digest first),
    /// which is due at `due_at`.
    Fold { into: Option<String>, due_at: i64 },
}

impl Window {
    /// Applies the rule to one foldable notice at `now` and updates the window.
    pub(crate) fn decide(&mut self, rule: DigestRule, now: i64) -> Decision {
        if now >= self.ends_at {
            *self = Window {
                started_at: now,
                ends_at: now + rule.within.as_millis() as i64,
                windows_total: self.windows_total + 1,
                digests_total: self.digests_total,
                folded_total: self.folded_total,
                ..Window::default()
            };
        }
        if self.singles < rule.after {
            self.singles += 1;
            return Decision::Send;
        }
        self.folded += 1;
        self.folded_total += 1;
        Decision::Fold { into: self.digest.clone(), due_at: self.ends_at }
    }

    /// Records the digest opened for this window.
    pub(crate) fn open_digest(&mut self, id: &str) {
        self.digest = Some(id.to_string());
        self.digests_total += 1;
    }

    /// Ends the window at `now`, so the next notice opens a fresh one.
    pub(crate) fn close(&mut self, now: i64) {
        self.ends_at = self.ends_at.min(now);
    }
}

/// A notice folded into a digest: what the digest says of it. Never
/// contact details: ids, playbook, severity and the commander's roster id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Member {
    pub(crate) incident: String,
    pub(crate) playbook: String,
    pub(crate) severity: Severity,
    pub(crate) purpose: Purpose,
    pub(crate) commander: Option<String>,
    /// Length of the window it was folded in, in ms.
    pub(crate) window_ms: i64,
}

/// The `kv` key prefix of digest `id`'s members. They are kept until the
/// digest's result is journaled (a retry rebuilds its text from them), then
/// deleted with that result.
pub(super) fn member_prefix(id: &str) -> String {
    format!("{MEMBER_KEY}{id}:")
}

/// The digest's subject line.
pub(crate) fn subject(id: &str, target: &str, members: &[Member], drill: bool) -> String {
    let drill = if drill { "[DRILL] " } else { "" };
    let window = members.first().map_or(0, |m| m.window_ms);
    format!("{drill}[digest] {id}: {} notices to `{target}` in the last {}", members.len(), human_ms(window))
}

/// The digest's text: one line per playbook and severity, worst first, e.g.
/// `37 incidents of service-outage (sev2) in the last 30s: INC-12…INC-48; commanders: ana, ben`.
pub(crate) fn summary(members: &[Member]) -> String {
    let window = members.first().map_or(0, |m| m.window_ms);
    let mut groups: BTreeMap<(Severity, &str), Vec<&Member>> = BTreeMap::new();
    for m in members {
        groups.entry((m.severity, m.playbook.as_str())).or_default().push(m);
    }
    let mut lines = Vec::new();
    for ((sev, playbook), ms) in groups {
        let incidents: BTreeSet<&str> = ms.iter().map(|m| m.incident.as_str()).collect();
        let purposes: BTreeSet<String> = ms.iter().map(|m| m.purpose.to_string()).collect();
        let commanders: BTreeSet<&str> = ms.iter().filter_map(|m| m.commander.as_deref()).collect();
        let noun = if incidents.len() == 1 { "incident" } else { "incidents" };
        let mut line = format!(
            "{} new {noun} of {playbook} ({sev}) in the last {}: {}",
            incidents.len(),
            human_ms(window),
            compact_ids(incidents.iter().copied())
        );
        if ms.len() > incidents.len() {
            line.push_str(&format!(" ({} notices)", ms.len()));
        }
        line.push_str(&format!("; notices: {}", purposes.into_iter().collect::<Vec<_>>().join(", ")));
        if !commanders.is_empty() {
            line.push_str(&format!("; commanders: {}", commanders.into_iter().collect::<Vec<_>>().join(", ")));
        }
        lines.push(line);
    }
    lines.join("\n")
}

fn human_ms(ms: i64) -> String {
    humantime::format_duration(std::time::Duration::from_millis(ms.max(0) as u64)).to_string()
}

/// Ids as compact ranges: `INC-12…INC-15, INC-17, DRL-3`. Ids of the form
/// `PREFIX-N` are grouped by prefix and numbered runs collapsed; others are listed as they are.
pub(crate) fn compact_ids<'a>(ids: impl IntoIterator<Item = &'a str>) -> String {
    let mut numbered: BTreeMap<&str, BTreeSet<u64>> = BTreeMap::new();
    let mut other: BTreeSet<&str> = BTreeSet::new();
    for id in ids {
        match id.rsplit_once('-').and_then(|(p, n)| Some((p, n.parse::<u64>().ok()?))) {
            Some((p, n)) => {
                numbered.entry(p).or_default().insert(n);
            }
            None => {
                other.insert(id);
            }
        }
    }
    let mut parts = Vec::new();
    for (prefix, nums) in numbered {
        let mut run: Option<(u64, u64)> = None;
        let mut push = |(a, b): (u64, u64)| match b - a {
            0 => parts.push(format!("{prefix}-{a}")),
            1 => parts.push(format!("{prefix}-{a}, {prefix}-{b}")),
            _ => parts.push(format!("{prefix}-{a}…{prefix}-{b}")),
        };
        for n in nums {
            run = match run {
                Some((a, b)) if n == b + 1 => Some((a, n)),
                Some(r) => {
                    push(r);
                    Some((n, n))
                }
                None => Some((n, n)),
            };
        }
        if let Some(r) = run {
            push(r);
        }
    }
    parts.extend(other.into_iter().map(str::to_string));
    if parts.len() > MAX_ID_RANGES {
        let more = parts.len() - MAX_ID_RANGES;
        parts.truncate(MAX_ID_RANGES);
        parts.push(format!("and {more} more"));
    }
    parts.join(", ")
}

/// Per-target digest counters for `crisis status`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DigestCounters {
    /// The notification target.
    pub target: String,
    /// `live` or `drill`.
    pub mode: String,
    /// Windows opened since the target's first foldable notice.
    pub windows: u64,
    /// Digests opened since the target's first window.
    pub digests: u64,
    /// Notices folded into them.
    pub folded: u64,
    /// The digest of the current window, if notices are being folded now.
    pub open_digest: Option<String>,
    /// Unix ms when the current window ends.
    pub window_ends_at: i64,
}

impl Engine {
    /// Every target's digest counters (targets that never had a window are absent).
    pub fn digest_counters(&self) -> anyhow::Result<Vec<DigestCounters>> {
        let now = self.now();
        let mut out = Vec::new();
        for (key, value) in self.store().kv_prefix(WINDOW_KEY)? {
            let Some((mode, target)) = key.strip_prefix(WINDOW_KEY).and_then(|k| k.split_once(':')) else { continue };
            let Ok(w) = serde_json::from_str::<Window>(&value) else { continue };
            out.push(DigestCounters {
                target: target.to_string(),
                mode: mode.to_string(),
                windows: w.windows_total,
                digests: w.digests_total,
                folded: w.folded_total,
                open_digest: w.digest.clone().filter(|_| now < w.ends_at),
                window_ends_at: w.ends_at,
            });
        }
        Ok(out)
    }

    /// Writes the digest's subject and text from its members into a claimed
    /// payload (the stored text is only the first member's).
    pub(super) fn fill_digest(&self, id: &str, p: &mut IntentPayload) -> anyhow::Result<()> {
        let mut members = Vec::new();
        for (key, value) in self.store().kv_prefix(&member_prefix(id))? {
            let m: Member =
                serde_json::from_str(&value).map_err(|e| anyhow::anyhow!("digest member {key} is unreadable: {e}"))?;
            members.push(m);
        }
        // Commanders are usually assigned after the notices that fold (report,
        // activation): name whoever commands each incident now.
        let mut commanders: BTreeMap<String, Option<String>> = BTreeMap::new();
        for m in &mut members {
            if m.commander.is_some() {
                continue;
            }
            if !commanders.contains_key(&m.incident) {
                let row = self.store().incident(&m.incident)?;
                let inc = row.and_then(|r| serde_json::from_value::<super::state::Incident>(r.state).ok());
                let now = inc.and_then(|i| i.roles.get("commander").cloned());
                commanders.insert(m.incident.clone(), now);
            }
            m.commander = commanders.get(&m.incident).cloned().flatten();
        }
        if members.is_empty() {
            anyhow::bail!("digest {id} has no members in the store");
        }
        p.subject = subject(id, &p.target, &members, p.mode == crate::playbook::types::Mode::Drill);
        p.body = summary(&members);
        Ok(())
    }
}

impl Ctx<'_> {
    /// Folds a notice into its target's digest when the target's rule says
    /// so; returns the digest it was folded into, `None` if it is to be sent.
    pub(super) fn fold(
        &mut self,
        kind: EffectKind,
        purpose: &Purpose,
        target: &str,
        recipients: &[String],
    ) -> anyhow::Result<Option<String>> {
        let Some(t) = self.generation_.config.targets.get(target) else { return Ok(None) };
        let Some(rule) = t.digest else { return Ok(None) };
        if !foldable(kind, purpose, recipients) {
            return Ok(None);
        }
        let notifier = t.plugin.clone();
        let key = format!("{WINDOW_KEY}{}:{target}", self.inc.mode);
        let mut w: Window = match self.tx.kv_get(&key)? {
            Some(v) => serde_json::from_str(&v).unwrap_or_else(|e| {
                tracing::warn!(target, "digest window state is unreadable, starting a new window: {e}");
                Window::default()
            }),
            None => Window::default(),
        };
        // A digest that already ran takes no more members, even if the clock went back.
        if let Some(d) = &w.digest
            && self.now < w.ends_at
            && self.tx.intent(d)?.is_none_or(|i| i.attempts > 0 || i.result.is_some())
        {
            w.close(self.now);
        }
        let decision = w.decide(rule, self.now);
        let Decision::Fold { into, due_at } = decision else {
            self.tx.kv_set(&key, &serde_json::to_string(&w)?)?;
            return Ok(None);
        };
        let member = Member {
            incident: self.inc.id.clone(),
            playbook: self.inc.playbook_id.clone(),
            severity: self.inc.severity,
            purpose: purpose.clone(),
            commander: self.inc.roles.get("commander").cloned(),
            window_ms: w.ends_at - w.started_at,
        };
        let id = match into {
            Some(id) => id,
            None => {
                let id = format!("{DIGEST_PREFIX}-{}", self.tx.next_incident_number(DIGEST_PREFIX)?);
                w.open_digest(&id);
                self.record_digest(&id, target, &notifier, due_at, &member)?;
                id
            }
        };
        let n = w.folded;
        self.tx.kv_set(&format!("{}{n:08}", member_prefix(&id)), &serde_json::to_string(&member)?)?;
        self.tx.kv_set(&key, &serde_json::to_string(&w)?)?;
        Ok(Some(id))
    }

    /// Records the digest's intent, due at the window's end, on the incident
    /// whose notice opened it (its result is journaled there).
    fn record_digest(
        &mut self,
        id: &str,
        target: &str,
        notifier: &str,
        due_at: i64,
        first: &Member,
    ) -> anyhow::Result<()> {
        let members = std::slice::from_ref(first);
        let payload = IntentPayload {
            kind: EffectKind::Notify,
            purpose: Purpose::Digest,
            target: target.to_string(),
            notifier: notifier.to_string(),
            composer: None,
            mode: self.inc.mode,
            incident: IncidentSummary {
                id: id.to_string(),
                title: format!("digest of notices to {target}"),
                playbook_id: self.inc.playbook_id.clone(),
                severity: self.inc.severity,
                category: self.inc.category,
                phase: self.inc.phase,
                summary: String::new(),
            },
            subject: subject(id, target, members, self.inc.is_drill()),
            body: summary(members),
            recipients: Vec::new(),
            customer: None,
            status: None,
        };
        self.tx.add_intent(&IntentRow {
            invocation_id: id.to_string(),
            incident_id: self.inc.id.clone(),
            created_at: self.now,
            not_before: due_at,
            payload: serde_json::to_value(&payload)?,
            attempts: 0,
            result: None,
            reclaimed_from: None,
        })?;
        self.emit(Event::IntentRecorded {
            invocation_id: id.to_string(),
            purpose: Purpose::Digest,
            target: target.to_string(),
            channel: None,
            customer: None,
        })
    }
}

#[cfg(test)]
#[path = "digest_tests.rs"]
mod tests;
