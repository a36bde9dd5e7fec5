//! What the public status page shows, computed from the published posts
//! alone: component states, active incidents' updates and recent history,
//! in one locale. Nothing else about an incident is known here, so nothing
//! else can leak: the incident id only groups posts and is never shown.

use super::Published;
use crate::config::status_page::StatusPageConfig;
use crate::incident::status_post::PostText;
use crate::playbook::types::ComponentState;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

/// The page in one locale.
#[derive(Debug, Serialize)]
pub(crate) struct View {
    pub title: String,
    pub locale: String,
    /// Every locale the page can be read in.
    pub locales: Vec<String>,
    /// RFC 3339 time of the newest post (or of the request when there is none).
    pub updated: String,
    /// The worst state of any component.
    pub overall: ComponentState,
    pub components: Vec<ComponentView>,
    /// Open incidents, the most recently updated first.
    pub active: Vec<IncidentView>,
    /// Incidents resolved within `history_days`, the most recently resolved first.
    pub history: Vec<IncidentView>,
    pub history_days: u32,
}

/// One component and its current state.
#[derive(Debug, Serialize)]
pub(crate) struct ComponentView {
    pub id: String,
    pub name: String,
    pub group: Option<String>,
    pub state: ComponentState,
}

/// One incident as published: its updates, newest first.
#[derive(Debug, Serialize)]
pub(crate) struct IncidentView {
    /// An opaque id, stable across requests (not the internal incident id).
    pub id: String,
    pub title: String,
    pub state: ComponentState,
    pub resolved: bool,
    /// Names of the components it affects.
    pub components: Vec<String>,
    pub started: String,
    pub updated: String,
    pub updates: Vec<UpdateView>,
}

/// One published post.
#[derive(Debug, Serialize)]
pub(crate) struct UpdateView {
    pub id: String,
    pub at: String,
    pub title: String,
    pub body: String,
    pub state: ComponentState,
    pub resolved: bool,
}

/// RFC 3339 in UTC, seconds precision.
pub(crate) fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// An opaque, stable id for a published thing.
fn opaque(kind: &str, key: &str) -> String {
    let h = Sha256::digest(format!("crisis-status/{kind}/{key}").as_bytes());
    hex::encode(&h[..8])
}

/// The locales the posts were written in, plus the default.
pub(crate) fn locales(posts: &[(String, Published)], default: &str) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = posts.iter().flat_map(|(_, p)| p.post.locales.keys().cloned()).collect();
    out.insert(default.to_string());
    out
}

/// The locale to answer in: `?lang=` if the page has it, else the best
/// `Accept-Language` match, else the default. A language without a region
/// (`zh`) matches a locale of that language (`zh-CN`).
pub(crate) fn negotiate(query: Option<&str>, accept: Option<&str>, have: &BTreeSet<String>, default: &str) -> String {
    let find = |want: &str| -> Option<String> {
        let want = want.trim();
        if want.is_empty() || want == "*" {
            return None;
        }
        if let Some(l) = have.iter().find(|l| l.eq_ignore_ascii_case(want)) {
            return Some(l.clone());
        }
        let lang = want.split('-').next().unwrap_or(want);
        if lang.eq_ignore_ascii_case(default.split('-').next().unwrap_or(default)) {
            return Some(default.to_string());
        }
        have.iter().find(|l| l.split('-').next().is_some_and(|p| p.eq_ignore_ascii_case(lang))).cloned()
    };
    if let Some(l) = query.and_then(find) {
        return l;
    }
    let mut wanted: Vec<(f32, usize, &str)> = accept
        .unwrap_or("")
        .split(',')
        .enumerate()
        .filter_map(|(i, part)| {
            let mut it = part.split(';');
            let tag = it.next()?.trim();
            let q = it.find_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.parse::<f32>().ok())).unwrap_or(1.0);
            (q > 0.0).then_some((q, i, tag))
        })
        .collect();
    wanted.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    wanted.into_iter().find_map(|(_, _, t)| find(t)).unwrap_or_else(|| default.to_string())
}

fn text<'a>(p: &'a Published, locale: &str) -> &'a PostText {
    p.post.locales.get(locale).unwrap_or(&p.post.text)
}

/// Builds the page from every post (in publication order) at `now`.
pub(crate) fn build(cfg: &StatusPageConfig, posts: &[(String, Published)], locale: &str, now: i64) -> View {
    let names: BTreeMap<&str, &str> = cfg.components.iter().map(|c| (c.id.as_str(), c.name.as_str())).collect();
    let mut by_incident: BTreeMap<&str, Vec<(&String, &Published)>> = BTreeMap::new();
    for (id, p) in posts {
        by_incident.entry(p.incident.as_str()).or_default().push((id, p));
    }
    let mut state: BTreeMap<&str, ComponentState> = BTreeMap::new();
    let (mut active, mut history) = (Vec::new(), Vec::new());
    let since = now - i64::from(cfg.history_days) * 86_400_000;
    for (incident, list) in &by_incident {
        let Some((_, last)) = list.last() else { continue };
        let resolved = last.post.resolved;
        if !resolved {
            // Each component in the state of the newest post that names it.
            let mut latest: BTreeMap<&str, ComponentState> = BTreeMap::new();
            for (_, p) in list {
                for c in &p.post.components {
                    latest.insert(c.as_str(), p.post.state);
                }
            }
            for (c, s) in latest {
                let e = state.entry(c).or_insert(ComponentState::Operational);
                *e = (*e).max(s);
            }
        } else if last.at < since {
            continue;
        }
        let comps: BTreeSet<&str> =
            list.iter().flat_map(|(_, p)| p.post.components.iter().map(String::as_str)).collect();
        let worst = list.iter().filter(|(_, p)| !p.post.resolved).map(|(_, p)| p.post.state).max();
        let view = IncidentView {
            id: opaque("incident", incident),
            title: text(list[0].1, locale).title.clone(),
            state: if resolved {
                ComponentState::Operational
            } else {
                last.post.state.max(worst.unwrap_or(last.post.state))
            },
            resolved,
            components: comps.iter().map(|c| names.get(c).copied().unwrap_or(c).to_string()).collect(),
            started: rfc3339(list[0].1.at),
            updated: rfc3339(last.at),
            updates: list
                .iter()
                .rev()
                .map(|(id, p)| {
                    let t = text(p, locale);
                    UpdateView {
                        id: opaque("post", id),
                        at: rfc3339(p.at),
                        title: t.title.clone(),
                        body: t.body.clone(),
                        state: p.post.state,
                        resolved: p.post.resolved,
                    }
                })
                .collect(),
        };
        if resolved { history.push((last.at, view)) } else { active.push((last.at, view)) }
    }
    active.sort_by_key(|a| std::cmp::Reverse(a.0));
    history.sort_by_key(|a| std::cmp::Reverse(a.0));
    let components: Vec<ComponentView> = cfg
        .components
        .iter()
        .map(|c| ComponentView {
            id: c.id.clone(),
            name: c.name.clone(),
            group: c.group.clone(),
            state: state.get(c.id.as_str()).copied().unwrap_or(ComponentState::Operational),
        })
        .collect();
    let newest = posts.iter().map(|(_, p)| p.at).max();
    View {
        title: cfg.title.clone(),
        locale: locale.to_string(),
        locales: locales(posts, &cfg.default_locale).into_iter().collect(),
        updated: rfc3339(newest.unwrap_or(now)),
        overall: components.iter().map(|c| c.state).max().unwrap_or(ComponentState::Operational),
        components,
        active: active.into_iter().map(|(_, v)| v).collect(),
        history: history.into_iter().map(|(_, v)| v).collect(),
        history_days: cfg.history_days,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn have(ls: &[&str]) -> BTreeSet<String> {
        ls.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_locale_comes_from_the_query_then_accept_language_then_the_default() {
        let h = have(&["en", "zh-CN"]);
        assert_eq!(negotiate(Some("zh-CN"), Some("en"), &h, "en"), "zh-CN");
        assert_eq!(negotiate(Some("zh-cn"), None, &h, "en"), "zh-CN");
        assert_eq!(negotiate(Some("fr"), Some("zh-TW,zh;q=0.9"), &h, "en"), "zh-CN");
        assert_eq!(negotiate(None, Some("fr-FR, en-GB;q=0.8, zh-CN;q=0.9"), &h, "en"), "zh-CN");
        assert_eq!(negotiate(None, Some("fr, de;q=0.5"), &h, "en"), "en");
        assert_eq!(negotiate(None, Some("en-US"), &h, "en"), "en");
        assert_eq!(negotiate(None, Some("zh-CN;q=0, en"), &h, "en"), "en");
        assert_eq!(negotiate(None, None, &h, "zh-CN"), "zh-CN");
    }
}
