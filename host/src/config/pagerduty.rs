//! `[intake.pagerduty]`: which playbook a PagerDuty Events API v2 event
//! opens, by the name of the crisis token its `routing_key` is, and how
//! PagerDuty's four severities map onto sev1–sev5.
//!
//! The routing key is a token secret, so the table names tokens, never
//! secrets: `token = "NAME"` is the name an intake token was created with
//! (`crisis token create --intake NAME`) or the roster id of a person whose
//! token is used as the key.

use crate::diag::{Diagnostic, Source};
use crate::playbook::types::Severity;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// A value as written, with where it is (the model's `Str`, without importing the model that imports this).
type Str = serde_spanned::Spanned<String>;

/// Every person and intake token secret starts with this.
const SECRET_PREFIX: &str = "crisis_";

/// Token names are at most this long; secrets are longer.
const MAX_NAME: usize = 64;

/// `[intake]` as written: today only its `pagerduty` part.
#[derive(Debug, Clone, Deserialize, Default)]
pub(crate) struct IntakeDecl {
    pub pagerduty: Option<PagerDutyDecl>,
}

/// `[intake.pagerduty]` as written.
#[derive(Debug, Clone, Deserialize, Default)]
pub(crate) struct PagerDutyDecl {
    /// The playbook for a routing key no route names.
    pub playbook: Option<Str>,
    #[serde(default)]
    pub routes: Vec<RouteDecl>,
    /// PagerDuty severity to crisis severity; unnamed ones keep the default.
    #[serde(default)]
    pub severities: BTreeMap<String, Str>,
}

/// One `routes = [{ token = "NAME", playbook = "ID" }]` entry as written.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct RouteDecl {
    pub token: Str,
    pub playbook: Str,
}

/// PagerDuty's `payload.severity`. Why a type: the severity map is keyed by it
/// and an event with any other word is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PdSeverity {
    /// The worst.
    Critical,
    /// Something failed.
    Error,
    /// Something may fail.
    Warning,
    /// Worth knowing.
    Info,
}

impl PdSeverity {
    /// Every accepted spelling, for error messages.
    pub const ALL: &'static [&'static str] = &["critical", "error", "warning", "info"];

    /// The crisis severity an event of this severity opens with unless crisis.toml says otherwise.
    pub fn default_severity(self) -> Severity {
        match self {
            PdSeverity::Critical => Severity::Sev1,
            PdSeverity::Error => Severity::Sev2,
            PdSeverity::Warning => Severity::Sev3,
            PdSeverity::Info => Severity::Sev4,
        }
    }

    /// The spelling PagerDuty uses.
    pub fn as_str(self) -> &'static str {
        match self {
            PdSeverity::Critical => "critical",
            PdSeverity::Error => "error",
            PdSeverity::Warning => "warning",
            PdSeverity::Info => "info",
        }
    }
}

impl FromStr for PdSeverity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "critical" => Ok(PdSeverity::Critical),
            "error" => Ok(PdSeverity::Error),
            "warning" => Ok(PdSeverity::Warning),
            "info" => Ok(PdSeverity::Info),
            other => {
                Err(format!("unknown PagerDuty severity `{other}`: expected one of {}", PdSeverity::ALL.join(", ")))
            }
        }
    }
}

impl fmt::Display for PdSeverity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where in crisis.toml a playbook is named, so an unknown one is reported there.
#[derive(Debug, Clone, PartialEq)]
struct At {
    path: PathBuf,
    line: usize,
    col: usize,
}

/// A playbook named in `[intake.pagerduty]`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PlaybookRef {
    /// The playbook id.
    pub id: String,
    #[serde(skip)]
    at: Option<At>,
}

/// The loaded `[intake.pagerduty]`: absent means every routing key needs a route and none has one.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct PagerDutyConfig {
    /// The playbook of routing keys no route names; `None`: such events are refused.
    pub default_playbook: Option<PlaybookRef>,
    /// Playbook by token name (intake name or roster person id).
    pub routes: BTreeMap<String, PlaybookRef>,
    /// Severities crisis.toml maps differently from [`PdSeverity::default_severity`].
    pub severities: BTreeMap<PdSeverity, Severity>,
}

impl PagerDutyConfig {
    /// The playbook an event from the token named `name` opens.
    pub fn playbook_for(&self, name: &str) -> Option<&str> {
        self.routes.get(name).or(self.default_playbook.as_ref()).map(|p| p.id.as_str())
    }

    /// The crisis severity of a PagerDuty severity.
    pub fn severity(&self, s: PdSeverity) -> Severity {
        self.severities.get(&s).copied().unwrap_or_else(|| s.default_severity())
    }

    /// One error, at the reference, for every playbook named here that `exists` does not know.
    pub fn unknown_playbooks(&self, exists: impl Fn(&str) -> bool, known: &[&str]) -> Vec<Diagnostic> {
        let default = self.default_playbook.iter().map(|p| ("`playbook`".to_string(), p));
        let routes = self.routes.iter().map(|(name, p)| (format!("the route of token `{name}`"), p));
        default
            .chain(routes)
            .filter(|(_, p)| !exists(&p.id))
            .map(|(key, p)| {
                let at = p.at.clone().unwrap_or(At { path: PathBuf::from("crisis.toml"), line: 1, col: 1 });
                let near = crate::diag::nearby(&p.id, known.iter().copied());
                let hint = if near.is_empty() {
                    format!("known: {}", known.join(", "))
                } else {
                    format!("did you mean {}?", near.join(", "))
                };
                Diagnostic {
                    path: at.path,
                    line: at.line,
                    col: at.col,
                    message: format!(
                        "[intake.pagerduty] {key} names playbook `{}`, which is not loaded ({hint})",
                        p.id
                    ),
                }
            })
            .collect()
    }
}

/// Builds the table from `[intake]`, reporting each bad entry where it is written.
pub(crate) fn build(decl: Option<&IntakeDecl>, src: &Source, diags: &mut Vec<Diagnostic>) -> PagerDutyConfig {
    let Some(d) = decl.and_then(|i| i.pagerduty.as_ref()) else { return PagerDutyConfig::default() };
    let reference = |s: &Str| {
        let (line, col) = src.position(s.span().start);
        PlaybookRef { id: s.get_ref().clone(), at: Some(At { path: src.path.clone(), line, col }) }
    };
    let mut routes = BTreeMap::new();
    for r in &d.routes {
        let name = r.token.get_ref();
        if name.starts_with(SECRET_PREFIX) && name.len() > MAX_NAME {
            // The value is not quoted back: it is a secret.
            diags.push(src.at(r.token.span(), "[intake.pagerduty] routes: `token` holds a token secret; write the token's NAME (the name given to crisis token create --intake NAME, or a roster person id) and revoke that token, since crisis.toml is no place for it"));
            continue;
        }
        if name.trim().is_empty() {
            diags.push(src.at(
                r.token.span(),
                "[intake.pagerduty] routes: `token` is empty; write the name of an intake token or a roster person id",
            ));
            continue;
        }
        if routes.insert(name.clone(), reference(&r.playbook)).is_some() {
            diags.push(src.at(
                r.token.span(),
                format!("[intake.pagerduty] routes: token `{name}` is routed twice; keep one route per token"),
            ));
        }
    }
    let mut severities = BTreeMap::new();
    for (k, v) in &d.severities {
        let pd = match k.parse::<PdSeverity>() {
            Ok(s) => s,
            Err(e) => {
                diags.push(src.at(v.span(), format!("[intake.pagerduty] severities: {e}")));
                continue;
            }
        };
        match v.get_ref().parse::<Severity>() {
            Ok(s) => {
                severities.insert(pd, s);
            }
            Err(e) => diags.push(src.at(v.span(), format!("[intake.pagerduty] severities.{k}: {e}"))),
        }
    }
    PagerDutyConfig { default_playbook: d.playbook.as_ref().map(reference), routes, severities }
}

#[cfg(test)]
mod tests {
    use super::super::load_source;
    use super::*;
    use std::path::Path;

    fn load(section: &str) -> Result<PagerDutyConfig, Vec<String>> {
        let text = format!("[intake.pagerduty]\n{section}\n");
        load_source(Source::new("crisis.toml", text), None, Path::new("."))
            .map(|c| c.pagerduty)
            .map_err(|ds| ds.iter().map(|d| d.to_string()).collect())
    }

    #[test]
    fn routes_default_and_severities_are_read() {
        let c = load("playbook = \"outage\"\nroutes = [{ token = \"nagios\", playbook = \"db\" }]\nseverities = { info = \"sev5\" }")
            .unwrap();
        assert_eq!(c.playbook_for("nagios"), Some("db"));
        assert_eq!(c.playbook_for("other"), Some("outage"));
        assert_eq!(c.severity(PdSeverity::Info), Severity::Sev5);
        assert_eq!(c.severity(PdSeverity::Critical), Severity::Sev1);
        assert_eq!(c.severity(PdSeverity::Error), Severity::Sev2);
        assert_eq!(c.severity(PdSeverity::Warning), Severity::Sev3);
        let none = load("").unwrap();
        assert_eq!(none.playbook_for("nagios"), None);
    }

    #[test]
    fn unknown_playbooks_are_reported_where_they_are_named() {
        let c = load("playbook = \"outage\"\nroutes = [{ token = \"nagios\", playbook = \"dbb\" }]").unwrap();
        let d = c.unknown_playbooks(|id| id == "outage" || id == "db", &["outage", "db"]);
        assert_eq!(d.len(), 1);
        assert_eq!(
            d[0].to_string(),
            "crisis.toml:3:42: [intake.pagerduty] the route of token `nagios` names playbook `dbb`, which is not loaded (did you mean db?)"
        );
    }

    #[test]
    fn bad_entries_name_the_key_and_never_echo_a_secret() {
        let secret = format!("crisis_0011aabb_{}", "ab".repeat(32));
        let m = load(&format!("routes = [{{ token = \"{secret}\", playbook = \"db\" }}]")).unwrap_err();
        assert!(m[0].contains("`token` holds a token secret; write the token's NAME"), "{m:?}");
        assert!(!m[0].contains(&secret), "{m:?}");
        let m =
            load("routes = [{ token = \"a\", playbook = \"x\" }, { token = \"a\", playbook = \"y\" }]").unwrap_err();
        assert!(m[0].contains("token `a` is routed twice"), "{m:?}");
        let m = load("severities = { fatal = \"sev1\" }").unwrap_err();
        assert!(
            m[0].contains("unknown PagerDuty severity `fatal`: expected one of critical, error, warning, info"),
            "{m:?}"
        );
        let m = load("severities = { info = \"sev9\" }").unwrap_err();
        assert!(m[0].contains("severities.info: unknown severity `sev9`"), "{m:?}");
        let m = load("routes = [{ token = \"a\" }]").unwrap_err();
        assert!(m[0].contains("missing field `playbook`"), "{m:?}");
    }
}
