//! A target's delivery settings as written (`concurrency`, breaker, `retry_for`)
//! and its send budget: `rate = "100/min"` and `daily = 5000`; and the send
//! budgets of the customer channels, `[budgets.channel.sms]` with the same two
//! keys, which every customer message on that channel counts against as well
//! as its target's budget.
//!
//! A budget never drops a message: a message over it waits in the outbox
//! until every budget it counts against allows it (see `incident::budget`).

use super::Delivery;
use super::model::{BudgetsDecl, Str, TargetDecl};
use crate::diag::{Diagnostic, Source};
use crate::playbook::types::Channel;
use serde::Serialize;
use serde_spanned::Spanned;
use std::collections::BTreeMap;
use std::time::Duration;

/// How many messages a target may send per window and per UTC day.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Budget {
    /// At most `count` messages in any window of `per`; `None`: unlimited.
    pub rate: Option<Rate>,
    /// At most this many messages per UTC day, counted in the journal's store
    /// so a restart does not reset it; `None`: unlimited.
    pub daily: Option<u32>,
}

impl Budget {
    /// Whether the target has any budget at all.
    pub fn is_limited(&self) -> bool {
        self.rate.is_some() || self.daily.is_some()
    }
}

/// `count` messages in any window of `per`.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Rate {
    /// Messages allowed per window (at least 1).
    pub count: u32,
    /// The window's length.
    pub per: Duration,
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.per.as_secs() {
            1 => write!(f, "{}/s", self.count),
            60 => write!(f, "{}/min", self.count),
            3600 => write!(f, "{}/h", self.count),
            _ => write!(f, "{}/{}", self.count, humantime::format_duration(self.per)),
        }
    }
}

impl std::str::FromStr for Rate {
    type Err = String;
    /// `100/min`, `10/s`, `1000/h`, `100/day` or `5/30s`.
    fn from_str(s: &str) -> Result<Self, String> {
        let how = "write it as COUNT/WINDOW like 100/min, 10/s, 1000/h or 5/30s";
        let (n, w) = s.split_once('/').ok_or_else(|| format!("bad rate `{s}`: {how}"))?;
        let count: u32 = n.trim().parse().ok().filter(|n| *n > 0).ok_or_else(|| {
            format!("bad rate `{s}`: the count `{}` must be a whole number of at least 1; {how}", n.trim())
        })?;
        let per = match w.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            "d" | "day" => Duration::from_secs(86_400),
            other => crate::playbook::types::parse_duration(other).map_err(|e| format!("bad rate `{s}`: {e}"))?,
        };
        if per < Duration::from_secs(1) {
            return Err(format!("bad rate `{s}`: the window must be at least 1s; {how}"));
        }
        Ok(Rate { count, per })
    }
}

/// The delivery settings of target `name`, with positioned diagnostics for bad values.
pub(super) fn delivery(name: &str, d: &TargetDecl, src: &Source, diags: &mut Vec<Diagnostic>) -> Delivery {
    let def = Delivery::default();
    let mut duration = |v: &Option<super::model::Str>, default: Duration| match v {
        None => default,
        Some(c) => crate::playbook::types::parse_duration(c.get_ref()).unwrap_or_else(|e| {
            diags.push(src.at(c.span(), e));
            default
        }),
    };
    let breaker_cooldown = duration(&d.breaker_cooldown, def.breaker_cooldown);
    let retry_for = duration(&d.retry_for, def.retry_for);
    let budget = budget(&format!("targets.{name}"), d.rate.as_ref(), d.daily.as_ref(), src, diags);
    Delivery {
        concurrency: d.concurrency.map_or(def.concurrency, |n| n.max(1) as usize),
        breaker_failures: d.breaker_failures.map_or(def.breaker_failures, |n| n.max(1)),
        breaker_cooldown,
        retry_for,
        budget,
    }
}

/// The budget written as `rate` and `daily` in table `table`, with positioned
/// diagnostics for bad values (an unlimited half for each bad one).
fn budget(
    table: &str,
    rate: Option<&Str>,
    daily: Option<&Spanned<i64>>,
    src: &Source,
    diags: &mut Vec<Diagnostic>,
) -> Budget {
    let rate = rate.and_then(|r| {
        r.get_ref().parse::<Rate>().map_err(|e| diags.push(src.at(r.span(), format!("`{table}.rate`: {e}")))).ok()
    });
    let daily = daily.and_then(|n| match u32::try_from(*n.get_ref()) {
        Ok(v) if v >= 1 => Some(v),
        _ => {
            diags.push(src.at(
                n.span(),
                format!(
                    "`{table}.daily` is {}: it must be a whole number of messages per UTC day, at least 1 (leave it out for no daily budget)",
                    n.get_ref()
                ),
            ));
            None
        }
    });
    Budget { rate, daily }
}

/// The customer channels' budgets from `[budgets.channel.NAME]`; an unknown
/// channel or a table with neither `rate` nor `daily` is a positioned error.
pub(super) fn channels(decl: &BudgetsDecl, src: &Source, diags: &mut Vec<Diagnostic>) -> BTreeMap<Channel, Budget> {
    let mut out = BTreeMap::new();
    for (name, c) in &decl.channel {
        let table = format!("budgets.channel.{name}");
        let channel = match name.parse::<Channel>() {
            Ok(ch) => ch,
            Err(e) => {
                diags.push(src.at(c.span(), format!("`[{table}]`: {e}")));
                continue;
            }
        };
        let d = c.get_ref();
        if d.rate.is_none() && d.daily.is_none() {
            diags.push(src.at(
                c.span(),
                format!("`[{table}]` sets no budget: give rate = \"COUNT/WINDOW\" (like 100/min), daily = N, or both"),
            ));
            continue;
        }
        out.insert(channel, budget(&table, d.rate.as_ref(), d.daily.as_ref(), src, diags));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::load_source;
    use super::*;
    use std::path::Path;

    #[test]
    fn rates_parse_in_the_usual_units() {
        let r: Rate = "100/min".parse().unwrap();
        assert_eq!((r.count, r.per), (100, Duration::from_secs(60)));
        assert_eq!(r.to_string(), "100/min");
        assert_eq!("10/s".parse::<Rate>().unwrap().per, Duration::from_secs(1));
        assert_eq!("5/30s".parse::<Rate>().unwrap().per, Duration::from_secs(30));
        assert_eq!("1000/h".parse::<Rate>().unwrap().per, Duration::from_secs(3600));
        assert!("0/min".parse::<Rate>().unwrap_err().contains("at least 1"));
        assert!("100".parse::<Rate>().unwrap_err().contains("COUNT/WINDOW"));
        assert!("100/fortnight".parse::<Rate>().unwrap_err().contains("bad duration"));
        assert!("100/500ms".parse::<Rate>().unwrap_err().contains("at least 1s"));
    }

    #[test]
    fn a_budget_is_read_from_the_target_and_bad_values_are_positioned() {
        let load = |extra: &str| {
            let text = format!("[targets.customers]\nplugin = \"log\"\n{extra}\n");
            load_source(Source::new("crisis.toml", text), None, Path::new("."))
                .map_err(|ds| ds.iter().map(|d| d.to_string()).collect::<Vec<_>>())
        };
        let c = load("rate = \"100/min\"\ndaily = 5000").unwrap();
        let b = c.targets["customers"].delivery.budget;
        assert_eq!(b.rate, Some(Rate { count: 100, per: Duration::from_secs(60) }));
        assert_eq!(b.daily, Some(5000));
        assert!(!load("").unwrap().targets["customers"].delivery.budget.is_limited());
        let m = load("rate = \"lots\"").unwrap_err();
        assert!(m[0].starts_with("crisis.toml:3:8: `targets.customers.rate`: bad rate `lots`"), "{m:?}");
        let m = load("daily = 0").unwrap_err();
        assert!(m[0].starts_with("crisis.toml:3:9: `targets.customers.daily` is 0"), "{m:?}");
    }

    #[test]
    fn channel_budgets_are_read_by_channel_and_bad_ones_are_positioned() {
        let load = |extra: &str| {
            let text = format!("[targets.customers]\nplugin = \"log\"\n{extra}\n");
            load_source(Source::new("crisis.toml", text), None, Path::new("."))
                .map_err(|ds| ds.iter().map(|d| d.to_string()).collect::<Vec<_>>())
        };
        let c = load("[budgets.channel.sms]\nrate = \"100/min\"\n[budgets.channel.email]\ndaily = 5000").unwrap();
        assert_eq!(c.channel_budgets[&Channel::Sms].rate, Some(Rate { count: 100, per: Duration::from_secs(60) }));
        assert_eq!(c.channel_budgets[&Channel::Email], Budget { rate: None, daily: Some(5000) });
        assert!(!c.channel_budgets.contains_key(&Channel::Phone));
        assert!(load("").unwrap().channel_budgets.is_empty());
        let m = load("[budgets.channel.pigeon]\nrate = \"1/min\"").unwrap_err();
        assert!(m[0].contains("`[budgets.channel.pigeon]`: unknown customer channel `pigeon`: expected one of phone, sms, email, social"), "{m:?}");
        let m = load("[budgets.channel.sms]\nrate = \"often\"").unwrap_err();
        assert!(m[0].starts_with("crisis.toml:4:8: `budgets.channel.sms.rate`: bad rate `often`"), "{m:?}");
        let m = load("[budgets.channel.sms]\ndaily = -3").unwrap_err();
        assert!(m[0].starts_with("crisis.toml:4:9: `budgets.channel.sms.daily` is -3"), "{m:?}");
        let m = load("[budgets.channel]\nsms = {}").unwrap_err();
        assert!(m[0].contains("`[budgets.channel.sms]` sets no budget"), "{m:?}");
        let m = load("[budgets.channel.sms]\nrate = \"1/min\"\nburst = 3").unwrap_err();
        assert!(m[0].starts_with("crisis.toml:5:1: unknown key `burst` in crisis.toml"), "{m:?}");
        // The same inside a target's table.
        let m = load("burts = 3").unwrap_err();
        assert!(m[0].starts_with("crisis.toml:3:1: unknown key `burts` in crisis.toml"), "{m:?}");
    }
}
