//! `[trigger] surge`: the complaint count that opens a playbook's incident.

use super::Validator;
use crate::playbook::model;
use crate::playbook::spec::{SurgeKey, SurgeSpec};
use crate::playbook::types::{Category, parse_duration};

const EXAMPLE: &str =
    "write it like surge = { category = \"product-quality\", count = 20, within = \"10m\", by = [\"labels.product\"] }";

impl Validator<'_, '_> {
    pub(super) fn surge(&mut self, raw: serde_spanned::Spanned<model::Surge>) -> Option<SurgeSpec> {
        let span = raw.span();
        let s = raw.into_inner();
        let missing = |v: bool, what: &str, this: &mut Self| {
            if !v {
                this.err_span(span.clone(), format!("[trigger] surge is missing `{what}`; {EXAMPLE}"));
            }
        };
        missing(s.category.is_some(), "category", self);
        missing(s.count.is_some(), "count", self);
        missing(s.within.is_some(), "within", self);
        let category = s.category.as_ref().and_then(|c| self.parse::<Category>(c));
        let count = s.count.as_ref().and_then(|c| match u32::try_from(*c.get_ref()) {
            Ok(n) if n >= 1 => Some(n),
            _ => {
                let d = self.doc.source.at(
                    c.span(),
                    format!(
                        "surge count {} is not a number of complaints: use a whole number from 1 up, like count = 20",
                        c.get_ref()
                    ),
                );
                self.diags.push(d);
                None
            }
        });
        let within = s.within.as_ref().and_then(|w| match parse_duration(w.get_ref()) {
            Ok(d) => Some(d),
            Err(e) => {
                self.err(w, format!("bad surge window: {e}"));
                None
            }
        });
        let mut by = Vec::new();
        let mut ok = true;
        for k in &s.by {
            match self.parse::<SurgeKey>(k) {
                Some(key) if by.contains(&key) => {
                    self.err(k, format!("surge group key `{key}` is listed twice: name it once"));
                    ok = false;
                }
                Some(key) => by.push(key),
                None => ok = false,
            }
        }
        let (category, count, within) = (category?, count?, within?);
        ok.then_some(SurgeSpec { category, count, within, by })
    }
}

#[cfg(test)]
mod tests {
    use crate::playbook::parse_one;
    use crate::playbook::spec::{SurgeKey, SurgeSpec};
    use crate::playbook::tests::{BASE, ctx};
    use crate::playbook::types::Category;
    use std::path::Path;
    use std::time::Duration;

    const LINE: &str = "dedup_key = \"{{ labels.service }}:{{ labels.region }}\"\n";

    /// The base playbook with `surge = VALUE` on line 11 of its `[trigger]`.
    fn with_surge(value: &str) -> String {
        BASE.replacen(LINE, &format!("{LINE}surge = {value}\n"), 1)
    }

    fn errors(value: &str) -> Vec<String> {
        match parse_one(Path::new("pb.toml"), &with_surge(value), &ctx()) {
            Ok(_) => Vec::new(),
            Err(mut d) => {
                crate::diag::sort(&mut d);
                d.iter().map(|d| format!("pb.toml:{}:{}: {}", d.line, d.col, d.message)).collect()
            }
        }
    }

    #[track_caller]
    fn one_error(value: &str, at: &str, needle: &str) {
        let e = errors(value);
        assert_eq!(e.len(), 1, "expected one error, got {e:#?}");
        assert!(e[0].starts_with(&format!("pb.toml:{at}: ")), "expected the error at {at}, got {e:#?}");
        assert!(e[0].contains(needle), "expected `{needle}` in {e:#?}");
    }

    #[test]
    fn a_surge_parses_into_its_typed_form() {
        let v = r#"{ category = "product-quality", count = 20, within = "10m", by = ["labels.product", "channel"] }"#;
        let pb = parse_one(Path::new("pb.toml"), &with_surge(v), &ctx()).unwrap();
        let surge = pb.trigger.unwrap().surge.unwrap();
        assert_eq!(
            surge,
            SurgeSpec {
                category: Category::ProductQuality,
                count: 20,
                within: Duration::from_secs(600),
                by: vec![SurgeKey::Label("product".into()), SurgeKey::Channel],
            }
        );
    }

    #[test]
    fn an_unknown_category_is_an_error_at_its_value() {
        one_error(
            r#"{ category = "quality", count = 20, within = "10m" }"#,
            "11:22",
            "unknown complaint category `quality`: expected one of product-quality",
        );
    }

    #[test]
    fn count_zero_is_an_error_at_its_value() {
        one_error(
            r#"{ category = "price", count = 0, within = "10m" }"#,
            "11:39",
            "surge count 0 is not a number of complaints",
        );
    }

    #[test]
    fn a_bad_window_is_an_error_at_its_value() {
        one_error(r#"{ category = "price", count = 5, within = "ten minutes" }"#, "11:51", "bad surge window");
    }

    #[test]
    fn group_keys_are_labels_channel_or_category() {
        one_error(
            r#"{ category = "price", count = 5, within = "1h", by = ["product"] }"#,
            "11:63",
            "unknown surge group key `product`: use labels.NAME (a complaint label), channel or category",
        );
        one_error(
            r#"{ category = "price", count = 5, within = "1h", by = ["channel", "channel"] }"#,
            "11:74",
            "surge group key `channel` is listed twice",
        );
    }

    #[test]
    fn missing_keys_are_named_at_the_surge_table() {
        let e = errors(r#"{ count = 5 }"#);
        assert_eq!(e.len(), 2, "{e:#?}");
        assert!(e.iter().all(|m| m.starts_with("pb.toml:11:9: [trigger] surge is missing")), "{e:#?}");
        assert!(e[0].contains("`category`") || e[1].contains("`category`"), "{e:#?}");
    }

    #[test]
    fn unknown_keys_in_the_surge_table_are_errors() {
        let e = errors(r#"{ category = "price", count = 5, within = "1h", per = "x" }"#);
        assert_eq!(e.len(), 1, "{e:#?}");
        assert!(e[0].contains("unknown key `per`"), "{e:#?}");
    }
}
