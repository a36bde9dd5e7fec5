//! `keyword-classifier`: the built-in complaint classifier.
//!
//! Each category has a zh-CN and an en keyword list. Chinese keywords match
//! anywhere in the text; English ones match whole words or phrases,
//! ignoring case (a keyword ending in `*` is a stem: it matches any word
//! starting with it). The category with the most distinct matched keywords
//! wins; with none the answer is `other`.
//!
//! Confidence grows with the number of matches (1 match 0.6, 2 matches
//! 0.84, 3 matches 0.94) and shrinks when another category matched too (it
//! is multiplied by the winner's share of both scores). A tie goes to the
//! category listed first in [`LISTS`]. Text with no match is `other` with
//! confidence 0.2.
//!
//! Labels: `matched=<keyword>` for each matched keyword of the winner (at
//! most five), `runner-up=<category>` when another category matched, and
//! `lang=zh|en`, the language of the locale given (or `und` when empty).
//!
//! No config keys.

use crisis_plugin_sdk::classifier::*;

struct KeywordClassifier;

/// Keyword lists per category, in tie-break order: zh-CN, then en.
const LISTS: &[(Category, &[&str], &[&str])] = &[
    (
        Category::ProductQuality,
        &[
            "质量", "坏了", "损坏", "破损", "故障", "缺陷", "次品", "假货", "劣质", "变质", "过期", "不能用",
            "无法使用", "漏水", "异味", "发霉", "瑕疵", "裂了", "掉漆", "做工",
        ],
        &[
            "broken", "defect*", "faulty", "damaged", "quality", "doesn't work", "does not work", "stopped working",
            "malfunction*", "cracked", "leak*", "expired", "spoiled", "counterfeit", "fake", "rotten", "mold",
            "mould", "falls apart", "fell apart",
        ],
    ),
    (
        Category::Price,
        &[
            "价格", "价钱", "太贵", "收费", "乱收费", "多收", "扣费", "扣款", "重复扣款", "退款", "退钱", "账单",
            "费用", "差价", "涨价", "发票", "计费", "价保", "优惠券",
        ],
        &[
            "price*", "expensive", "overpriced", "overcharg*", "charged twice", "double charged", "charged me",
            "refund*", "bill", "billed", "billing", "invoice*", "fee", "fees", "discount*", "coupon*", "money back",
        ],
    ),
    (
        Category::ServiceAttitude,
        &[
            "态度", "不耐烦", "粗鲁", "无礼", "骂", "冷漠", "敷衍", "不理人", "爱答不理", "服务差", "嘲笑", "辱骂",
            "挂电话", "挂断", "歧视", "凶",
        ],
        &[
            "rude*", "impolite", "attitude", "unfriendly", "disrespect*", "yelled", "shouted", "insult*",
            "ignored me", "hung up", "arrogant", "unprofessional", "condescending", "dismissive", "sarcastic",
            "mocked",
        ],
    ),
    (
        Category::ServiceProcess,
        &[
            "排队", "等了", "等待", "太慢", "延迟", "延误", "迟迟", "没人处理", "没有回复", "无人回复", "流程",
            "手续", "繁琐", "转来转去", "推诿", "物流", "快递", "发货", "未送达", "送错", "预约", "无法登录",
        ],
        &[
            "waiting", "waited", "wait time", "delay*", "late delivery", "never arrived", "never delivered",
            "not delivered", "no response", "no reply", "nobody answered", "transferred", "on hold", "process",
            "procedure", "paperwork", "appointment", "shipping", "tracking", "outage", "can't log in",
            "cannot log in", "queue",
        ],
    ),
];

/// Whether `text` (already lower-cased, apostrophes normalised) contains the
/// English keyword as whole words; a trailing `*` makes it a stem.
fn matches_en(text: &str, keyword: &str) -> bool {
    let (needle, stem) = match keyword.strip_suffix('*') {
        Some(n) => (n, true),
        None => (keyword, false),
    };
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric());
    text.match_indices(needle).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + needle.len()..].chars().next();
        !word(before) && (stem || !word(after))
    })
}

/// Distinct keywords of each category found in `text`, in list order.
fn matches(text: &str) -> Vec<(Category, Vec<&'static str>)> {
    let lower = text.to_lowercase().replace(['\u{2019}', '\u{2018}'], "'");
    LISTS
        .iter()
        .map(|(cat, zh, en)| {
            let mut found: Vec<&'static str> = zh.iter().copied().filter(|k| text.contains(k)).collect();
            found.extend(en.iter().copied().filter(|k| matches_en(&lower, k)).map(|k| k.trim_end_matches('*')));
            (*cat, found)
        })
        .collect()
}

fn lang(locale: &str) -> &'static str {
    let l = locale.trim().to_ascii_lowercase();
    if l.is_empty() {
        "und"
    } else if l.starts_with("zh") {
        "zh"
    } else {
        "en"
    }
}

fn round2(x: f32) -> f32 {
    (x * 100.0).round() / 100.0
}

impl Classifier for KeywordClassifier {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "keyword-classifier",
            "0.1.0",
            "classifies complaints by zh-CN and en keywords into product-quality, service-attitude, service-process, price or other",
        )
    }

    fn classify(_ctx: Invocation, text: String, _channel: Channel, locale: String) -> Result<Classification, PluginError> {
        let mut scored = matches(&text);
        // Stable: on equal scores the category listed first stays first.
        scored.sort_by(|a, b| b.1.len().cmp(&a.1.len()));
        let mut labels = Vec::new();
        let (best, found) = &scored[0];
        if found.is_empty() {
            labels.push(("lang".to_string(), lang(&locale).to_string()));
            return Ok(Classification::new(Category::Other, 0.2, labels));
        }
        let top = found.len() as f32;
        let second = scored[1].1.len() as f32;
        let confidence = (1.0 - 0.4f32.powf(top)) * top / (top + second);
        labels.extend(found.iter().take(5).map(|k| ("matched".to_string(), k.to_string())));
        if second > 0.0 {
            labels.push(("runner-up".to_string(), scored[1].0.as_str().to_string()));
        }
        labels.push(("lang".to_string(), lang(&locale).to_string()));
        Ok(Classification::new(*best, round2(confidence), labels))
    }
}

crisis_plugin_sdk::export_classifier!(KeywordClassifier);
