//! Host patterns: how grants and plugin declarations name the hosts a
//! notifier may reach, and how the two lists combine for display.

/// A host pattern from a grant or a plugin's declaration.
///
/// Syntax: `host`, `host:port`, `*.domain` (subdomains only), `*` (any
/// host), each optionally prefixed by `http://` or `https://` to restrict
/// the scheme. Without a port any port matches. Why this small syntax:
/// operators read and write these by hand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostPattern {
    scheme: Option<String>,
    host: HostMatch,
    port: Option<u16>,
    text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostMatch {
    Any,
    Exact(String),
    /// `.example.com`: any subdomain.
    Suffix(String),
}

impl HostPattern {
    /// Parse a pattern; the error says what is wrong with it.
    pub(crate) fn parse(s: &str) -> Result<HostPattern, String> {
        let text = s.trim().to_string();
        let mut rest = text.as_str();
        let mut scheme = None;
        if let Some((sch, r)) = rest.split_once("://") {
            let sch = sch.to_ascii_lowercase();
            if sch != "http" && sch != "https" {
                return Err(format!("scheme `{sch}` is not supported (use http or https)"));
            }
            scheme = Some(sch);
            rest = r;
        }
        let rest = rest.trim_end_matches('/');
        if rest.contains('/') {
            return Err("a host pattern cannot contain a path".into());
        }
        if rest.is_empty() {
            return Err("empty host".into());
        }
        let (host, port) = if let Some(r) = rest.strip_prefix('[') {
            let (h, after) = r.split_once(']').ok_or("unclosed `[` in IPv6 address")?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p.parse::<u16>().map_err(|_| format!("bad port `{p}`"))?),
                None if after.is_empty() => None,
                None => return Err(format!("unexpected `{after}` after IPv6 address")),
            };
            (h.to_string(), port)
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p.parse::<u16>().map_err(|_| format!("bad port `{p}`"))?)),
                None => (rest.to_string(), None),
            }
        };
        let host = host.to_ascii_lowercase();
        let host = if host == "*" {
            HostMatch::Any
        } else if let Some(d) = host.strip_prefix("*.") {
            if d.is_empty() || d.contains('*') {
                return Err("wildcards are only allowed as a leading `*.`".into());
            }
            HostMatch::Suffix(format!(".{d}"))
        } else if host.contains('*') {
            return Err("wildcards are only allowed as a leading `*.`".into());
        } else {
            HostMatch::Exact(host)
        };
        Ok(HostPattern { scheme, host, port, text })
    }

    /// Does this pattern allow `scheme://host:port`?
    pub(crate) fn matches(&self, scheme: &str, host: &str, port: u16) -> bool {
        if let Some(s) = &self.scheme
            && s != scheme {
                return false;
            }
        if let Some(p) = self.port
            && p != port {
                return false;
            }
        match &self.host {
            HostMatch::Any => true,
            HostMatch::Exact(h) => h == host,
            HostMatch::Suffix(d) => host.ends_with(d.as_str()) && host.len() > d.len(),
        }
    }

    /// The pattern as written.
    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }
}

/// Display form of declared ∩ granted (exact pattern text; `*` on either
/// side defers to the other). Enforcement matches each request against both
/// lists; this is only what `list()` shows.
pub(crate) fn effective_hosts(declared: &[HostPattern], granted: &[HostPattern]) -> Vec<String> {
    let any = |l: &[HostPattern]| l.iter().any(|p| p.as_str() == "*");
    let mut out: Vec<String> = Vec::new();
    for g in granted {
        if any(declared) || declared.iter().any(|d| d.as_str() == g.as_str()) {
            out.push(g.as_str().to_string());
        }
    }
    if any(granted) {
        out.extend(declared.iter().map(|d| d.as_str().to_string()));
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_hosts_ports_and_schemes() {
        let p = HostPattern::parse("hooks.slack.com").unwrap();
        assert!(p.matches("https", "hooks.slack.com", 443));
        assert!(!p.matches("https", "evil-hooks.slack.com", 443));
        let w = HostPattern::parse("*.example.com").unwrap();
        assert!(w.matches("https", "a.example.com", 443));
        assert!(!w.matches("https", "example.com", 443));
        assert!(!w.matches("https", "aexample.com", 443));
        let s = HostPattern::parse("https://api.example.com:8443").unwrap();
        assert!(s.matches("https", "api.example.com", 8443));
        assert!(!s.matches("http", "api.example.com", 8443));
        assert!(!s.matches("https", "api.example.com", 443));
        assert!(HostPattern::parse("*").unwrap().matches("http", "x", 1));
        assert!(HostPattern::parse("a*.com").is_err());
        assert!(HostPattern::parse("example.com/path").is_err());
        assert!(HostPattern::parse("[::1]:80").unwrap().matches("http", "::1", 80));
    }
}
