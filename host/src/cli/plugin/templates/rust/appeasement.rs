//! `{{name}}`: a crisis appeasement script. For one customer it composes
//! the messages they receive, on their channel and in their locale. No
//! network: this world only composes text.

use crisis_plugin_sdk::appeasement::*;

struct Plugin;

impl Appeasement for Plugin {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "{{name}}".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "one apology message per customer, with a credit for VIPs".into(),
            allowed_hosts: Vec::new(),
            config_keys: vec!["compensation".into()],
        }
    }

    fn compose(_ctx: Invocation, inc: Incident, who: Customer) -> Result<Vec<Message>, PluginError> {
        if who.segment != "affected" {
            // Customers outside the affected segment get nothing.
            return Ok(Vec::new());
        }
        let compensation = (who.tier == "vip")
            .then(|| config("compensation").unwrap_or_else(|| "We have added a credit to your account.".into()));
        let subject = match who.channel {
            Channel::Email => Some(format!("About {}", inc.title)),
            _ => None,
        };
        let body = format!("We are sorry: {}. We are working on it and will keep you updated.", inc.summary.trim_end_matches('.'));
        Ok(vec![Message { channel: who.channel, locale: who.locale, subject, body, compensation }])
    }
}

crisis_plugin_sdk::export_appeasement!(Plugin);
