//! `{{name}}`: a crisis complaint classifier. For one complaint it says
//! which category the customer's words belong to, how sure it is, and why.
//! No network: this world only reads the text the host gives it.

use crisis_plugin_sdk::classifier::*;

struct Plugin;

/// (category, keywords): the first category with a keyword in the text wins.
const RULES: &[(Category, &[&str])] = &[
    (Category::Price, &["refund", "charged", "price", "退款", "扣款", "价格"]),
    (Category::ProductQuality, &["broken", "defective", "quality", "坏了", "质量"]),
    (Category::ServiceAttitude, &["rude", "attitude", "态度"]),
    (Category::ServiceProcess, &["waited", "delay", "排队", "延误"]),
];

impl Classifier for Plugin {
    fn describe() -> PluginInfo {
        PluginInfo::new("{{name}}", env!("CARGO_PKG_VERSION"), "classifies complaints by a few keywords")
    }

    fn classify(_ctx: Invocation, text: String, _channel: Channel, _locale: String) -> Result<Classification, PluginError> {
        let lower = text.to_lowercase();
        for (category, keywords) in RULES {
            if let Some(k) = keywords.iter().find(|k| lower.contains(*k)) {
                return Ok(Classification::new(*category, 0.8, vec![("matched".into(), k.to_string())]));
            }
        }
        // No keyword: say so with a low confidence; the host falls back to `other`.
        Ok(Classification::new(Category::Other, 0.1, Vec::new()))
    }
}

crisis_plugin_sdk::export_classifier!(Plugin);
