//! Turns one playbook file into a [`Playbook`], reporting every problem with
//! its position: missing phases, bad values, unresolved references, `after`
//! cycles, unparsable `when`, cron, time zone and dedup-key templates.

use super::graph::find_cycle_in;
use super::model::{self, Str};
use super::refs::RefContext;
use super::spec::*;
use super::types::*;
use crate::diag::{Diagnostic, Source};
use crate::tomlfile::{self, Document};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

mod drill;
mod status;
mod surge;

/// Variables a `dedup_key` template may use (plus minijinja's global functions).
pub const DEDUP_VARIABLES: &[&str] = &["labels", "fields", "range", "dict", "namespace"];

/// Parses and validates one playbook source. Returns `None` if any error was found.
pub fn playbook(source: &Source, ctx: &RefContext, diags: &mut Vec<Diagnostic>) -> Option<Playbook> {
    playbook_and_id(source, ctx, diags).0
}

/// Like [`playbook`], also returning the raw `[playbook] id` and its span
/// (even when the file has other errors), from the same parse, so duplicate
/// ids across files are found without reading each file twice.
pub fn playbook_and_id(
    source: &Source,
    ctx: &RefContext,
    diags: &mut Vec<Diagnostic>,
) -> (Option<Playbook>, Option<(String, std::ops::Range<usize>)>) {
    playbook_with_warnings(source, ctx, diags, &mut Vec::new())
}

/// Like [`playbook_and_id`], also collecting warnings: things that are
/// allowed but probably not meant, which never make the playbook invalid.
pub(crate) fn playbook_with_warnings(
    source: &Source,
    ctx: &RefContext,
    diags: &mut Vec<Diagnostic>,
    warnings: &mut Vec<Diagnostic>,
) -> (Option<Playbook>, Option<(String, std::ops::Range<usize>)>) {
    let before = diags.len();
    if source.text.trim().is_empty() {
        diags.push(source.at(0..0, "empty playbook: a playbook needs a [playbook] table and the six phases [report], [activate], [assign], [[act]], [track], [outcome]"));
        return (None, None);
    }
    let doc = match tomlfile::parse(source) {
        Ok(d) => d,
        Err(e) => {
            diags.extend(e);
            return (None, None);
        }
    };
    let id = raw_id(&doc);
    let mut v = Validator { doc: &doc, ctx, diags, warnings };
    let pb = v.run();
    (if diags.len() > before { None } else { pb }, id)
}

fn raw_id(doc: &Document<'_>) -> Option<(String, std::ops::Range<usize>)> {
    let meta = doc.get("playbook")?;
    let toml::de::DeValue::Table(t) = meta.get_ref() else { return None };
    let (_, v) = t.iter().find(|(k, _)| k.get_ref() == "id")?;
    match v.get_ref() {
        toml::de::DeValue::String(s) => Some((s.to_string(), v.span())),
        _ => None,
    }
}

struct Validator<'a, 's> {
    doc: &'a Document<'s>,
    ctx: &'a RefContext,
    diags: &'a mut Vec<Diagnostic>,
    warnings: &'a mut Vec<Diagnostic>,
}

const SECTIONS: &[&str] = &["playbook", "trigger", "report", "activate", "assign", "act", "track", "outcome", "drill"];

impl Validator<'_, '_> {
    fn err(&mut self, at: &Str, msg: impl Into<String>) {
        let d = self.doc.source.at(at.span(), msg);
        self.diags.push(d);
    }

    fn warn(&mut self, at: &Str, msg: impl std::fmt::Display) {
        let d = self.doc.source.at(at.span(), format!("warning: {msg}"));
        self.warnings.push(d);
    }

    fn err_span(&mut self, span: std::ops::Range<usize>, msg: impl Into<String>) {
        let d = self.doc.source.at(span, msg);
        self.diags.push(d);
    }

    fn section<T: serde::de::DeserializeOwned>(&mut self, key: &str) -> Option<T> {
        let value = self.doc.get(key)?;
        self.doc.section(value, &format!("[{key}]"), self.diags)
    }

    fn run(&mut self) -> Option<Playbook> {
        for (key, span) in self.doc.keys() {
            if !SECTIONS.contains(&key.as_str()) {
                self.err_span(span, format!("unknown section `{key}`: expected one of {}", SECTIONS.join(", ")));
            }
        }
        let meta: Option<model::Meta> = self.section("playbook");
        let trigger: Option<model::Trigger> = self.section("trigger");
        let report: Option<model::ReportPhase> = self.section("report");
        let activate: Option<model::ActivatePhase> = self.section("activate");
        let assign: Option<model::AssignPhase> = self.section("assign");
        let act: Vec<Option<model::Step>> = match self.doc.get("act") {
            Some(v) => self.doc.array_of(v, "[[act]]", self.diags),
            None => Vec::new(),
        };
        let track: Option<model::TrackPhase> = self.section("track");
        let outcome: Option<model::OutcomePhase> = self.section("outcome");
        let drill: Option<model::DrillSection> = self.section("drill");

        let end = self.doc.source.text.len();
        for (key, what) in [
            ("playbook", "the [playbook] table (id, name, category, severity)"),
            ("report", "the [report] phase"),
            ("activate", "the [activate] phase"),
            ("assign", "the [assign] phase"),
            ("act", "at least one [[act]] step"),
            ("track", "the [track] phase"),
            ("outcome", "the [outcome] phase"),
        ] {
            if self.doc.get(key).is_none() {
                self.err_span(
                    end..end,
                    format!("missing {what}: every playbook names all six phases of the crisis plan"),
                );
            }
        }

        let meta = meta.and_then(|m| self.meta(m));
        let trigger = trigger.and_then(|t| self.trigger(t));
        let report = report.and_then(|r| self.report(r));
        let activate = activate.and_then(|a| self.activate(a));
        let assign = assign.and_then(|a| self.assign(a));
        // Each step's `[[act]]` header, so a step without an id can still be pointed at.
        let act_spans: Vec<std::ops::Range<usize>> = match self.doc.get("act").map(|v| v.get_ref()) {
            Some(toml::de::DeValue::Array(items)) => items.iter().map(|i| i.span()).collect(),
            _ => Vec::new(),
        };
        let mut raw_steps: Vec<model::Step> = Vec::new();
        let mut raw_spans = Vec::new();
        // Ids of steps whose table did not deserialize (a type error is already
        // reported): `after` may still name them without a second, false error.
        let mut broken_ids = Vec::new();
        for (i, s) in act.into_iter().enumerate() {
            match s {
                Some(s) => {
                    raw_steps.push(s);
                    raw_spans.push((i + 1, act_spans.get(i).cloned().unwrap_or(0..0)));
                }
                None => broken_ids.extend(self.raw_step_id(i)),
            }
        }
        let steps: Vec<StepSpec> =
            raw_steps.iter().cloned().zip(raw_spans).filter_map(|(s, (n, span))| self.step(s, n, span)).collect();
        self.step_graph(&raw_steps, &broken_ids);
        let track = track.and_then(|t| self.track(t));
        let outcome = outcome.and_then(|o| self.outcome(o));
        let step_ids: Vec<String> = steps.iter().map(|s| s.id.clone()).collect();
        let drill = drill.and_then(|d| self.drill(d, &step_ids));

        let (id, name, category, severity, summary) = meta?;
        Some(Playbook {
            id,
            name,
            category,
            severity,
            summary,
            path: self.doc.source.path.clone(),
            hash: hex::encode(Sha256::digest(self.doc.source.text.as_bytes())),
            trigger,
            report: report?,
            activate: activate?,
            assign: assign?,
            act: steps,
            track: track?,
            outcome: outcome?,
            drill,
        })
    }

    fn required(&mut self, v: Option<Str>, what: &str, section: &str) -> Option<Str> {
        if v.is_none() {
            let span = self.doc.key_span(section).unwrap_or(0..0);
            self.err_span(span, format!("[{section}] is missing `{what}`"));
        }
        v
    }

    fn parse<T: FromStr<Err = String>>(&mut self, v: &Str) -> Option<T> {
        match v.get_ref().parse::<T>() {
            Ok(x) => Some(x),
            Err(e) => {
                self.err(v, e);
                None
            }
        }
    }

    fn duration(&mut self, v: &Option<Str>) -> Option<Option<std::time::Duration>> {
        match v {
            None => Some(None),
            Some(s) => match parse_duration(s.get_ref()) {
                Ok(d) => Some(Some(d)),
                Err(e) => {
                    self.err(s, e);
                    None
                }
            },
        }
    }

    #[allow(clippy::type_complexity)]
    fn meta(&mut self, m: model::Meta) -> Option<(String, String, Category, Severity, String)> {
        let id = self.required(m.id, "id", "playbook");
        let name = self.required(m.name, "name", "playbook");
        let category = self.required(m.category, "category", "playbook");
        let severity = self.required(m.severity, "severity", "playbook");
        if let Some(id) = &id {
            let ok = !id.get_ref().is_empty()
                && id.get_ref().chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
            if !ok {
                self.err(id, format!("bad playbook id `{}`: use lowercase letters, digits, `-` and `_`", id.get_ref()));
            }
        }
        let category = category.and_then(|c| self.parse::<Category>(&c));
        let severity = severity.and_then(|s| self.parse::<Severity>(&s));
        Some((id?.into_inner(), name?.into_inner(), category?, severity?, m.summary.unwrap_or_default()))
    }

    fn trigger(&mut self, t: model::Trigger) -> Option<TriggerSpec> {
        let matches = &t.matches;
        if let Some(key) = &t.dedup_key {
            static ENV: std::sync::OnceLock<minijinja::Environment<'static>> = std::sync::OnceLock::new();
            let env = ENV.get_or_init(|| {
                let mut env = minijinja::Environment::new();
                env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
                env
            });
            match env.template_from_str(key.get_ref()) {
                Err(e) => {
                    self.err(key, format!("dedup_key template does not parse: {}; write it like \"{{{{ labels.service }}}}:{{{{ labels.region }}}}\"", e.detail().unwrap_or("syntax error")));
                }
                Ok(t) => {
                    let mut unknown: Vec<String> = t
                        .undeclared_variables(false)
                        .into_iter()
                        .filter(|v| !DEDUP_VARIABLES.contains(&v.as_str()))
                        .collect();
                    unknown.sort();
                    for v in unknown {
                        self.err(key, format!("dedup_key uses unknown variable `{v}`: use labels.NAME (alert labels) or fields.NAME (report fields), like \"{{{{ labels.service }}}}\""));
                    }
                    let mut unguaranteed: Vec<String> = t
                        .undeclared_variables(true)
                        .into_iter()
                        .filter_map(|v| v.strip_prefix("labels.").map(str::to_string))
                        .filter(|l| !matches.contains_key(l))
                        .collect();
                    unguaranteed.sort();
                    for label in unguaranteed {
                        self.warn(key, format_args!(
                            "dedup_key uses labels.{label}, which [trigger] match does not guarantee: an alert without it gets the Alertmanager fingerprint as its dedup key instead; add `{label}` to match or use a label every matching alert carries"
                        ));
                    }
                }
            }
        }
        let surge = match t.surge {
            Some(s) => Some(self.surge(s)?),
            None => None,
        };
        Some(TriggerSpec {
            matches: t.matches.into_iter().map(|(k, v)| (k, v.into_inner())).collect(),
            dedup_key: t.dedup_key.map(|k| k.into_inner()),
            surge,
        })
    }

    fn targets(&mut self, list: &[Str], what: &str) -> Vec<String> {
        if !what.starts_with("step ") {
            self.no_status_targets(list, what);
        }
        for t in list {
            if !self.ctx.targets.contains(t.get_ref()) {
                let known = join_or_none(&self.ctx.targets);
                self.err(t, format!("unknown notification target `{}` in {what}: declare [targets.{}] in crisis.toml (known: {known})", t.get_ref(), t.get_ref()));
            }
        }
        list.iter().map(|t| t.get_ref().clone()).collect()
    }

    fn who(&mut self, v: &Str) -> Option<Who> {
        let who = self.parse::<Who>(v)?;
        let (set, kind, hint) = match &who {
            Who::Rota(n) => (&self.ctx.rotas, n, "a [rotas.NAME] table in the roster"),
            Who::Team(n) => (&self.ctx.teams, n, "a [teams.NAME] table in the roster"),
            Who::Person(n) => (&self.ctx.people, n, "a [people.NAME] table in the roster"),
            Who::Role(n) => {
                if INCIDENT_ROLES.contains(&n.as_str()) || self.ctx.roles.contains(n) {
                    return Some(who);
                }
                let msg = format!(
                    "unknown role `{n}`: use an incident role ({}) or give a person `roles = [\"{n}\"]` in the roster",
                    INCIDENT_ROLES.join(", ")
                );
                self.err(v, msg);
                return None;
            }
        };
        if set.contains(kind) {
            Some(who)
        } else {
            let known = join_or_none(set);
            self.err(v, format!("`{}` does not resolve: add {hint} (known: {known})", v.get_ref()));
            None
        }
    }

    fn opt_who(&mut self, v: &Option<Str>) -> Option<Option<Who>> {
        match v {
            None => Some(None),
            Some(s) => self.who(s).map(Some),
        }
    }

    fn report(&mut self, r: model::ReportPhase) -> Option<ReportSpec> {
        let require: Vec<_> = r.require.iter().map(|f| self.parse::<ReportField>(f)).collect();
        let notify = self.targets(&r.notify, "[report] notify");
        let within = self.duration(&r.within)?;
        Some(ReportSpec {
            require: require.into_iter().collect::<Option<_>>()?,
            notify,
            within: within.unwrap_or(DEFAULT_REPORT_WITHIN),
        })
    }

    fn activate(&mut self, a: model::ActivatePhase) -> Option<ActivateSpec> {
        let approval = self.opt_who(&a.approval);
        let channels = self.targets(&a.channels, "[activate] channels");
        let within = self.duration(&a.within);
        Some(ActivateSpec { approval: approval?, channels, within: within? })
    }

    fn assign(&mut self, a: model::AssignPhase) -> Option<AssignSpec> {
        let commander = self.required(a.commander.clone(), "commander", "assign");
        let commander = commander.and_then(|c| self.who(&c));
        let liaison = self.opt_who(&a.liaison);
        let scribe = self.opt_who(&a.scribe);
        let ack_within = self.duration(&a.ack_within);
        let mut escalate = Vec::new();
        let mut ok = true;
        // (level number, its `after`, the parsed delay) for the order check below.
        let mut delays = Vec::new();
        for (i, e) in a.escalate.iter().enumerate() {
            let after = self.duration(&Some(e.after.clone())).flatten();
            let to = self.who(&e.to);
            if let Some(after) = after {
                delays.push((i + 1, &e.after, after));
            }
            match (after, to) {
                (Some(after), Some(to)) => {
                    escalate.push(EscalationSpec { after, to, repeat: e.repeat.unwrap_or(1).max(1) })
                }
                _ => ok = false,
            }
        }
        for pair in delays.windows(2) {
            let ((_, prev, prev_d), (n, at, d)) = (pair[0], pair[1]);
            if d <= prev_d {
                // Point at the later level: its delay must grow.
                let msg = format!(
                    "escalation level #{n} (after `{}`) must come later than the level before it (after `{}`): list levels in increasing `after` order",
                    at.get_ref(),
                    prev.get_ref()
                );
                self.err(at, msg);
                ok = false;
            }
        }
        if !ok {
            return None;
        }
        Some(AssignSpec {
            commander: commander?,
            liaison: liaison?,
            scribe: scribe?,
            ack_within: ack_within?,
            escalate,
        })
    }

    /// Validates step number `n` (1-based) whose `[[act]]` header is at `header`.
    fn step(&mut self, s: model::Step, n: usize, header: std::ops::Range<usize>) -> Option<StepSpec> {
        let Some(id) = s.id.clone() else {
            self.err_span(
                header,
                format!(
                    "[[act]] step #{n} is missing `id`: give every step a unique id, like id = \"notify-customers\""
                ),
            );
            return None;
        };
        let kind = match &s.kind {
            Some(k) => self.parse::<StepKind>(k),
            None => {
                self.err(
                    &id,
                    format!("step `{}` is missing `kind` (one of {})", id.get_ref(), StepKind::ALL.join(", ")),
                );
                None
            }
        };
        let owner = self.opt_who(&s.owner);
        let within = self.duration(&s.within);
        let approval = self.opt_who(&s.approval);
        let notify = self.targets(&s.notify, &format!("step `{}` notify", id.get_ref()));
        let channel = s.channel.as_ref().and_then(|c| self.parse::<Channel>(c));
        if let Some(w) = &s.when {
            self.when(w);
        }
        let kind = kind?;
        let status = self.step_status(&s, &id, kind);
        let mut ok = status.is_ok();
        let world_for_kind = match kind {
            StepKind::Appease => Some(World::Appeasement),
            StepKind::Notify => Some(World::Notifier),
            _ => None,
        };
        if let Some(p) = &s.plugin {
            match (self.ctx.plugins.get(p.get_ref()), world_for_kind) {
                (None, _) => {
                    let known = join_or_none(&self.ctx.plugins.keys().cloned().collect());
                    self.err(p, format!("unknown plugin `{}`: use a built-in or declare [plugins.{}] in crisis.toml (known: {known})", p.get_ref(), p.get_ref()));
                    ok = false;
                }
                (Some(_), None) => {
                    self.err(
                        p,
                        format!("a `{kind}` step runs no plugin: remove `plugin` or make it an appease or notify step"),
                    );
                    ok = false;
                }
                (Some(w), Some(need)) if *w != need => {
                    self.err(
                        p,
                        format!(
                            "plugin `{}` implements the {w} world, but {} `{kind}` step needs {} {need} plugin",
                            p.get_ref(),
                            article(kind.as_str()),
                            article(need.as_str())
                        ),
                    );
                    ok = false;
                }
                _ => {}
            }
        }
        match kind {
            StepKind::Appease if s.channel.is_none() => {
                self.err(
                    &id,
                    format!("appease step `{}` needs `channel` (one of {})", id.get_ref(), Channel::ALL.join(", ")),
                );
                ok = false;
            }
            StepKind::Notify if s.notify.is_empty() => {
                self.err(&id, format!("notify step `{}` needs `notify = [\"TARGET\", ...]`", id.get_ref()));
                ok = false;
            }
            StepKind::Approval if s.approval.is_none() => {
                self.err(
                    &id,
                    format!("approval step `{}` needs `approval = \"role:NAME\"` (who approves)", id.get_ref()),
                );
                ok = false;
            }
            _ => {}
        }
        if let Some(l) = &s.limits
            && (l.max_messages == Some(0) || l.per_minute == Some(0))
        {
            self.err(&id, format!("step `{}` limits must be positive", id.get_ref()));
            ok = false;
        }
        if !ok {
            return None;
        }
        Some(StepSpec {
            id: id.into_inner(),
            kind,
            owner: owner?,
            tasks: s.tasks,
            within: within?,
            after: s.after.iter().map(|a| a.get_ref().clone()).collect(),
            when: s.when.map(|w| w.into_inner()),
            plugin: s
                .plugin
                .map(|p| p.into_inner())
                .or_else(|| (kind == StepKind::Appease).then(|| "appease-script".to_string())),
            notify,
            message: s.message,
            audience: s.audience.map(|a| AudienceSpec { segment: a.segment, tier: a.tier }),
            channel,
            limits: s
                .limits
                .map(|l| LimitsSpec { max_messages: l.max_messages, per_minute: l.per_minute })
                .unwrap_or_default(),
            approval: approval?,
            status: status.ok()?,
        })
    }

    fn when(&mut self, w: &Str) {
        match crate::when::variables(w.get_ref()) {
            Ok(vars) => {
                for var in vars {
                    if !crate::when::VARIABLES.contains(&var.as_str()) {
                        self.err(
                            w,
                            format!(
                                "`when` uses unknown variable `{var}`: available are {}",
                                crate::when::VARIABLES.join(", ")
                            ),
                        );
                    }
                }
            }
            Err(crate::when::WhenError { msg, pos }) => {
                let (line, col) = pos.unwrap_or((1, 0));
                // Point inside the string when the expression is on one line.
                let offset = if line <= 1 {
                    (w.span().start + 1 + col.max(0) as usize).min(w.span().end)
                } else {
                    w.span().start
                };
                self.err_span(
                    offset..offset,
                    format!("`when` is not a valid CEL expression: {msg}; write it like \"severity <= sev2\""),
                );
            }
        }
    }

    /// Checks `after` references, duplicate step ids and cycles among all steps.
    fn step_graph(&mut self, raw: &[model::Step], broken_ids: &[String]) {
        let mut seen: BTreeMap<&str, &Str> = BTreeMap::new();
        // Only the first step with a given id takes part in the cycle check.
        let mut first_defs: Vec<&model::Step> = Vec::new();
        for s in raw {
            if let Some(id) = &s.id {
                if let Some(first) = seen.get(id.get_ref().as_str()) {
                    let (l, c) = self.doc.source.position(first.span().start);
                    self.err(
                        id,
                        format!("duplicate step id `{}` (first defined at line {l}, column {c})", id.get_ref()),
                    );
                } else {
                    seen.insert(id.get_ref(), id);
                    first_defs.push(s);
                }
            }
        }
        for s in raw {
            for a in &s.after {
                if broken_ids.contains(a.get_ref()) {
                    continue;
                }
                if !seen.contains_key(a.get_ref().as_str()) {
                    let known = join_or_none(&seen.keys().map(|k| k.to_string()).collect());
                    self.err(a, format!("`after` names unknown step `{}` (steps: {known})", a.get_ref()));
                } else if Some(a.get_ref()) == s.id.as_ref().map(|i| i.get_ref()) {
                    self.err(a, format!("step `{}` cannot come after itself", a.get_ref()));
                }
            }
        }
        // Cycles are looked for among all steps with an id, not only the ones
        // that validated: a typo in one step must not hide a cycle through it.
        // Self-references are reported above and left out here.
        let mut graph: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for s in &first_defs {
            if let Some(id) = &s.id {
                let deps = s.after.iter().map(|a| a.get_ref().as_str()).filter(|a| a != id.get_ref());
                graph.entry(id.get_ref().as_str()).or_default().extend(deps);
            }
        }
        if let Some(cycle) = find_cycle_in(&graph) {
            let (first, next) = (&cycle[0], &cycle[1]);
            if let Some(step) = first_defs.iter().find(|s| {
                s.id.as_ref().map(|i| i.get_ref()) == Some(first) && s.after.iter().any(|a| a.get_ref() == next)
            }) {
                let at = step.after.iter().find(|a| a.get_ref() == next).cloned().or(step.id.clone());
                if let Some(at) = at {
                    self.err(&at, format!("`after` forms a cycle: {}", cycle.join(" -> ")));
                }
            }
        }
    }

    /// The `id` string of the `index`-th `[[act]]` table, read from the raw tree.
    fn raw_step_id(&self, index: usize) -> Option<String> {
        let toml::de::DeValue::Array(items) = self.doc.get("act")?.get_ref() else { return None };
        let toml::de::DeValue::Table(t) = items.get(index)?.get_ref() else { return None };
        let (_, v) = t.iter().find(|(k, _)| k.get_ref() == "id")?;
        match v.get_ref() {
            toml::de::DeValue::String(s) => Some(s.to_string()),
            _ => None,
        }
    }

    fn track(&mut self, t: model::TrackPhase) -> Option<TrackSpec> {
        let notify = self.targets(&t.notify, "[track] notify");
        let update_every = self.duration(&t.update_every);
        let stale_after = self.duration(&t.stale_after);
        Some(TrackSpec { update_every: update_every?, notify, stale_after: stale_after? })
    }

    fn outcome(&mut self, o: model::OutcomePhase) -> Option<OutcomeSpec> {
        let require: Vec<_> = o.require.iter().map(|f| self.parse::<OutcomeField>(f)).collect();
        let notify = self.targets(&o.notify, "[outcome] notify");
        let within = self.duration(&o.within);
        Some(OutcomeSpec { require: require.into_iter().collect::<Option<_>>()?, notify, within: within? })
    }
}

/// "a" or "an", for messages that name a step kind or plugin world.
fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" }
}

fn join_or_none(set: &BTreeSet<String>) -> String {
    if set.is_empty() { "none".to_string() } else { set.iter().cloned().collect::<Vec<_>>().join(", ") }
}
