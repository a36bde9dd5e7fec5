use super::types::from_wit;
use super::*;
use crate::plugin::api::{Category, Channel, Invocation, RunMode};
use crate::plugin::bindings::v0_1_0::crisis::plugin::types as t;
use crate::plugin::bindings::v0_1_0::exports::crisis::plugin::classify as c;
use crate::plugin::test_fixtures as fx;
use crate::plugin::{EngineOptions, LoadError, PluginHostConfig, builtin_component};

fn host() -> PluginHost {
    let host = PluginHost::new(PluginHostConfig {
        load_builtins: false,
        engine: EngineOptions { pooling: false, ..EngineOptions::default() },
        ..PluginHostConfig::default()
    })
    .unwrap();
    let bytes = builtin_component(BUILTIN_CLASSIFIER).expect("the keyword classifier is built in");
    host.reload(BUILTIN_CLASSIFIER, bytes).unwrap();
    host
}

fn inv() -> Invocation {
    Invocation { invocation_id: "cls-1".into(), incident_id: "CMP-1".into(), ..Invocation::default() }
}

#[test]
fn categories_and_channels_round_trip_through_their_strings() {
    for s in Category::ALL {
        let c: Category = s.parse().unwrap();
        assert_eq!(<&str>::from(c), *s);
        assert_eq!(serde_json::to_value(c).unwrap(), serde_json::json!(s));
        assert_eq!(crate::playbook::types::Category::from(c).as_str(), *s);
        assert_eq!(Category::from(crate::playbook::types::Category::from(c)), c);
    }
    for s in Channel::ALL {
        let c = Channel::try_from(*s).unwrap();
        assert_eq!(c.to_string(), *s);
        assert_eq!(serde_json::to_value(c).unwrap(), serde_json::json!(s));
    }
    let e = "pricing".parse::<Category>().unwrap_err();
    assert!(e.contains("unknown complaint category `pricing`") && e.contains("product-quality, "), "{e}");
    let e = Channel::try_from("fax").unwrap_err();
    assert!(e.contains("`fax`") && e.contains("phone, sms, email, social"), "{e}");
}

#[test]
fn a_confidence_outside_zero_to_one_is_refused_with_the_value() {
    let wit = |confidence| c::Classification { category: t::Category::Price, confidence, labels: vec![] };
    assert_eq!(from_wit(wit(0.0)).unwrap().confidence, 0.0);
    assert_eq!(from_wit(wit(1.0)).unwrap().category, Category::Price);
    for bad in [f32::NAN, -0.1, 1.5, f32::INFINITY] {
        let Err(t::PluginError::Permanent(m)) = from_wit(wit(bad)) else { panic!("{bad} accepted") };
        assert!(m.contains("from 0.0 to 1.0") && m.contains("price"), "{m}");
    }
}

#[test]
fn the_builtin_classifies_zh_and_en_complaints_with_matched_keywords() {
    let host = host();
    let cases = [
        ("买的电水壶用了两天就坏了，质量太差", "zh-CN", Category::ProductQuality, "坏了"),
        ("The blender arrived broken and the motor is defective.", "en", Category::ProductQuality, "broken"),
        ("客服态度非常恶劣，还直接挂电话", "zh-CN", Category::ServiceAttitude, "态度"),
        ("Your agent was RUDE and hung up on me.", "en", Category::ServiceAttitude, "rude"),
        ("排队等了两个小时，一直没人处理", "zh-CN", Category::ServiceProcess, "排队"),
        ("I waited three weeks, the parcel was never delivered.", "en", Category::ServiceProcess, "waited"),
        ("同一笔订单被重复扣款，要求退款", "zh-CN", Category::Price, "退款"),
        ("I was charged twice and want a refund.", "en", Category::Price, "charged twice"),
        ("请问你们周末营业吗", "zh-CN", Category::Other, ""),
        ("Just wanted to say hello.", "en", Category::Other, ""),
    ];
    for (text, locale, want, keyword) in cases {
        let out = host.classify(BUILTIN_CLASSIFIER, &inv(), &ComplaintInput::new(text, Channel::Sms, locale)).unwrap();
        let got = out.value;
        assert_eq!(got.category, want, "{text}: {got:?}");
        assert!((0.0..=1.0).contains(&got.confidence), "{text}: {got:?}");
        if want == Category::Other {
            assert!(got.confidence < 0.5, "{text}: {got:?}");
            assert!(!got.labels.iter().any(|(k, _)| k == "matched"), "{text}: {got:?}");
        } else {
            assert!(got.confidence >= 0.5, "{text}: {got:?}");
            assert!(got.labels.contains(&("matched".into(), keyword.into())), "{text}: {got:?}");
        }
        assert_eq!(out.plugin.name, BUILTIN_CLASSIFIER);
    }
}

#[test]
fn more_matches_raise_confidence_and_a_rival_category_lowers_it() {
    let host = host();
    let conf = |text: &str| {
        host.classify(BUILTIN_CLASSIFIER, &inv(), &ComplaintInput::new(text, Channel::Email, "en")).unwrap().value
    };
    let one = conf("The kettle is broken.");
    let two = conf("The kettle is broken and faulty.");
    let rival = conf("The kettle is broken and I want a refund.");
    assert!(two.confidence > one.confidence, "{one:?} {two:?}");
    assert!(rival.confidence < one.confidence, "{one:?} {rival:?}");
    assert!(rival.labels.contains(&("runner-up".into(), "price".into())), "{rival:?}");
}

#[test]
fn contact_details_are_replaced_before_the_plugin_sees_the_text() {
    let mut complaint = ComplaintInput::new("退款 请打 13800138000 或写信 li@example.com", Channel::Phone, "zh-CN");
    complaint.contacts = vec!["+86 138 0013 8000".into(), "li@example.com".into()];
    let (sent, scrub) = plugin_input(&complaint);
    assert_eq!(sent.text, "退款 请打 <redacted> 或写信 <redacted>");
    assert!(sent.contacts.is_empty());
    assert_eq!((sent.channel, sent.locale.as_str()), (Channel::Phone, "zh-CN"));
    assert_eq!(scrub.scrub("matched=li@example.com"), "matched=<redacted>");
    let out = host().classify(BUILTIN_CLASSIFIER, &inv(), &complaint).unwrap();
    assert_eq!(out.value.category, Category::Price);
}

#[test]
fn a_classifier_is_not_called_as_another_world_nor_another_world_as_a_classifier() {
    let host = host();
    let err =
        host.compose(BUILTIN_CLASSIFIER, &inv(), &Default::default(), &Default::default()).unwrap_err().to_string();
    assert!(err.contains("it is a classifier plugin and cannot be used as appeasement"), "{err}");
    let err =
        host.classify("nope", &Invocation { mode: RunMode::Drill, ..inv() }, &ComplaintInput::default()).unwrap_err();
    assert!(matches!(err, PluginCallError::NotFound { .. }), "{err}");
}

#[test]
fn a_classifier_importing_the_network_is_refused_at_load_naming_the_import() {
    let host = host();
    let err = host.reload("greedy", &fx::bytes(fx::CLASSIFY_HTTP)).unwrap_err();
    assert!(matches!(err, LoadError::ForbiddenImport { world: World::Classifier, .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("may not import `wasi:http/") && msg.contains("the `classifier` world"), "{msg}");
}

#[test]
fn a_guest_built_against_0_1_1_loads_and_runs_on_this_host() {
    let host = host();
    let found = host.inspect(&fx::bytes(fx::API_0_1_1)).unwrap();
    assert_eq!((found.world, found.api_version.as_str()), (World::Appeasement, "0.1.1"));
    host.reload("old", &fx::bytes(fx::API_0_1_1)).unwrap();
    let inc = crate::plugin::api::IncidentInfo { title: "Checkout down".into(), ..Default::default() };
    let out = host.compose("old", &inv(), &inc, &Default::default()).unwrap();
    assert_eq!(out.value[0].body, "old-api: Checkout down");
}
