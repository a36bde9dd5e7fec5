//! `[status_page]`: the public, read-only status page the daemon can serve on
//! its own listener (off unless `listen` is set), and the components it shows.
//!
//! A non-loopback listener is public by design, so it needs HTTPS (served with
//! the API's `[tls]` certificate) unless `insecure_listen = true` says plain
//! HTTP is terminated by a proxy in front.

use super::model::StatusPageDecl;
use crate::diag::{Diagnostic, Source};
use crate::playbook::types::is_locale;
use serde::Serialize;
use std::collections::BTreeSet;
use std::net::SocketAddr;

/// The built-in target kind that publishes to the status page.
pub const STATUS_PLUGIN: &str = "status";

/// A part of the service customers see on the status page.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Component {
    /// The id playbooks name in `[act.status] components`.
    pub id: String,
    /// The name shown to customers.
    pub name: String,
    /// The heading the component is listed under; `None` lists it on its own.
    pub group: Option<String>,
}

/// The status page settings in effect.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StatusPageConfig {
    /// Where the page is served; `None` (the default) serves no page.
    pub listen: Option<SocketAddr>,
    /// Plain HTTP on a non-loopback `listen` was accepted explicitly.
    pub insecure_listen: bool,
    /// Heading of the page and the feed.
    pub title: String,
    /// Locale of the untranslated texts and the fallback for visitors.
    pub default_locale: String,
    /// Days of resolved incidents listed as history.
    pub history_days: u32,
    /// Components in the order the page lists them.
    pub components: Vec<Component>,
}

impl Default for StatusPageConfig {
    fn default() -> Self {
        StatusPageConfig {
            listen: None,
            insecure_listen: false,
            title: "Service status".into(),
            default_locale: "en".into(),
            history_days: 14,
            components: Vec::new(),
        }
    }
}

/// Whether target `name` is of the built-in `status` kind; reports a
/// `drill_safe` one, since a drill must never publish to the public page.
pub(crate) fn is_status_target(
    name: &str,
    d: &super::model::TargetDecl,
    src: &Source,
    diags: &mut Vec<Diagnostic>,
) -> bool {
    if d.plugin.get_ref() != STATUS_PLUGIN {
        return false;
    }
    if d.drill_safe {
        diags.push(src.at(d.plugin.span(), format!("target `{name}` publishes to the public status page, and drills never publish to the status page: remove drill_safe = true")));
    }
    true
}

/// Adds the status targets and components playbooks may name.
pub(crate) fn add_refs(cfg: &super::Config, ctx: &mut crate::playbook::refs::RefContext) {
    ctx.status_targets =
        cfg.targets.iter().filter(|(_, t)| t.plugin == STATUS_PLUGIN).map(|(n, _)| n.clone()).collect();
    ctx.components = cfg.status_page.components.iter().map(|c| c.id.clone()).collect();
}

/// Reads `[status_page]`; `has_tls` says whether `[tls]` is configured.
pub(crate) fn build(
    decl: Option<&StatusPageDecl>,
    has_tls: bool,
    src: &Source,
    diags: &mut Vec<Diagnostic>,
) -> StatusPageConfig {
    let mut cfg = StatusPageConfig::default();
    let Some(d) = decl else { return cfg };
    cfg.insecure_listen = d.insecure_listen.unwrap_or(false);
    if let Some(l) = &d.listen {
        match l.get_ref().parse::<SocketAddr>() {
            Err(_) => diags.push(src.at(
                l.span(),
                format!("bad [status_page] listen address `{}`: write IP:PORT like 127.0.0.1:8081", l.get_ref()),
            )),
            Ok(a) if !a.ip().is_loopback() && !has_tls && !cfg.insecure_listen => diags.push(src.at(
                l.span(),
                format!("[status_page] listen = \"{a}\" is not a loopback address: add [tls] with cert and key (the page is served over HTTPS with the API's certificate), or set insecure_listen = true in [status_page] when a proxy in front terminates HTTPS"),
            )),
            Ok(a) => cfg.listen = Some(a),
        }
    }
    if let Some(t) = &d.title {
        cfg.title = t.clone();
    }
    if let Some(l) = &d.default_locale {
        if is_locale(l.get_ref()) {
            cfg.default_locale = l.get_ref().clone();
        } else {
            diags.push(src.at(
                l.span(),
                format!(
                    "[status_page] default_locale `{}` is not a locale: use a BCP 47 tag like en or zh-CN",
                    l.get_ref()
                ),
            ));
        }
    }
    if let Some(h) = &d.history_days {
        match u32::try_from(*h.get_ref()) {
            Ok(n) if (1..=366).contains(&n) => cfg.history_days = n,
            _ => {
                diags.push(src.at(
                    h.span(),
                    format!("[status_page] history_days is {}: it must be between 1 and 366", h.get_ref()),
                ))
            }
        }
    }
    let mut seen = BTreeSet::new();
    for c in &d.components {
        let c = c.get_ref();
        let id = c.id.get_ref();
        let ok = !id.is_empty()
            && id.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-' || ch == '_');
        if !ok {
            diags.push(src.at(
                c.id.span(),
                format!("bad [status_page] component id `{id}`: use lowercase letters, digits, `-` and `_`"),
            ));
        } else if !seen.insert(id.clone()) {
            diags.push(src.at(c.id.span(), format!("[status_page] component `{id}` is declared twice")));
        } else {
            cfg.components.push(Component {
                id: id.clone(),
                name: c.name.clone().unwrap_or_else(|| id.clone()),
                group: c.group.clone(),
            });
        }
    }
    cfg
}

#[cfg(test)]
mod tests {
    use super::super::load_source;
    use crate::diag::Source;
    use std::path::Path;

    fn load(text: &str) -> Result<super::super::Config, Vec<String>> {
        load_source(Source::new("crisis.toml", text.to_string()), None, Path::new("."))
            .map_err(|ds| ds.iter().map(|d| d.to_string()).collect())
    }

    #[test]
    fn the_page_is_off_by_default_and_reads_its_components() {
        let c = load("").unwrap();
        assert_eq!(c.status_page.listen, None);
        let c = load(
            "[status_page]\nlisten = \"127.0.0.1:8081\"\ndefault_locale = \"zh-CN\"\ncomponents = [{ id = \"login\", name = \"Login\", group = \"Web\" }, { id = \"api\" }]\n",
        )
        .unwrap();
        let p = &c.status_page;
        assert_eq!(p.listen.map(|a| a.port()), Some(8081));
        assert_eq!(p.default_locale, "zh-CN");
        assert_eq!(p.components[0].group.as_deref(), Some("Web"));
        assert_eq!(p.components[1].name, "api");
        assert!(c.ref_context().components.contains("login"));
    }

    #[test]
    fn bad_status_page_settings_say_where_and_how_to_fix() {
        let m = load("[status_page]\nlisten = \"0.0.0.0:8081\"\n").unwrap_err();
        assert!(
            m[0].starts_with("crisis.toml:2:10: [status_page] listen = \"0.0.0.0:8081\" is not a loopback address"),
            "{m:?}"
        );
        assert!(load("[status_page]\nlisten = \"0.0.0.0:8081\"\ninsecure_listen = true\n").is_ok());
        let m = load("[status_page]\ncomponents = [{ id = \"Login\" }, { id = \"a\" }, { id = \"a\" }]\n").unwrap_err();
        assert!(m[0].contains("bad [status_page] component id `Login`"), "{m:?}");
        assert!(m[1].contains("component `a` is declared twice"), "{m:?}");
        let m = load("[status_page]\ndefault_locale = \"chinese\"\n").unwrap_err();
        assert!(m[0].contains("is not a locale"), "{m:?}");
        let m = load("[targets.status]\nplugin = \"status\"\ndrill_safe = true\n").unwrap_err();
        assert!(m[0].contains("drills never publish to the status page"), "{m:?}");
    }
}
