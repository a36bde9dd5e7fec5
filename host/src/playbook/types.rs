//! Small closed vocabularies of the domain, parsed from strings.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

macro_rules! vocabulary {
    ($(#[$m:meta])* $name:ident, $what:literal, { $($(#[$vm:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $name { $($(#[$vm])* #[serde(rename = $text)] $variant),+ }

        impl $name {
            /// Every accepted spelling, for error messages.
            pub const ALL: &'static [&'static str] = &[$($text),+];
            /// The spelling used in playbooks, the API and the journal.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok(Self::$variant),)+
                    other => Err(format!(
                        "unknown {} `{}`: expected one of {}",
                        $what, other, Self::ALL.join(", ")
                    )),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
    };
}

vocabulary!(
    /// sev1 is the worst; ordering follows the number, so `sev1 < sev2`.
    Severity, "severity", {
        /// Critical: the business or many customers are hurt now.
        Sev1 = "sev1",
        /// Major: a customer-facing service is failing for many.
        Sev2 = "sev2",
        /// Moderate: degraded service or a limited group affected.
        Sev3 = "sev3",
        /// Minor: little customer impact.
        Sev4 = "sev4",
        /// Informational: worth tracking, no impact yet.
        Sev5 = "sev5",
    }
);

impl Severity {
    /// 1 for sev1 … 5 for sev5, as exposed to `when` expressions.
    pub fn number(self) -> i64 {
        self as i64 + 1
    }
}

vocabulary!(
    /// Complaint categories from customer-service practice.
    Category, "complaint category", {
        /// The product itself is faulty or not as promised.
        ProductQuality = "product-quality",
        /// How staff treated the customer.
        ServiceAttitude = "service-attitude",
        /// How the service works: delays, errors, outages, policies.
        ServiceProcess = "service-process",
        /// Charges, refunds and pricing.
        Price = "price",
        /// Anything the other categories do not cover.
        Other = "other",
    }
);

vocabulary!(
    /// What an act step does; decides which plugin world it may call.
    StepKind, "step kind", {
        /// Send people somewhere; done by a person.
        Dispatch = "dispatch",
        /// Allocate resources; done by a person.
        Allocate = "allocate",
        /// Message affected customers through an appeasement plugin.
        Appease = "appease",
        /// Notify targets; runs by itself.
        Notify = "notify",
        /// Any task a person marks done.
        Manual = "manual",
        /// Waits for an approval by the named role.
        Approval = "approval",
    }
);

vocabulary!(
    /// Channels customers are reached on.
    Channel, "customer channel", {
        /// A phone call.
        Phone = "phone",
        /// A text message.
        Sms = "sms",
        /// An e-mail.
        Email = "email",
        /// A social-media message or reply.
        Social = "social",
    }
);

vocabulary!(
    /// The six phases of a crisis plan, in order.
    Phase, "phase", {
        /// The crisis is reported upward at once.
        Report = "report",
        /// The plan is put into effect and channels are opened.
        Activate = "activate",
        /// An owner is named and acknowledges.
        Assign = "assign",
        /// The planned steps run.
        Act = "act",
        /// Progress is followed and reported.
        Track = "track",
        /// The outcome report is written and sent.
        Outcome = "outcome",
    }
);

impl Phase {
    /// Phases in plan order.
    pub const ORDER: [Phase; 6] =
        [Phase::Report, Phase::Activate, Phase::Assign, Phase::Act, Phase::Track, Phase::Outcome];

    /// The phase after this one, or `None` after `outcome`.
    pub fn next(self) -> Option<Phase> {
        let i = Self::ORDER.iter().position(|p| *p == self)?;
        Self::ORDER.get(i + 1).copied()
    }
}

vocabulary!(
    /// How a component looks on the public status page. Ordered from best to
    /// worst, so the page shows a component's worst state across incidents.
    ComponentState, "component state", {
        /// Working normally.
        Operational = "operational",
        /// Planned work; customers were told in advance.
        Maintenance = "maintenance",
        /// Working, but slow or with errors for some requests.
        Degraded = "degraded",
        /// Failing for some customers or regions.
        PartialOutage = "partial-outage",
        /// Failing for most or all customers.
        MajorOutage = "major-outage",
    }
);

/// Whether `tag` looks like a BCP 47 language tag: `en`, `zh-CN`, `pt-BR`, `zh-Hant-TW`.
pub fn is_locale(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let lang_ok =
        parts.next().is_some_and(|l| (2..=3).contains(&l.len()) && l.chars().all(|c| c.is_ascii_alphabetic()));
    lang_ok && parts.all(|p| (2..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

vocabulary!(
    /// Whether an incident is real or a drill; fixed by the host when it opens.
    Mode, "mode", {
        /// A real incident: messages reach real people.
        Live = "live",
        /// An exercise: every message is captured, none is sent.
        Drill = "drill",
    }
);

/// Why a side effect was recorded; effects are counted per purpose, and a
/// step's effects finish the step. Stored as its text (`report`, `step:ID`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Purpose {
    /// The report notice of the `report` phase.
    Report,
    /// The notice to `[activate] channels` when the response is activated.
    Activate,
    /// Paging the commander (and other roles) in the `assign` phase.
    Page,
    /// Paging the next rung of the escalation ladder after no acknowledgement.
    Escalate,
    /// A notice that a phase or step missed its `within` deadline.
    Deadline,
    /// Progress updates and stale warnings of the `track` phase.
    Track,
    /// Sending the outcome report.
    Outcome,
    /// Messages a step sends (`step:ID`).
    Step(String),
    /// A storm-control digest carrying notices folded during one window.
    Digest,
    /// The first answer to a customer complaint, due within `[complaints] first_response`.
    FirstResponse,
    /// The message asking a complainant, after `[complaints] follow_up`, whether the problem is solved.
    FollowUp,
    /// A notice to a rota about a complaint (a missed first response, an escalation).
    ComplaintNotice,
    /// The message telling a complainant that the incident their complaint joined was resolved.
    ComplaintOutcome,
}

impl Purpose {
    /// The step whose messages these are, if any.
    pub fn step(&self) -> Option<&str> {
        match self {
            Purpose::Step(id) => Some(id),
            _ => None,
        }
    }
}

impl FromStr for Purpose {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "report" => Purpose::Report,
            "activate" => Purpose::Activate,
            "page" => Purpose::Page,
            "escalate" => Purpose::Escalate,
            "deadline" => Purpose::Deadline,
            "track" => Purpose::Track,
            "outcome" => Purpose::Outcome,
            "digest" => Purpose::Digest,
            "first-response" => Purpose::FirstResponse,
            "follow-up" => Purpose::FollowUp,
            "complaint-notice" => Purpose::ComplaintNotice,
            "complaint-outcome" => Purpose::ComplaintOutcome,
            other => match other.strip_prefix("step:") {
                Some(id) if !id.is_empty() => Purpose::Step(id.to_string()),
                _ => {
                    return Err(format!(
                        "unknown purpose `{other}`: expected one of report, activate, page, escalate, deadline, track, outcome, digest, first-response, follow-up, complaint-notice, complaint-outcome, step:ID"
                    ));
                }
            },
        })
    }
}

impl TryFrom<String> for Purpose {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<Purpose> for String {
    fn from(p: Purpose) -> String {
        p.to_string()
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Purpose::Report => f.write_str("report"),
            Purpose::Activate => f.write_str("activate"),
            Purpose::Page => f.write_str("page"),
            Purpose::Escalate => f.write_str("escalate"),
            Purpose::Deadline => f.write_str("deadline"),
            Purpose::Track => f.write_str("track"),
            Purpose::Outcome => f.write_str("outcome"),
            Purpose::Digest => f.write_str("digest"),
            Purpose::FirstResponse => f.write_str("first-response"),
            Purpose::FollowUp => f.write_str("follow-up"),
            Purpose::ComplaintNotice => f.write_str("complaint-notice"),
            Purpose::ComplaintOutcome => f.write_str("complaint-outcome"),
            Purpose::Step(id) => write!(f, "step:{id}"),
        }
    }
}

vocabulary!(
    /// Fields a report may be required to carry.
    ReportField, "report field", {
        /// What is happening.
        Nature = "nature",
        /// When it started (filled in with the trigger time if not given).
        Time = "time",
        /// Who and what is affected.
        Scope = "scope",
        /// What is likely to follow if nothing is done.
        Consequences = "consequences",
    }
);

vocabulary!(
    /// Fields an outcome report may be required to carry.
    OutcomeField, "outcome field", {
        /// Why it happened.
        Cause = "cause",
        /// How it was handled.
        Process = "process",
        /// What follows: customer follow-up and improvements.
        Aftermath = "aftermath",
    }
);

/// A reference to who should do something: `rota:`, `team:`, `person:` or `role:`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Who {
    /// Whoever is on duty on the named rota when the reference is resolved.
    Rota(String),
    /// The named roster team.
    Team(String),
    /// One person, by roster id.
    Person(String),
    /// Whoever holds the role: an incident role (`commander`, `liaison`, `scribe`) or a roster role like `duty-manager`.
    Role(String),
}

impl FromStr for Who {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (kind, name) = s
            .split_once(':')
            .ok_or_else(|| format!("`{s}` is not a reference: write rota:NAME, team:NAME, person:NAME or role:NAME"))?;
        if name.is_empty() {
            return Err(format!("`{s}` names no {kind}: write {kind}:NAME"));
        }
        let name = name.to_string();
        match kind {
            "rota" => Ok(Who::Rota(name)),
            "team" => Ok(Who::Team(name)),
            "person" => Ok(Who::Person(name)),
            "role" => Ok(Who::Role(name)),
            other => {
                Err(format!("unknown reference kind `{other}:` in `{s}`: expected rota:, team:, person: or role:"))
            }
        }
    }
}

impl TryFrom<String> for Who {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<Who> for String {
    fn from(w: Who) -> String {
        w.to_string()
    }
}

impl fmt::Display for Who {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Who::Rota(n) => write!(f, "rota:{n}"),
            Who::Team(n) => write!(f, "team:{n}"),
            Who::Person(n) => write!(f, "person:{n}"),
            Who::Role(n) => write!(f, "role:{n}"),
        }
    }
}

/// Incident roles every playbook may refer to with `role:`.
pub const INCIDENT_ROLES: &[&str] = &["commander", "liaison", "scribe"];

/// Parses `90s`, `2m`, `1h30m`, `3d`: a human duration, never zero.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| format!("bad duration `{s}`: {e}; write it like 90s, 2m, 1h30m or 3d"))?;
    if d.is_zero() {
        return Err(format!("duration `{s}` is zero: use a positive duration like 30s"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s").unwrap().as_secs(), 90);
        assert_eq!(parse_duration("2m").unwrap().as_secs(), 120);
        assert_eq!(parse_duration("1h30m").unwrap().as_secs(), 5400);
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn severity_orders_worst_first() {
        assert!(Severity::Sev1 < Severity::Sev2);
        assert_eq!(Severity::Sev3.number(), 3);
        assert!("sev9".parse::<Severity>().unwrap_err().contains("sev1, sev2"));
    }

    #[test]
    fn who_references() {
        assert_eq!("rota:cs-duty".parse::<Who>().unwrap(), Who::Rota("cs-duty".into()));
        assert!("boss".parse::<Who>().is_err());
        assert!("group:x".parse::<Who>().unwrap_err().contains("unknown reference kind"));
        assert!("rota:".parse::<Who>().is_err());
    }

    #[test]
    fn purposes_keep_their_stored_text() {
        for text in ["report", "activate", "page", "escalate", "deadline", "track", "outcome", "step:bridge-2"] {
            let p: Purpose = text.parse().unwrap();
            assert_eq!(p.to_string(), text);
            assert_eq!(serde_json::to_value(&p).unwrap(), serde_json::json!(text));
            assert_eq!(serde_json::from_value::<Purpose>(serde_json::json!(text)).unwrap(), p);
        }
        assert_eq!("step:a:b".parse::<Purpose>().unwrap().step(), Some("a:b"));
        assert!("step:".parse::<Purpose>().is_err());
        assert!("paging".parse::<Purpose>().is_err());
        assert_eq!(serde_json::to_value(Mode::Drill).unwrap(), serde_json::json!("drill"));
    }

    #[test]
    fn phases_in_order() {
        assert_eq!(Phase::Report.next(), Some(Phase::Activate));
        assert_eq!(Phase::Outcome.next(), None);
    }

    #[test]
    fn locales_are_bcp47_shaped() {
        for ok in ["en", "zh-CN", "pt-BR", "zh-Hant-TW", "fil"] {
            assert!(super::is_locale(ok), "{ok}");
        }
        for bad in ["", "e", "english", "zh_CN", "zh-", "en-US-x!"] {
            assert!(!super::is_locale(bad), "{bad}");
        }
    }
}

vocabulary!(
    /// The plugin world a component implements; decides which steps may call it.
    World, "plugin world", {
        /// Delivers notifications (outbound HTTP through the host).
        Notifier = "notifier",
        /// Composes customer messages; no network.
        Appeasement = "appeasement",
        /// Supplies drill injects and scores drills.
        Drill = "drill",
        /// Classifies complaint text into a category; no network.
        Classifier = "classifier",
    }
);
