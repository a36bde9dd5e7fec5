//! `[store]`: which database holds the journal, and how long a node's claim
//! on shared work lasts when several daemons share a PostgreSQL database.

use super::StoreBackend;
use super::model::StoreDecl;
use crate::diag::{Diagnostic, Source};
use std::collections::BTreeMap;
use std::time::Duration;

/// `[store] lease` when crisis.toml does not set it: long enough that a
/// heartbeat (every second) missed under load does not hand a live node's
/// work to another, short enough that a dead node's pages go out soon.
pub(crate) const DEFAULT_LEASE: Duration = Duration::from_secs(10);

/// The shortest lease: at least two heartbeats must fit in one.
const MIN_LEASE: Duration = Duration::from_secs(2);

/// The backend and lease of `[store]`, with a diagnostic for each bad value.
pub(super) fn build(
    decl: Option<&StoreDecl>,
    secrets: &BTreeMap<String, super::SecretRef>,
    src: &Source,
    diags: &mut Vec<Diagnostic>,
) -> (StoreBackend, Duration) {
    let lease = match decl.and_then(|s| s.lease.as_ref()) {
        None => DEFAULT_LEASE,
        Some(l) => match crate::playbook::types::parse_duration(l.get_ref()) {
            Ok(d) if d >= MIN_LEASE => d,
            Ok(_) => {
                diags.push(src.at(
                    l.span(),
                    "[store] lease must be at least 2s: nodes renew their leases every second, so a shorter lease would hand a live node's work to another; write e.g. lease = \"10s\"",
                ));
                DEFAULT_LEASE
            }
            Err(e) => {
                diags.push(src.at(l.span(), format!("[store] lease: {e}")));
                DEFAULT_LEASE
            }
        },
    };
    let backend = match decl.and_then(|s| s.url.as_ref()) {
        None => StoreBackend::Sqlite,
        Some(u) => match u.get_ref().strip_prefix("secret:") {
            Some(name) if secrets.contains_key(name) => StoreBackend::Postgres { url_secret: name.to_string() },
            Some(name) => {
                diags.push(src.at(
                    u.span(),
                    format!("unknown secret `{name}` in [store] url: declare [secrets.{name}] with env or file"),
                ));
                StoreBackend::Sqlite
            }
            // The value itself is not quoted back: it may hold a password.
            None => {
                diags.push(src.at(u.span(), "inline URL in [store] url: the URL holds a password, so write url = \"secret:NAME\" and declare [secrets.NAME] with env or file holding postgres://USER:PASSWORD@HOST/DB"));
                StoreBackend::Sqlite
            }
        },
    };
    (backend, lease)
}

#[cfg(test)]
mod tests {
    use crate::diag::Source;
    use std::path::Path;
    use std::time::Duration;

    fn load(text: &str) -> Result<crate::config::Config, Vec<String>> {
        crate::config::load_source(Source::new("crisis.toml", text), None, Path::new("."))
            .map_err(|d| d.iter().map(|d| d.to_string()).collect())
    }

    #[test]
    fn the_lease_defaults_to_ten_seconds_and_refuses_less_than_two_or_nonsense() {
        assert_eq!(load("").unwrap().store_lease, super::DEFAULT_LEASE);
        assert_eq!(load("[store]\nlease = \"3s\"\n").unwrap().store_lease, Duration::from_secs(3));
        let m = load("[store]\nlease = \"500ms\"\n").err().unwrap();
        assert!(m[0].contains("[store] lease must be at least 2s"), "{m:?}");
        let m = load("[store]\nlease = \"soon\"\n").err().unwrap();
        assert!(m[0].contains("[store] lease"), "{m:?}");
    }
}
