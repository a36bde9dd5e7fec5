//! `appease-script`: the messages one customer receives about an incident.
//!
//! Messages are chosen by complaint category, customer segment and tier,
//! severity and locale (`zh-CN` and `en` templates; other locales fall back
//! to `en`, other Chinese locales to `zh-CN`). VIP customers get a personal
//! tone and a compensation line. The plugin never sees contact details: it
//! returns text, and the host delivers it on the customer's channel.
//!
//! Config keys:
//! - `brand`: company name used in messages (default "our team").
//! - `compensation`: VIP compensation offer text (default by locale).
//! - `standard_compensation`: offer for standard customers on sev1/sev2 (none by default).

use crisis_plugin_sdk::appeasement::*;

struct AppeaseScript;

#[derive(Clone, Copy, PartialEq)]
enum Lang {
    Zh,
    En,
}

fn lang_of(locale: &str) -> Lang {
    if locale.to_ascii_lowercase().starts_with("zh") { Lang::Zh } else { Lang::En }
}

/// What happened, in the customer's words, per category.
fn issue_line(cat: &Category, lang: Lang) -> &'static str {
    match (cat, lang) {
        (Category::ProductQuality, Lang::En) => "a quality problem with one of our products",
        (Category::ServiceAttitude, Lang::En) => "the way you were treated by our staff",
        (Category::ServiceProcess, Lang::En) => "a disruption in our service",
        (Category::Price, Lang::En) => "an error in pricing or billing",
        (Category::Other, Lang::En) => "a problem affecting your experience",
        (Category::ProductQuality, Lang::Zh) => "我们的一款产品出现了质量问题",
        (Category::ServiceAttitude, Lang::Zh) => "我们的工作人员在服务态度上的不当之处",
        (Category::ServiceProcess, Lang::Zh) => "我们的服务流程出现了中断",
        (Category::Price, Lang::Zh) => "价格或账单出现了差错",
        (Category::Other, Lang::Zh) => "影响您使用体验的问题",
    }
}

/// What we are doing about it, per category.
fn action_line(cat: &Category, lang: Lang) -> &'static str {
    match (cat, lang) {
        (Category::ProductQuality, Lang::En) => "We have stopped shipments of the affected batch and will replace or refund any affected item.",
        (Category::ServiceAttitude, Lang::En) => "A manager is reviewing what happened and will follow up with you personally.",
        (Category::ServiceProcess, Lang::En) => "Our engineers are working on it now and we will update you as soon as it is restored.",
        (Category::Price, Lang::En) => "Any overcharge will be refunded automatically; you do not need to do anything.",
        (Category::Other, Lang::En) => "Our team is looking into it and will keep you informed.",
        (Category::ProductQuality, Lang::Zh) => "我们已暂停受影响批次的发货，受影响的商品将为您免费更换或退款。",
        (Category::ServiceAttitude, Lang::Zh) => "相关负责人正在调查此事，并将亲自与您联系。",
        (Category::ServiceProcess, Lang::Zh) => "我们的工程师正在全力处理，恢复后会第一时间通知您。",
        (Category::Price, Lang::Zh) => "多收的费用将自动退还，您无需进行任何操作。",
        (Category::Other, Lang::Zh) => "我们的团队正在处理，并会及时向您通报进展。",
    }
}

fn is_vip(tier: &str) -> bool {
    matches!(tier.to_ascii_lowercase().as_str(), "vip" | "platinum" | "gold")
}

impl Appeasement for AppeaseScript {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "appease-script".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Customer messages by category, segment, tier, severity and locale (zh-CN, en)".into(),
            allowed_hosts: Vec::new(),
            config_keys: vec!["brand".into(), "compensation".into(), "standard_compensation".into()],
        }
    }

    fn compose(ctx: Invocation, inc: Incident, who: Customer) -> Result<Vec<Message>, PluginError> {
        let lang = lang_of(&who.locale);
        let locale = match lang { Lang::Zh => "zh-CN", Lang::En => "en" }.to_string();
        let vip = is_vip(&who.tier);
        let severe = inc.severity.rank() <= 2;
        let brand = config("brand").unwrap_or_else(|| match lang {
            Lang::Zh => "我们".into(),
            Lang::En => "our team".into(),
        });
        let issue = issue_line(&inc.category, lang);
        let action = action_line(&inc.category, lang);
        // Segment shapes the opening: customers known to be affected get a
        // direct apology; others get a heads-up.
        let affected = matches!(who.segment.to_ascii_lowercase().as_str(), "affected" | "impacted");

        let compensation = if vip {
            Some(config("compensation").unwrap_or_else(|| match lang {
                Lang::Zh => "作为补偿，我们已为您的账户添加一张无门槛优惠券，并安排专属客服经理全程跟进。".into(),
                Lang::En => "As an apology, we have added a credit to your account and assigned a dedicated account manager to you.".into(),
            }))
        } else if severe {
            config("standard_compensation")
        } else {
            None
        };

        let greeting = match (lang, vip) {
            (Lang::Zh, true) => "尊敬的贵宾客户，您好：".to_string(),
            (Lang::Zh, false) => "您好：".to_string(),
            (Lang::En, true) => "Dear valued customer,".to_string(),
            (Lang::En, false) => "Hello,".to_string(),
        };
        let opening = match (lang, affected, severe) {
            (Lang::Zh, true, true) => format!("非常抱歉，{issue}，给您带来了严重不便，{brand}向您郑重致歉。"),
            (Lang::Zh, true, false) => format!("很抱歉，{issue}，给您带来了不便。"),
            (Lang::Zh, false, _) => format!("特此告知：近期出现了{issue}，您的账户可能会受到影响。"),
            (Lang::En, true, true) => format!("We are very sorry: {issue} has seriously disrupted your experience, and {brand} apologises sincerely."),
            (Lang::En, true, false) => format!("We are sorry about {issue} and the inconvenience it caused."),
            (Lang::En, false, _) => format!("We want to let you know about {issue}, which may affect your account."),
        };
        let personal = match (lang, vip) {
            (Lang::Zh, true) => "您的专属客服经理会在今天内亲自致电回访。",
            (Lang::En, true) => "Your account manager will call you personally today.",
            (Lang::Zh, false) => "如有疑问，请回复此消息联系客服。",
            (Lang::En, false) => "If you have questions, reply to this message to reach our support team.",
        };
        let reference = match lang {
            Lang::Zh => format!("（事件编号：{}）", inc.id),
            Lang::En => format!("(Reference: {})", inc.id),
        };

        let mut parts = vec![opening, action.to_string()];
        if let Some(c) = &compensation {
            parts.push(c.clone());
        }
        parts.push(personal.to_string());
        let sep = if lang == Lang::Zh { "" } else { " " };
        let body_core = parts.join(sep);

        let (subject, body) = match who.channel {
            Channel::Email => {
                let subject = match lang {
                    Lang::Zh => format!("关于{}的说明与致歉", inc.title),
                    Lang::En => format!("An update and apology about {}", inc.title),
                };
                (Some(subject), format!("{greeting}\n\n{body_core}\n\n{reference}"))
            }
            // Short channels: no greeting line breaks, reference at the end.
            Channel::Sms | Channel::Social => (None, format!("{greeting}{sep}{body_core}{reference}")),
            // Phone: a call script for the agent, who delivers it.
            Channel::Phone => {
                let intro = match lang {
                    Lang::Zh => "【致电话术】",
                    Lang::En => "[Call script] ",
                };
                (None, format!("{intro}{greeting}{sep}{body_core}"))
            }
        };
        if matches!(ctx.mode, RunMode::Drill) {
            log(Level::Debug, &format!("drill compose for customer {}", who.id));
        }
        Ok(vec![Message { channel: who.channel, locale, subject, body, compensation }])
    }
}

crisis_plugin_sdk::export_appeasement!(AppeaseScript);
