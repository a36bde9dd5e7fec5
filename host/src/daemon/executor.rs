//! The engine's side-effect executor on top of the plugin host.
//!
//! It lives in the daemon (the composition root) because it adapts the
//! engine's intents to plugin calls: the plugin host itself knows nothing of
//! incidents.
//!
//! Notifications go to the target's notifier plugin (or the `log` target).
//! Customer messages are composed by the step's appeasement plugin for one
//! customer (who it sees by id, segment, tier, locale and channel only), then
//! delivered through the delivery target's notifier with the customer's
//! address, which is looked up here at the last moment and scrubbed from
//! every result the journal keeps.
//!
//! Rule: nothing a plugin call returns reaches the journal unscrubbed. A
//! target's `secret:NAME` config values are read here and handed to the
//! plugin; they, the grant's secrets and the customer's contact details are
//! removed (in their common encodings) from every effect result, and an
//! HTTP request is summarised as method, `scheme://host[:port]` and status.

use crate::config::smtp::SMTP;
use crate::config::status_page::STATUS_PLUGIN;
use crate::incident::Engine;
use crate::incident::effects::{EffectKind, EffectOutcome, Executor, IntentPayload, LogExecutor};
use crate::plugin::api::{
    CustomerRef as PCustomer, HttpDisposition, HttpRecord, IncidentInfo, Invocation, Notification, NotifyTarget,
    RunMode,
};
use crate::plugin::{PluginCallError, PluginHost, Scrubber};
use std::sync::{Arc, Weak};

/// Called once per plugin call with the plugin name and `ok`/`error`/`captured`.
pub(crate) type CallCounter = Arc<dyn Fn(&str, &str) + Send + Sync>;

/// Runs intents through Wasm plugins.
pub(crate) struct PluginExecutor {
    host: Arc<PluginHost>,
    engine: Weak<Engine>,
    log: LogExecutor,
    counter: Option<CallCounter>,
    /// Where `status` targets publish; `None` where no status page exists (drills).
    status: Option<Arc<super::status_page::StatusBoard>>,
}

impl PluginExecutor {
    /// `engine` supplies the current targets and customer source.
    pub(crate) fn new(host: Arc<PluginHost>, engine: &Arc<Engine>, counter: Option<CallCounter>) -> Self {
        PluginExecutor { host, engine: Arc::downgrade(engine), log: LogExecutor, counter, status: None }
    }

    /// Publishes `status` targets' posts to `board`.
    pub(crate) fn with_status_board(mut self, board: Arc<super::status_page::StatusBoard>) -> Self {
        self.status = Some(board);
        self
    }

    /// The built-in `status` target: publishes the intent's post once per
    /// invocation id, and never a drill's.
    fn publish_status(&self, id: &str, p: &IntentPayload, now: i64) -> EffectOutcome {
        if p.mode == crate::playbook::types::Mode::Drill {
            return EffectOutcome::sent(format!(
                "{}status post to `{}`, not published",
                crate::drill::contain::CAPTURED,
                p.target
            ));
        }
        let Some(post) = &p.status else {
            return EffectOutcome::failed(
                format!(
                    "target `{}` is a public status page and this {} notice has no [act.status] text: only a step's [act.status] table is published there",
                    p.target, p.purpose
                ),
                false,
            );
        };
        let Some(board) = &self.status else {
            return EffectOutcome::failed("no status page in this process", false);
        };
        match board.publish(id, &p.incident.id, post, now) {
            Ok(true) => {
                tracing::info!(invocation_id = id, target = %p.target, state = %post.state, "published to the status page");
                EffectOutcome::sent(format!(
                    "published to the status page: {} {}",
                    post.components.join(", "),
                    post.state
                ))
            }
            Ok(false) => EffectOutcome::sent("already published to the status page under this invocation id"),
            Err(e) => EffectOutcome::failed(format!("cannot record the status page post: {e}"), true),
        }
    }

    fn count(&self, plugin: &str, result: &str) {
        if let Some(c) = &self.counter {
            c(plugin, result);
        }
    }
}

fn invocation(id: &str, p: &IntentPayload, now: i64) -> Invocation {
    Invocation {
        invocation_id: id.to_string(),
        incident_id: p.incident.id.clone(),
        mode: if p.mode == crate::playbook::types::Mode::Drill { RunMode::Drill } else { RunMode::Live },
        now_unix_ms: now.max(0) as u64,
        budget_ms: None,
    }
}

fn info(p: &IntentPayload) -> IncidentInfo {
    IncidentInfo {
        id: p.incident.id.clone(),
        title: p.incident.title.clone(),
        playbook_id: p.incident.playbook_id.clone(),
        severity: p.incident.severity.into(),
        category: p.incident.category.into(),
        phase: p.incident.phase.to_string(),
        summary: p.incident.summary.clone(),
        labels: Vec::new(),
    }
}

/// One line per outbound request: `POST https://host -> 200` or `captured`.
/// Only the origin: a webhook URL's path, query or userinfo is often its
/// credential.
fn http_summary(records: &[HttpRecord]) -> String {
    records
        .iter()
        .map(|r| {
            let url = crate::plugin::origin(&r.url);
            match &r.disposition {
                HttpDisposition::Sent { status } => format!("{} {url} -> {status}", r.method),
                HttpDisposition::Captured => {
                    format!("{} {url} captured (drill, not sent)", r.method)
                }
                HttpDisposition::Denied { reason } => {
                    format!("{} {url} denied: {reason}", r.method)
                }
                HttpDisposition::Failed { error } => format!("{} {url} failed: {error}", r.method),
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn failed(e: &PluginCallError, scrub: &Scrubber) -> EffectOutcome {
    let http = http_summary(e.http_records());
    let detail = if http.is_empty() { e.to_string() } else { format!("{e} ({http})") };
    EffectOutcome::failed(scrub.scrub(&detail), e.is_retryable())
}

/// What one notifier call delivers. `contacts` are the customer details the
/// call carries, scrubbed from its result.
struct Message<'a> {
    body: &'a str,
    subject: &'a str,
    contacts: Vec<String>,
}

impl PluginExecutor {
    /// Sends a message through the target's notifier.
    fn notify(
        &self,
        id: &str,
        p: &IntentPayload,
        engine: &Engine,
        params: Vec<(String, String)>,
        msg: Message<'_>,
    ) -> EffectOutcome {
        let Message { body, subject, contacts } = msg;
        let g = engine.generation();
        let mut target = NotifyTarget { contacts, ..Default::default() };
        if let Some(t) = g.config.targets.get(&p.target) {
            target.config = t
                .config
                .iter()
                .filter(|(_, v)| !v.starts_with("secret:"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            match super::plugins::target_secrets(t, &g.config) {
                Ok(secrets) => target.secrets = secrets,
                Err(e) => {
                    self.count(&p.notifier, "error");
                    return EffectOutcome::failed(format!("target `{}`: {e}", p.target), false);
                }
            }
        }
        let scrub = self.host.scrubber(&p.notifier, &target);
        let note = Notification {
            incident: info(p),
            target: p.target.clone(),
            subject: subject.to_string(),
            body_text: body.to_string(),
            params,
        };
        match self.host.notify(&p.notifier, &invocation(id, p, engine.now()), &note, &target) {
            Ok(out) => {
                let captured = out.http.iter().any(|r| r.disposition == HttpDisposition::Captured);
                self.count(&p.notifier, if captured { "captured" } else { "ok" });
                let http = http_summary(&out.http);
                let detail = [out.value.detail.clone(), http]
                    .into_iter()
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
                    .join("; ");
                EffectOutcome::sent(scrub.scrub(&format!("{} {}: {detail}", out.plugin.name, out.plugin.version)))
            }
            Err(e) => {
                self.count(&p.notifier, "error");
                failed(&e, &scrub)
            }
        }
    }
}

impl PluginExecutor {
    /// E-mails one customer through an `smtp` target, with the address looked up only now.
    fn email_customer(
        &self,
        id: &str,
        p: &IntentPayload,
        engine: &Engine,
        customer: &str,
        subject: &str,
        body: &str,
    ) -> EffectOutcome {
        let g = engine.generation();
        let Some(settings) = g.config.targets.get(&p.target).and_then(|t| t.smtp.as_ref()) else {
            return EffectOutcome::failed(format!("target `{}` is no longer an smtp target", p.target), false);
        };
        let address = g
            .customers
            .iter()
            .find(|x| x.id == customer)
            .map(|x| x.contact.email.trim().to_string())
            .unwrap_or_default();
        if address.is_empty() {
            return EffectOutcome::failed(format!("customer {customer} has no e-mail address"), false);
        }
        let to = [super::smtp::Recipient { who: format!("customer {customer}"), address }];
        let out = super::smtp::send(id, p, &g.config, settings, subject, body, &to);
        self.count(SMTP, if out.ok { "ok" } else { "error" });
        out
    }
}

impl Executor for PluginExecutor {
    fn execute(&self, id: &str, p: &IntentPayload) -> EffectOutcome {
        let Some(engine) = self.engine.upgrade() else {
            return EffectOutcome::failed("the daemon is shutting down", true);
        };
        match p.kind {
            EffectKind::Notify if p.notifier == "log" => self.log.execute(id, p),
            EffectKind::Notify if p.notifier == STATUS_PLUGIN => self.publish_status(id, p, engine.now()),
            EffectKind::Notify if p.notifier == SMTP => {
                let g = engine.generation();
                let Some(settings) = g.config.targets.get(&p.target).and_then(|t| t.smtp.as_ref()) else {
                    return EffectOutcome::failed(format!("target `{}` is no longer an smtp target", p.target), false);
                };
                let out = match super::smtp::people(p, settings, &g.config.roster) {
                    Ok(to) => super::smtp::send(id, p, &g.config, settings, &p.subject, &p.body, &to),
                    Err(e) => EffectOutcome::failed(e, false),
                };
                self.count(SMTP, if out.ok { "ok" } else { "error" });
                out
            }
            EffectKind::Notify => {
                let params = vec![
                    ("purpose".to_string(), p.purpose.to_string()),
                    ("recipients".to_string(), p.recipients.join(",")),
                ];
                self.notify(
                    id,
                    p,
                    &engine,
                    params,
                    Message { body: &p.body, subject: &p.subject, contacts: Vec::new() },
                )
            }
            EffectKind::Appease => {
                let Some(c) = &p.customer else {
                    return EffectOutcome::failed("customer message without a customer", false);
                };
                // A message composed when it was recorded (a complaint's answer) is delivered as it is.
                let Some(composer) = &p.composer else {
                    let msg =
                        Composed { locale: &c.locale, subject: Some(&p.subject), body: &p.body, compensation: None };
                    return self.deliver_to_customer(id, p, &engine, c, "crisis", msg);
                };
                let channel = match c.channel.parse::<crate::playbook::types::Channel>() {
                    Ok(ch) => ch.into(),
                    Err(e) => {
                        return EffectOutcome::failed(format!("customer message on an unknown channel: {e}"), false);
                    }
                };
                let who = PCustomer {
                    id: c.id.clone(),
                    segment: c.segment.clone(),
                    tier: c.tier.clone(),
                    locale: c.locale.clone(),
                    channel,
                };
                let composed = match self.host.compose(composer, &invocation(id, p, engine.now()), &info(p), &who) {
                    Ok(out) => {
                        self.count(composer, "ok");
                        out.value
                    }
                    Err(e) => {
                        self.count(composer, "error");
                        return failed(&e, &Scrubber::default());
                    }
                };
                let Some(msg) = composed.into_iter().next() else {
                    return EffectOutcome::failed(
                        format!("{composer} composed no message for customer {}", c.id),
                        false,
                    );
                };
                let msg = Composed {
                    locale: &msg.locale,
                    subject: msg.subject.as_deref(),
                    body: &msg.body,
                    compensation: msg.compensation.as_deref(),
                };
                self.deliver_to_customer(id, p, &engine, c, composer, msg)
            }
        }
    }
}

/// A customer message ready to deliver.
struct Composed<'a> {
    locale: &'a str,
    subject: Option<&'a str>,
    body: &'a str,
    compensation: Option<&'a str>,
}

impl PluginExecutor {
    /// Delivers a composed customer message through the intent's target.
    fn deliver_to_customer(
        &self,
        id: &str,
        p: &IntentPayload,
        engine: &Engine,
        c: &crate::incident::effects::CustomerRef,
        composer: &str,
        msg: Composed<'_>,
    ) -> EffectOutcome {
        let body = msg.body;
        if p.notifier == "log" {
            tracing::info!(invocation_id = id, incident = %p.incident.id, customer = %c.id, channel = %c.channel, locale = %msg.locale, mode = %p.mode, "customer message (log target): {body}");
            return EffectOutcome::sent(format!("composed by {composer} ({}), logged: {body}", msg.locale));
        }
        if let Some(comp) = msg.compensation {
            tracing::debug!(invocation_id = id, customer = %c.id, "compensation offered: {comp}");
        }
        let subject = msg.subject.unwrap_or(&p.subject);
        if p.notifier == SMTP {
            return self.email_customer(id, p, engine, &c.id, subject, body);
        }
        // The address is looked up only now and never leaves this call except to the notifier.
        let address = engine
            .generation()
            .customers
            .iter()
            .find(|x| x.id == c.id)
            .map(|x| x.contact.address(c.channel.parse().unwrap_or(x.channel)).to_string())
            .unwrap_or_default();
        if address.is_empty() {
            return EffectOutcome::failed(format!("customer {} has no address for {}", c.id, c.channel), false);
        }
        let params = vec![
            ("to".to_string(), address.clone()),
            ("channel".to_string(), c.channel.clone()),
            ("customer".to_string(), c.id.clone()),
            ("locale".to_string(), msg.locale.to_string()),
        ];
        self.notify(id, p, engine, params, Message { body, subject, contacts: vec![address] })
    }
}
