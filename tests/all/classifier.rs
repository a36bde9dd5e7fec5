//! The `classifier` world through the real binary: the built-in
//! `keyword-classifier` called once per category in zh-CN and en with
//! `crisis plugin call`, its recorded cases with `crisis plugin test`, a
//! classifier that imports the network refused at load, and a guest built
//! against the published 0.1.1 API still loading and running.

use crate::common::{crisis_in, plugin_cli, repo};
use crisis::plugin::test_fixtures;
use serde_json::{Value, json};
use std::path::Path;

fn classify(dir: &Path, text: &str, channel: &str, locale: &str) -> Value {
    let input = json!({ "complaint": { "text": text, "channel": channel, "locale": locale } }).to_string();
    let r = plugin_cli(
        dir,
        &["plugin", "call", "--builtin", "keyword-classifier", "--world", "classifier", "--input", &input, "--json"],
    );
    assert_eq!(r.code, 0, "{text}: {}\n{}", r.stdout, r.stderr);
    let out = r.json();
    assert_eq!((out["world"].as_str(), out["plugin"].as_str()), (Some("classifier"), Some("keyword-classifier")));
    assert_eq!(out["http"], json!([]), "a classifier makes no requests: {out}");
    out["value"].clone()
}

#[test]
fn the_builtin_classifies_every_category_in_chinese_and_english() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("收到的电饭煲用了两天就坏了，质量太差", "social", "zh-CN", "product-quality", "坏了"),
        ("The blender arrived broken and the lid is cracked.", "email", "en", "product-quality", "broken"),
        ("客服态度非常恶劣，还直接挂电话", "phone", "zh-CN", "service-attitude", "态度"),
        ("Your agent was rude and hung up on me", "phone", "en", "service-attitude", "rude"),
        ("排队等了两个小时，一直没人处理", "sms", "zh-CN", "service-process", "排队"),
        ("I waited three weeks and the parcel was never delivered", "email", "en", "service-process", "waited"),
        ("同一笔订单被重复扣款，要求退款", "sms", "zh-CN", "price", "退款"),
        ("I was overcharged on my bill and want my money back", "social", "en", "price", "overcharg"),
        ("请问你们周末营业吗", "sms", "zh-CN", "other", ""),
        ("Just wanted to say hello to the team", "email", "en", "other", ""),
    ];
    for (text, channel, locale, category, keyword) in cases {
        let v = classify(dir.path(), text, channel, locale);
        assert_eq!(v["category"], category, "{text}: {v}");
        let confidence = v["confidence"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&confidence), "{text}: {v}");
        let labels = v["labels"].as_array().unwrap();
        let lang = if locale == "en" { "en" } else { "zh" };
        assert!(labels.contains(&json!(["lang", lang])), "{text}: {v}");
        if category == "other" {
            assert!(confidence < 0.5, "no keyword is a guess: {v}");
            assert!(!labels.iter().any(|l| l[0] == "matched"), "{text}: {v}");
        } else {
            assert!(confidence >= 0.5, "{text}: {v}");
            assert!(labels.contains(&json!(["matched", keyword])), "{text}: {v}");
        }
    }
}

#[test]
fn the_builtin_passes_its_recorded_cases_and_lists_as_a_classifier() {
    let dir = tempfile::tempdir().unwrap();
    let case_dir = repo().join("plugins/cases/keyword-classifier");
    let r = plugin_cli(
        dir.path(),
        &["plugin", "test", "--builtin", "keyword-classifier", "--case", case_dir.to_str().unwrap(), "--json"],
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let v = r.json();
    let n = std::fs::read_dir(&case_dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "json"))
        .count();
    assert!(n >= 10, "one zh-CN and one en case per category");
    assert_eq!((v["failed"].as_u64(), v["passed"].as_u64()), (Some(0), Some(n as u64)), "{v}");

    let r = plugin_cli(dir.path(), &["plugin", "inspect", "--builtin", "keyword-classifier", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    assert_eq!((v["world"].as_str(), v["api_version"].as_str()), (Some("classifier"), Some("0.1.2")), "{v}");
    assert!(v["exports"].as_array().unwrap().iter().any(|e| e == "crisis:plugin/classify@0.1.2"), "{v}");
    assert!(!v["imports"].to_string().contains("wasi:http"), "{v}");

    // A classifier is called as a classifier only.
    let r = plugin_cli(dir.path(), &["plugin", "call", "--builtin", "keyword-classifier", "--world", "appeasement"]);
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("classifier"), "{}", r.stderr);
    let bad = r#"{"complaint": {"text": "x", "channel": "fax"}}"#;
    let r = plugin_cli(
        dir.path(),
        &["plugin", "call", "--builtin", "keyword-classifier", "--world", "classifier", "--input", bad],
    );
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("fax"), "{}", r.stderr);
}

#[test]
fn a_classifier_that_imports_the_network_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = test_fixtures::path(test_fixtures::CLASSIFY_HTTP);
    let r = plugin_cli(dir.path(), &["plugin", "inspect", fixture.to_str().unwrap()]);
    assert_eq!(r.code, 2, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    assert!(r.stderr.contains("the `classifier` world may not import `wasi:http/"), "{}", r.stderr);
    assert!(r.stderr.contains("only notifier plugins get outbound HTTP"), "{}", r.stderr);

    // Declared in crisis.toml, it is listed with the same error and never runs.
    std::fs::copy(&fixture, dir.path().join("greedy.wasm")).unwrap();
    let config = "state_dir = \"state\"\n\n[plugins.greedy]\nfile = \"greedy.wasm\"\nworld = \"classifier\"\nallowed_hosts = [\"*\"]\n";
    std::fs::write(dir.path().join("crisis.toml"), config).unwrap();
    let r = crisis_in(dir.path(), &["plugin", "list", "--json"]);
    assert_eq!(r.code, 1, "a refused plugin fails the listing: {}\n{}", r.stdout, r.stderr);
    let rows = r.json();
    let greedy = rows.as_array().unwrap().iter().find(|r| r["name"] == "greedy").unwrap().clone();
    assert!(greedy["error"].as_str().unwrap().contains("may not import `wasi:http/"), "{greedy}");
    let builtin = rows.as_array().unwrap().iter().find(|r| r["name"] == "keyword-classifier").unwrap().clone();
    assert_eq!((builtin["world"].as_str(), builtin["source"].as_str()), (Some("classifier"), Some("builtin")));
    assert!(builtin["error"].is_null(), "{builtin}");
}

#[test]
fn a_guest_built_against_api_0_1_1_still_loads_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = test_fixtures::path(test_fixtures::API_0_1_1);
    let r = plugin_cli(dir.path(), &["plugin", "inspect", fixture.to_str().unwrap(), "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    assert_eq!((v["world"].as_str(), v["api_version"].as_str()), (Some("appeasement"), Some("0.1.1")), "{v}");
    assert!(v["imports"].as_array().unwrap().iter().any(|i| i == "crisis:plugin/host@0.1.1"), "{v}");

    let input = r#"{"incident": {"title": "Checkout down"}}"#;
    let r = plugin_cli(
        dir.path(),
        &["plugin", "call", fixture.to_str().unwrap(), "--world", "appeasement", "--input", input, "--json"],
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let out = r.json();
    assert_eq!(out["value"][0]["body"], "old-api: Checkout down", "{out}");
    assert!(out["logs"].to_string().contains("composing for inc-fixture-0001"), "{out}");
}
