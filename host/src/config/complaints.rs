//! `[complaints]` and `[[complaints.rule]]`: how customer complaints are
//! answered, escalated and followed up, and the keyword and regular
//! expression rules that classify them by category and locale.
//!
//! Every rule is checked when the configuration loads (and by `playbook
//! validate`): an unknown category, a bad regular expression or a rule with
//! neither keywords nor a pattern is an error at its path:line.

use crate::diag::{Diagnostic, Source};
use crate::playbook::types::{Category, is_locale, parse_duration};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A value as written, with where it is (the model's `Str`, without importing the model that imports this).
type Str = serde_spanned::Spanned<String>;

/// How long the customer may wait for a first answer unless `first_response` says otherwise.
pub const DEFAULT_FIRST_RESPONSE: Duration = Duration::from_secs(120);
/// When the follow-up goes out after resolution unless `follow_up` says otherwise.
pub const DEFAULT_FOLLOW_UP: Duration = Duration::from_secs(3 * 24 * 3600);
/// The longest complaint text accepted unless `max_text` says otherwise (characters).
pub const DEFAULT_MAX_TEXT: usize = 4000;

/// `[complaints]` as written.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct ComplaintsDecl {
    pub first_response: Option<Str>,
    pub follow_up: Option<Str>,
    /// The target customer messages are delivered through.
    pub target: Option<Str>,
    /// The appeasement plugin that composes first responses.
    pub composer: Option<Str>,
    /// The classifier plugin asked when no rule matched; `""` turns it off.
    pub classifier: Option<Str>,
    /// The rota (or target) told about a missed first response.
    pub owner_rota: Option<Str>,
    /// The rota (or target) escalated complaints are reported to.
    pub superior_rota: Option<Str>,
    pub escalate_tiers: Option<Vec<Str>>,
    pub escalate_categories: Option<Vec<Str>>,
    pub repeat_count: Option<u32>,
    pub repeat_within: Option<Str>,
    pub max_text: Option<usize>,
    #[serde(default)]
    pub rule: Vec<RuleDecl>,
}

/// One `[[complaints.rule]]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleDecl {
    pub category: Str,
    pub locale: Option<Str>,
    #[serde(default)]
    pub keywords: Vec<Str>,
    pub regex: Option<Str>,
    /// 0.0 to 1.0; how sure a match makes the category (default 0.8).
    pub confidence: Option<f64>,
}

/// What a rule looks for in the complaint text.
#[derive(Debug, Clone)]
pub enum Matcher {
    /// Any of these words or phrases, compared case-insensitively.
    Keywords(Vec<String>),
    /// The pattern, compiled when the configuration loaded.
    Regex(regex::Regex),
}

/// A checked classification rule.
#[derive(Debug, Clone, Serialize)]
pub struct ComplaintRule {
    /// The category a match gives.
    pub category: Category,
    /// Only complaints of customers with this locale (its language part
    /// matches too: `zh` covers `zh-CN`); `None`: every locale.
    pub locale: Option<String>,
    /// What it looks for.
    #[serde(skip)]
    pub matcher: Option<Matcher>,
    /// How sure a match makes the category.
    pub confidence: f64,
    /// Where the rule is written (`path:line`), for explanations.
    pub at: String,
}

impl ComplaintRule {
    /// Whether the rule applies to a customer with `locale` and matches `text`.
    pub fn matches(&self, locale: &str, text: &str) -> bool {
        if let Some(want) = &self.locale {
            let lang = |l: &str| l.split('-').next().unwrap_or("").to_ascii_lowercase();
            let same = want.eq_ignore_ascii_case(locale) || (!want.contains('-') && lang(want) == lang(locale));
            if !same {
                return false;
            }
        }
        match &self.matcher {
            Some(Matcher::Keywords(words)) => {
                let lower = text.to_lowercase();
                words.iter().any(|w| lower.contains(&w.to_lowercase()))
            }
            Some(Matcher::Regex(re)) => re.is_match(text),
            None => false,
        }
    }
}

/// `[complaints]`, checked.
#[derive(Debug, Clone, Serialize)]
pub struct ComplaintsConfig {
    /// How long a customer may wait for the first answer.
    pub first_response: Duration,
    /// How long after resolution the follow-up message goes out.
    pub follow_up: Duration,
    /// The target that delivers customer messages; `None`: none is configured and
    /// first responses are recorded against the `log` notifier.
    pub target: Option<String>,
    /// The appeasement plugin that composes first responses; `None`: the plain template.
    pub composer: Option<String>,
    /// The classifier plugin asked when no rule matched (none: straight to `other`).
    pub classifier: Option<String>,
    /// Told about a missed first response: a rota's on-call person, or a target.
    pub owner: Option<String>,
    /// Escalated complaints are reported here: a rota's on-call person, or a target.
    pub superior: Option<String>,
    /// Customer tiers whose complaints are escalated at once.
    pub escalate_tiers: Vec<String>,
    /// Categories whose complaints are escalated at once.
    pub escalate_categories: Vec<Category>,
    /// This many complaints from one customer within `repeat_within` escalate the last one.
    pub repeat_count: u32,
    /// The window of `repeat_count`.
    pub repeat_within: Duration,
    /// The longest text accepted, in characters.
    pub max_text: usize,
    /// Classification rules, in the order they are tried.
    pub rules: Vec<ComplaintRule>,
}

impl Default for ComplaintsConfig {
    fn default() -> Self {
        ComplaintsConfig {
            first_response: DEFAULT_FIRST_RESPONSE,
            follow_up: DEFAULT_FOLLOW_UP,
            target: None,
            composer: None,
            classifier: None,
            owner: None,
            superior: None,
            escalate_tiers: vec!["vip".into()],
            escalate_categories: Vec::new(),
            repeat_count: 3,
            repeat_within: Duration::from_secs(7 * 24 * 3600),
            max_text: DEFAULT_MAX_TEXT,
            rules: Vec::new(),
        }
    }
}

/// Checks `[complaints]` against the declared target and roster rota names;
/// problems are pushed to `diags` at their path:line.
pub(crate) fn build(
    decl: Option<&ComplaintsDecl>,
    rotas: &[&str],
    targets: &[&str],
    src: &Source,
    diags: &mut Vec<Diagnostic>,
) -> ComplaintsConfig {
    let mut cfg = ComplaintsConfig::default();
    let who_exists = |n: &str| rotas.contains(&n) || targets.contains(&n);
    // Unset, the defaults name the embedded configuration's targets when they exist.
    let known = |n: &str| who_exists(n).then(|| n.to_string());
    cfg.target = known("customers");
    cfg.owner = known("oncall");
    cfg.superior = known("superiors");
    cfg.composer = Some("appease-script".into());
    cfg.classifier = Some("keyword-classifier".into());
    let Some(d) = decl else { return cfg };
    let duration = |s: &Option<Str>, default: Duration, diags: &mut Vec<Diagnostic>| match s {
        None => default,
        Some(v) => parse_duration(v.get_ref()).unwrap_or_else(|e| {
            diags.push(src.at(v.span(), format!("[complaints] {e}")));
            default
        }),
    };
    cfg.first_response = duration(&d.first_response, DEFAULT_FIRST_RESPONSE, diags);
    cfg.follow_up = duration(&d.follow_up, DEFAULT_FOLLOW_UP, diags);
    cfg.repeat_within = duration(&d.repeat_within, cfg.repeat_within, diags);
    if let Some(t) = &d.target {
        if targets.contains(&t.get_ref().as_str()) {
            cfg.target = Some(t.get_ref().clone());
        } else {
            let known = targets.join(", ");
            diags.push(src.at(
                t.span(),
                format!(
                    "[complaints] target `{}` is not declared: add [targets.{}] (known: {known})",
                    t.get_ref(),
                    t.get_ref()
                ),
            ));
        }
    }
    if let Some(c) = &d.composer {
        cfg.composer = Some(c.get_ref().clone()).filter(|c| !c.trim().is_empty());
    }
    if let Some(c) = &d.classifier {
        cfg.classifier = Some(c.get_ref().clone()).filter(|c| !c.trim().is_empty());
    }
    for (field, slot) in [(&d.owner_rota, &mut cfg.owner), (&d.superior_rota, &mut cfg.superior)] {
        let Some(v) = field else { continue };
        if who_exists(v.get_ref()) {
            *slot = Some(v.get_ref().clone());
        } else {
            diags.push(src.at(
                v.span(),
                format!("[complaints] `{}` is neither a rota of the roster nor a target: name a [rotas.NAME] or [targets.NAME]", v.get_ref()),
            ));
        }
    }
    if let Some(tiers) = &d.escalate_tiers {
        cfg.escalate_tiers = tiers.iter().map(|t| t.get_ref().clone()).collect();
    }
    for c in d.escalate_categories.iter().flatten() {
        match c.get_ref().parse::<Category>() {
            Ok(cat) => cfg.escalate_categories.push(cat),
            Err(e) => diags.push(src.at(c.span(), format!("[complaints] escalate_categories: {e}"))),
        }
    }
    if let Some(n) = d.repeat_count {
        cfg.repeat_count = n;
    }
    if let Some(n) = d.max_text {
        cfg.max_text = n.max(1);
    }
    for (i, r) in d.rule.iter().enumerate() {
        if let Some(rule) = build_rule(i + 1, r, src, diags) {
            cfg.rules.push(rule);
        }
    }
    cfg
}

fn build_rule(n: usize, r: &RuleDecl, src: &Source, diags: &mut Vec<Diagnostic>) -> Option<ComplaintRule> {
    let at = |span: std::ops::Range<usize>| {
        let (line, _) = src.position(span.start);
        format!("{}:{line}", src.path.display())
    };
    let category = match r.category.get_ref().parse::<Category>() {
        Ok(c) => c,
        Err(e) => {
            diags.push(src.at(r.category.span(), format!("[[complaints.rule]] {n}: {e}")));
            return None;
        }
    };
    if let Some(l) = &r.locale
        && !is_locale(l.get_ref())
    {
        diags.push(
            src.at(
                l.span(),
                format!("[[complaints.rule]] {n}: `{}` is not a locale tag like en or zh-CN", l.get_ref()),
            ),
        );
        return None;
    }
    let matcher = match (&r.regex, r.keywords.is_empty()) {
        (Some(_), false) => {
            diags.push(src.at(
                r.category.span(),
                format!("[[complaints.rule]] {n}: give either keywords or regex, not both; split it into two rules"),
            ));
            return None;
        }
        (None, true) => {
            diags.push(src.at(
                r.category.span(),
                format!("[[complaints.rule]] {n}: it matches nothing; add keywords = [\"...\"] or regex = \"...\""),
            ));
            return None;
        }
        (Some(p), true) => match regex::RegexBuilder::new(p.get_ref()).size_limit(1 << 20).build() {
            Ok(re) => Matcher::Regex(re),
            Err(e) => {
                let first = e.to_string().lines().last().unwrap_or_default().trim().to_string();
                diags.push(src.at(p.span(), format!("[[complaints.rule]] {n}: bad regex: {first}")));
                return None;
            }
        },
        (None, false) => {
            if let Some(empty) = r.keywords.iter().find(|k| k.get_ref().trim().is_empty()) {
                diags.push(
                    src.at(empty.span(), format!("[[complaints.rule]] {n}: an empty keyword matches every complaint")),
                );
                return None;
            }
            Matcher::Keywords(r.keywords.iter().map(|k| k.get_ref().clone()).collect())
        }
    };
    let confidence = r.confidence.unwrap_or(0.8);
    if !(0.0..=1.0).contains(&confidence) {
        diags.push(
            src.at(
                r.category.span(),
                format!("[[complaints.rule]] {n}: confidence {confidence} is not between 0 and 1"),
            ),
        );
        return None;
    }
    Some(ComplaintRule {
        category,
        locale: r.locale.as_ref().map(|l| l.get_ref().clone()),
        matcher: Some(matcher),
        confidence,
        at: at(r.category.span()),
    })
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, load_source};
    use crate::diag::{Diagnostic, Source};

    fn load_text(text: &str) -> Result<Config, Vec<Diagnostic>> {
        load_source(Source::new("crisis.toml", text), None, std::path::Path::new("."))
    }

    fn errors(toml: &str) -> String {
        match load_text(toml) {
            Ok(_) => String::new(),
            Err(d) => d.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n"),
        }
    }

    #[test]
    fn rules_classify_by_locale_and_bad_ones_are_named_at_their_line() {
        let cfg = load_text(
            "[[complaints.rule]]\ncategory = \"price\"\nlocale = \"en\"\nkeywords = [\"Refund\"]\n\
             [[complaints.rule]]\ncategory = \"product-quality\"\nlocale = \"zh\"\nregex = \"坏了|质量\"\n",
        )
        .unwrap();
        let rules = &cfg.complaints.rules;
        assert!(rules[0].matches("en-GB", "I want a refund"));
        assert!(!rules[0].matches("zh-CN", "I want a refund"));
        assert!(rules[1].matches("zh-CN", "手机坏了"));
        let e = errors("\n[[complaints.rule]]\ncategory = \"pricing\"\nkeywords = [\"x\"]\n");
        assert!(e.contains(":3:") && e.contains("pricing"), "{e}");
        let e = errors("[[complaints.rule]]\ncategory = \"price\"\nregex = \"(unclosed\"\n");
        assert!(e.contains(":3:") && e.contains("bad regex"), "{e}");
        let e = errors("[complaints]\nfirst_response = \"soon\"\n");
        assert!(e.contains(":2:") && e.contains("soon"), "{e}");
    }
}
