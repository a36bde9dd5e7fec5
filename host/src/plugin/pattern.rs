//! Host patterns: how grants and plugin declarations name the hosts a
//! notifier may reach, and how the two lists combine for display.

/// A host pattern from a grant or a plugin's declaration.
///
/// Syntax: `host`, `host:port`, `*.domain` (subdomains only), `*` (any
/// host), each optionally prefixed by `http://` or `https://`. Without a
/// scheme a pattern means `https`; without a port it means the scheme's
/// default port (443 for https, 80 for http). So `hooks.slack.com` allows
/// only `https://hooks.slack.com:443`; cleartext or another port must be
/// written out (`http://127.0.0.1:8080`). A bare `*` alone matches every
/// scheme and port. Why this small syntax: operators read and write these by
/// hand, and a secret injected for a host must never go out in cleartext
/// or to another service on the same host unless someone wrote it down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostPattern {
    /// `None` only for the bare `*` pattern.
    scheme: Option<Scheme>,
    host: HostMatch,
    /// `None` only for the bare `*` pattern.
    port: Option<u16>,
    text: String,
}

/// The URL schemes a notifier may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Scheme {
    Http,
    Https,
}

impl Scheme {
    /// Parse a request's or pattern's scheme (case-insensitive).
    pub(crate) fn parse(s: &str) -> Option<Scheme> {
        match s.to_ascii_lowercase().as_str() {
            "http" => Some(Scheme::Http),
            "https" => Some(Scheme::Https),
            _ => None,
        }
    }

    /// The port used when a URL or pattern names none.
    pub(crate) fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    /// Lower-case name as written in URLs.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
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
            scheme =
                Some(Scheme::parse(sch).ok_or_else(|| format!("scheme `{sch}` is not supported (use http or https)"))?);
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
        if host == HostMatch::Any && scheme.is_none() && port.is_none() {
            return Ok(HostPattern { scheme: None, host, port: None, text });
        }
        let scheme = scheme.unwrap_or(Scheme::Https);
        let port = port.unwrap_or(scheme.default_port());
        Ok(HostPattern { scheme: Some(scheme), host, port: Some(port), text })
    }

    /// Does this pattern allow `scheme://host:port`?
    pub(crate) fn matches(&self, scheme: Scheme, host: &str, port: u16) -> bool {
        if let Some(s) = self.scheme
            && s != scheme
        {
            return false;
        }
        if let Some(p) = self.port
            && p != port
        {
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

    use Scheme::{Http, Https};

    #[test]
    fn patterns_match_hosts_ports_and_schemes() {
        let p = HostPattern::parse("hooks.slack.com").unwrap();
        assert!(p.matches(Https, "hooks.slack.com", 443));
        assert!(!p.matches(Https, "evil-hooks.slack.com", 443));
        let w = HostPattern::parse("*.example.com").unwrap();
        assert!(w.matches(Https, "a.example.com", 443));
        assert!(!w.matches(Https, "example.com", 443));
        assert!(!w.matches(Https, "aexample.com", 443));
        let s = HostPattern::parse("https://api.example.com:8443").unwrap();
        assert!(s.matches(Https, "api.example.com", 8443));
        assert!(!s.matches(Http, "api.example.com", 8443));
        assert!(!s.matches(Https, "api.example.com", 443));
        assert!(HostPattern::parse("*").unwrap().matches(Http, "x", 1));
        assert!(HostPattern::parse("a*.com").is_err());
        assert!(HostPattern::parse("example.com/path").is_err());
        assert!(HostPattern::parse("ftp://example.com").is_err());
        assert!(HostPattern::parse("http://[::1]:80").unwrap().matches(Http, "::1", 80));
    }

    #[test]
    fn a_pattern_without_scheme_means_https_on_443_only() {
        let p = HostPattern::parse("hooks.slack.com").unwrap();
        assert!(p.matches(Https, "hooks.slack.com", 443));
        assert!(!p.matches(Http, "hooks.slack.com", 80), "no cleartext by default");
        assert!(!p.matches(Http, "hooks.slack.com", 443));
        assert!(!p.matches(Https, "hooks.slack.com", 8443), "no other port by default");
        let w = HostPattern::parse("*.example.com").unwrap();
        assert!(!w.matches(Http, "a.example.com", 80));
        // A port without a scheme is still https only.
        let p = HostPattern::parse("127.0.0.1:8080").unwrap();
        assert!(p.matches(Https, "127.0.0.1", 8080));
        assert!(!p.matches(Http, "127.0.0.1", 8080));
        assert!(!HostPattern::parse("[::1]:80").unwrap().matches(Http, "::1", 80));
    }

    #[test]
    fn an_explicit_scheme_sets_the_default_port() {
        let p = HostPattern::parse("http://127.0.0.1").unwrap();
        assert!(p.matches(Http, "127.0.0.1", 80));
        assert!(!p.matches(Http, "127.0.0.1", 8080));
        assert!(!p.matches(Https, "127.0.0.1", 443));
        let p = HostPattern::parse("http://127.0.0.1:8080").unwrap();
        assert!(p.matches(Http, "127.0.0.1", 8080));
        assert!(!p.matches(Https, "127.0.0.1", 8080));
        let p = HostPattern::parse("HTTPS://Api.Example.com").unwrap();
        assert!(p.matches(Https, "api.example.com", 443));
    }
}
