//! SMS, voice and chat robots end to end, against loopback servers that
//! check each request against the provider's documented contract:
//! `sms-gateway` texts and calls through a Twilio-compatible API (Basic
//! auth injected by the host, the invocation id as idempotency token, a 429
//! retried with the same token), and `webhook-notify` posts Feishu,
//! DingTalk, WeCom and Teams messages shaped like the providers' documented
//! examples (tests/fixtures/chat/providers), DingTalk and Feishu signed by
//! the host with a secret that never reaches the plugin, the journal or the log.

use crate::common::*;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

const SID: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "twilio-auth-token-7f3e";
const FROM: &str = "+15005550006";
const ALICE: &str = "+15551230001";
const BOB: &str = "+15551230002";
const DINGTALK_SECRET: &str = "SECdingtalk-robot-secret-91c2";
const FEISHU_SECRET: &str = "feishu-robot-secret-44ab";

/// Scripted answers: (path prefix, status, body), used once each in order.
type Script = Arc<Mutex<VecDeque<(String, u16, String)>>>;

/// A loopback provider: answers each request with the first scripted answer
/// for its path, else with `default`, and records every request.
struct Provider {
    port: u16,
    script: Script,
    seen: Arc<Mutex<Vec<Received>>>,
}

impl Provider {
    fn start(default: (u16, &str)) -> Provider {
        use std::io::{BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let p = Provider { port, script: Default::default(), seen: Default::default() };
        let (script, seen, default) = (p.script.clone(), p.seen.clone(), (default.0, default.1.to_string()));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (script, seen, default) = (script.clone(), seen.clone(), default.clone());
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut out = stream;
                    while let Some(r) = read_request(&mut reader) {
                        let path = r.path.clone();
                        let (status, reply) = {
                            let mut script = script.lock().unwrap();
                            match script.iter().position(|(prefix, _, _)| path.starts_with(prefix.as_str())) {
                                Some(i) => script.remove(i).map(|(_, s, b)| (s, b)).unwrap(),
                                None => default.clone(),
                            }
                        };
                        seen.lock().unwrap().push(r);
                        let _ = write!(
                            out,
                            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{reply}",
                            reply.len()
                        );
                    }
                });
            }
        });
        p
    }

    fn then(&self, path_prefix: &str, status: u16, body: &str) {
        self.script.lock().unwrap().push_back((path_prefix.to_string(), status, body.to_string()));
    }

    fn requests(&self) -> Vec<Received> {
        self.seen.lock().unwrap().clone()
    }
}

fn lo(port: u16) -> String {
    format!("\"http://localhost:{port}\"")
}

/// The config both notifiers need: sms-gateway against `twilio`, robots
/// against `robots`, with every secret in the environment only.
fn config(twilio: u16, robots: u16) -> String {
    let (t, r) = (lo(twilio), lo(robots));
    format!(
        r#"
[targets.superiors]
plugin = "log"
[targets.oncall]
plugin = "log"

[secrets.twilio]
env = "CHANNELS_TWILIO_TOKEN"
[secrets.dingtalk-ops]
env = "CHANNELS_DINGTALK_SECRET"
[secrets.feishu-ops]
env = "CHANNELS_FEISHU_SECRET"

[plugins.sms-gateway]
allowed_hosts = [{t}]
allow_private = [{t}]
inject = [{{ host = {t}, header = "Authorization", secret = "twilio", basic_user = "{SID}" }}]
config = {{ account_sid = "{SID}", from = "{FROM}", base_url = "http://localhost:{twilio}" }}

[targets.alice-sms]
plugin = "sms-gateway"
config = {{ to = "{ALICE}" }}

[targets.bob-phone]
plugin = "sms-gateway"
config = {{ to = "{BOB}", channel = "auto", voice_language = "en-US" }}

[plugins.webhook-notify]
allowed_hosts = [{r}]
allow_private = [{r}]
sign_secrets = ["dingtalk-ops", "feishu-ops"]

[targets.feishu]
plugin = "webhook-notify"
config = {{ url = "http://localhost:{robots}/open-apis/bot/v2/hook/hook-id", format = "feishu", sign_with = "feishu-ops", link = "https://crisis.example.com/incidents/{{incident}}" }}

[targets.dingtalk]
plugin = "webhook-notify"
config = {{ url = "http://localhost:{robots}/robot/send?access_token=tok", format = "dingtalk", sign_with = "dingtalk-ops", link = "https://crisis.example.com/incidents/{{incident}}" }}

[targets.wecom]
plugin = "webhook-notify"
config = {{ url = "http://localhost:{robots}/cgi-bin/webhook/send?key=wk", format = "wecom" }}

[targets.teams]
plugin = "webhook-notify"
config = {{ url = "http://localhost:{robots}/webhookb2/teams", format = "teams", link = "https://crisis.example.com/incidents/{{incident}}" }}
"#
    )
}

const ENV: &[(&str, &str)] = &[
    ("CHANNELS_TWILIO_TOKEN", TOKEN),
    ("CHANNELS_DINGTALK_SECRET", DINGTALK_SECRET),
    ("CHANNELS_FEISHU_SECRET", FEISHU_SECRET),
];

fn start(twilio: &Provider, robots: &Provider) -> Daemon {
    Daemon::start_with_env("chat", &config(twilio.port, robots.port), ENV)
}

fn open(d: &Daemon, playbook: &str) -> String {
    d.post_incident(&json!({ "playbook": playbook, "fields": { "nature": "checkout" }, "labels": { "n": "1" } }))
}

/// Waits for a successful delivery journaled for `target`; returns its event.
fn delivered(d: &Daemon, id: &str, target: &str) -> Value {
    let find = || {
        d.events(id)
            .into_iter()
            .find(|e| e["kind"] == "effect_result" && e["data"]["target"] == target && e["data"]["ok"] == true)
    };
    d.wait_for(&format!("a delivery to `{target}`"), || find().is_some());
    find().unwrap()
}

/// Decodes an `application/x-www-form-urlencoded` body.
fn form(body: &str) -> Vec<(String, String)> {
    let dec = |s: &str| {
        let s = s.replace('+', " ");
        let (mut out, b) = (Vec::new(), s.as_bytes());
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' && i + 2 < b.len() + 1 {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    };
    body.split('&').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (dec(k), dec(v))).collect()
}

fn field<'a>(f: &'a [(String, String)], k: &str) -> &'a str {
    f.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str()).unwrap_or_else(|| panic!("no form field {k}: {f:?}"))
}

/// Checks one request against Twilio's documented contract for `resource`
/// (`Messages.json` or `Calls.json`); returns the decoded form.
fn twilio_request(r: &Received, resource: &str, to: &str) -> Vec<(String, String)> {
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, format!("/2010-04-01/Accounts/{SID}/{resource}"));
    let basic = data_encoding::BASE64.encode(format!("{SID}:{TOKEN}").as_bytes());
    assert_eq!(
        r.header("authorization"),
        Some(format!("Basic {basic}").as_str()),
        "Basic auth with the test's credentials"
    );
    assert_eq!(r.header("content-type"), Some("application/x-www-form-urlencoded"));
    assert!(r.header("i-twilio-idempotency-token").is_some_and(|t| !t.is_empty()), "{:?}", r.headers);
    let f = form(&r.body);
    assert_eq!(field(&f, "To"), to);
    assert_eq!(field(&f, "From"), FROM);
    f
}

/// Nothing secret or personal in the journal or the log.
fn assert_clean(d: &Daemon, id: &str, values: &[&str]) {
    let journal = serde_json::to_string(&d.events(id)).unwrap();
    let log = d.log();
    for v in values {
        assert!(!journal.contains(v), "`{v}` in the journal: {journal}");
        assert!(!log.contains(v), "`{v}` in the log");
    }
}

const QUEUED_SMS: &str = r#"{"sid":"SM0123456789abcdef0123456789abcdef","status":"queued"}"#;

#[test]
fn a_page_is_texted_and_a_429_is_retried_with_the_same_idempotency_token() {
    let twilio = Provider::start((201, QUEUED_SMS));
    let robots = Provider::start((200, r#"{"errcode":0,"errmsg":"ok"}"#));
    twilio.then("/", 429, r#"{"code":20429,"message":"Too Many Requests","status":429}"#);
    let d = start(&twilio, &robots);
    let id = open(&d, "text");
    let ev = delivered(&d, &id, "alice-sms");
    assert!(ev["data"]["detail"].as_str().unwrap().contains("sms queued"), "{ev}");

    let reqs = twilio.requests();
    assert_eq!(reqs.len(), 2, "one 429 and one retry: {reqs:?}");
    let f = twilio_request(&reqs[1], "Messages.json", ALICE);
    let body = field(&f, "Body");
    assert!(body.contains("[SEV2]") && body.contains(&format!("crisis ack {id}")), "{body}");
    let tokens: Vec<_> = reqs.iter().map(|r| r.header("i-twilio-idempotency-token").unwrap()).collect();
    assert_eq!(tokens[0], tokens[1], "the retry reuses the idempotency token");
    twilio_request(&reqs[0], "Messages.json", ALICE);
    let basic = data_encoding::BASE64.encode(format!("{SID}:{TOKEN}").as_bytes());
    assert_clean(&d, &id, &[TOKEN, &basic, ALICE]);
}

#[test]
fn a_sev1_page_to_a_voice_target_places_a_call_with_escaped_twiml() {
    let twilio = Provider::start((201, r#"{"sid":"CA0123456789abcdef0123456789abcdef","status":"queued"}"#));
    let robots = Provider::start((200, r#"{"errcode":0,"errmsg":"ok"}"#));
    let d = start(&twilio, &robots);
    let id = open(&d, "voice");
    let ev = delivered(&d, &id, "bob-phone");
    assert!(ev["data"]["detail"].as_str().unwrap().contains("voice queued"), "{ev}");
    let reqs = twilio.requests();
    let call = reqs.iter().find(|r| r.path.ends_with("/Calls.json")).unwrap_or_else(|| panic!("no call: {reqs:?}"));
    let f = twilio_request(call, "Calls.json", BOB);
    let twiml = field(&f, "Twiml");
    assert!(twiml.starts_with("<Response><Say language=\"en-US\">") && twiml.ends_with("</Say></Response>"), "{twiml}");
    assert!(twiml.contains(&format!("crisis ack {id}")), "{twiml}");
    // The playbook's title is `Cards & <wallets> fail`.
    assert!(twiml.contains("Cards &amp; &lt;wallets&gt; fail"), "{twiml}");
    // Whatever the page says is text inside <Say>, never markup.
    let inner = twiml.trim_start_matches("<Response>").trim_end_matches("</Response>");
    let stripped =
        inner.replace("<Say language=\"en-US\">", "").replace("</Say>", "").replace("<Pause length=\"1\"/>", "");
    assert!(!stripped.contains('<') && !stripped.contains('>'), "unescaped markup in {twiml}");
    assert_eq!(call.header("i-twilio-idempotency-token").map(|t| t.starts_with(&id)), Some(true), "{:?}", call.headers);
    assert_clean(&d, &id, &[TOKEN, BOB]);
}

#[test]
fn a_4xx_from_the_provider_fails_permanently_with_its_message_and_no_number() {
    let twilio = Provider::start((
        400,
        &format!(r#"{{"code":21211,"message":"The 'To' number {ALICE} is not a valid phone number.","status":400}}"#),
    ));
    let robots = Provider::start((200, r#"{"errcode":0,"errmsg":"ok"}"#));
    let d = start(&twilio, &robots);
    let id = open(&d, "text");
    let failed = || {
        d.events(&id).into_iter().find(|e| {
            (e["kind"] == "effect_result" && e["data"]["target"] == "alice-sms" && e["data"]["ok"] == false)
                || (e["kind"] == "dead_lettered")
        })
    };
    d.wait_for("the permanent failure to be journaled", || failed().is_some());
    let journal = serde_json::to_string(&d.events(&id)).unwrap();
    assert!(journal.contains("code 21211") && journal.contains("<recipient> is not a valid phone number"), "{journal}");
    assert_eq!(twilio.requests().len(), 1, "a 4xx is not retried");
    assert_clean(&d, &id, &[TOKEN, ALICE]);
}

type HmacSha256 = Hmac<sha2::Sha256>;

fn hmac_b64(key: &str, msg: &str) -> String {
    let mut m = HmacSha256::new_from_slice(key.as_bytes()).unwrap();
    m.update(msg.as_bytes());
    data_encoding::BASE64.encode(&m.finalize().into_bytes())
}

fn fixture(name: &str) -> Value {
    let p = repo().join("tests/fixtures/chat/providers").join(name);
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

/// The kind of element an array holds (`tag`, `@type` or `type`).
fn discriminator(v: &Value) -> Option<(&'static str, &Value)> {
    ["@type", "tag", "type"].into_iter().find_map(|k| v.get(k).map(|x| (k, x)))
}

/// `ours` has the documented structure of `doc`: every documented key
/// (except the optional ones we leave out) with a value of the same JSON
/// type, recursively; array elements match a documented element of the same kind.
fn same_shape(doc: &Value, ours: &Value, optional: &[&str], at: &str) {
    match (doc, ours) {
        (Value::Object(d), Value::Object(o)) => {
            for (k, dv) in d {
                match o.get(k) {
                    Some(ov) => same_shape(dv, ov, optional, &format!("{at}.{k}")),
                    None if optional.contains(&k.as_str()) => {}
                    None => panic!("{at}.{k} is documented but missing in {ours}"),
                }
            }
        }
        (Value::Array(d), Value::Array(o)) => {
            assert!(!o.is_empty() || d.is_empty(), "{at} is empty");
            for (i, ov) in o.iter().enumerate() {
                let doc_el = match discriminator(ov) {
                    Some((k, kind)) => d.iter().find(|de| de.get(k) == Some(kind)),
                    None => d.first(),
                };
                let doc_el = doc_el.unwrap_or_else(|| panic!("{at}[{i}] = {ov} is no documented element kind"));
                same_shape(doc_el, ov, optional, &format!("{at}[{i}]"));
            }
        }
        (d, o) => assert_eq!(std::mem::discriminant(d), std::mem::discriminant(o), "{at}: documented {d}, sent {o}"),
    }
}

fn query<'a>(path: &'a str, key: &str) -> Option<&'a str> {
    path.split_once('?')?.1.split('&').find_map(|kv| kv.strip_prefix(&format!("{key}=")))
}

fn percent_decode(s: &str) -> String {
    form(&format!("x={s}")).remove(0).1
}

#[test]
fn robot_messages_have_the_documented_shape_and_verifiable_signatures() {
    let twilio = Provider::start((201, QUEUED_SMS));
    let robots = Provider::start((200, r#"{"code":0,"msg":"success","errcode":0,"errmsg":"ok"}"#));
    let d = start(&twilio, &robots);
    let id = open(&d, "robots");
    for t in ["feishu", "dingtalk", "wecom", "teams"] {
        delivered(&d, &id, t);
    }
    let reqs = robots.requests();
    let by = |prefix: &str| -> (Received, Value) {
        let r = reqs.iter().find(|r| r.path.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix}: {reqs:?}"));
        assert_eq!(r.method, "POST");
        assert_eq!(r.header("content-type"), Some("application/json"));
        (r.clone(), serde_json::from_str(&r.body).unwrap())
    };
    let ack = format!("crisis ack {id}");
    let link = format!("https://crisis.example.com/incidents/{id}");

    // Feishu: interactive card, signed in the body.
    let (_, v) = by("/open-apis/bot/v2/hook/hook-id");
    same_shape(&fixture("feishu-interactive.json"), &v, &["enable_forward", "value"], "feishu");
    assert_eq!(v["msg_type"], "interactive");
    assert_eq!(v["card"]["header"]["template"], "red", "sev1 is red");
    assert!(v["card"]["header"]["title"]["content"].as_str().unwrap().contains("[SEV1]"), "{v}");
    let text = v.to_string();
    assert!(text.contains(&ack) && text.contains(&link), "{v}");
    let signed = fixture("feishu-signed.json");
    for k in ["timestamp", "sign"] {
        same_shape(&signed[k], &v[k], &[], k);
    }
    let ts = v["timestamp"].as_str().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!(ts.parse::<u64>().unwrap().abs_diff(now) < 600, "timestamp in seconds: {ts}");
    assert_eq!(v["sign"], hmac_b64(&format!("{ts}\n{FEISHU_SECRET}"), ""), "Feishu signature verifies");

    // DingTalk: markdown, signed in the query.
    let (r, v) = by("/robot/send");
    same_shape(&fixture("dingtalk-markdown.json"), &v, &["at"], "dingtalk");
    assert_eq!(v["msgtype"], "markdown");
    assert!(v["markdown"]["text"].as_str().unwrap().contains(&ack), "{v}");
    assert_eq!(query(&r.path, "access_token"), Some("tok"));
    let ts = query(&r.path, "timestamp").expect("timestamp in the query");
    assert!(ts.parse::<u64>().unwrap().abs_diff(now * 1000) < 600_000, "timestamp in milliseconds: {ts}");
    let sign = percent_decode(query(&r.path, "sign").expect("sign in the query"));
    assert_eq!(sign, hmac_b64(DINGTALK_SECRET, &format!("{ts}\n{DINGTALK_SECRET}")), "DingTalk signature verifies");

    // WeCom: markdown content with a severity colour.
    let (_, v) = by("/cgi-bin/webhook/send?key=wk");
    same_shape(&fixture("wecom-markdown.json"), &v, &[], "wecom");
    let content = v["markdown"]["content"].as_str().unwrap();
    assert!(content.contains("<font color=\"warning\">") && content.contains(&ack), "{content}");

    // Teams: MessageCard with a theme colour, the ack command and a link.
    let (_, v) = by("/webhookb2/teams");
    same_shape(&fixture("teams-messagecard.json"), &v, &["activityImage"], "teams");
    assert_eq!(v["themeColor"], "D13438");
    assert!(v.to_string().contains(&ack), "{v}");
    assert_eq!(v["potentialAction"][0]["targets"][0]["uri"], link.as_str());

    assert_clean(&d, &id, &[DINGTALK_SECRET, FEISHU_SECRET]);
    for r in &reqs {
        assert!(!r.body.contains(DINGTALK_SECRET) && !r.path.contains(DINGTALK_SECRET), "{r:?}");
        assert!(!r.body.contains(FEISHU_SECRET), "{r:?}");
    }
}

#[test]
fn a_robot_error_code_in_a_200_is_a_failure_and_rate_limits_are_retried() {
    let twilio = Provider::start((201, QUEUED_SMS));
    let robots = Provider::start((200, r#"{"code":0,"msg":"success","errcode":0,"errmsg":"ok"}"#));
    // Feishu refuses the signature (HTTP 200, documented code 19021): permanent.
    robots.then(
        "/open-apis/",
        200,
        r#"{"code":19021,"msg":"sign match fail or timestamp is not within one hour from current time","data":{}}"#,
    );
    // WeCom's first answer is its documented rate limit; the retry succeeds.
    robots.then("/cgi-bin/", 200, r#"{"errcode":45009,"errmsg":"api freq out of limit"}"#);
    let d = start(&twilio, &robots);
    let id = open(&d, "robots");
    delivered(&d, &id, "wecom");
    let feishu_failed = || {
        d.events(&id)
            .into_iter()
            .any(|e| e["kind"] == "effect_result" && e["data"]["target"] == "feishu" && e["data"]["ok"] == false)
    };
    d.wait_for("Feishu's refusal to be journaled", feishu_failed);
    let journal = serde_json::to_string(&d.events(&id)).unwrap();
    assert!(journal.contains("feishu robot answered code 19021: sign match fail"), "{journal}");
    let count = |prefix: &str| robots.requests().iter().filter(|r| r.path.starts_with(prefix)).count();
    assert_eq!(count("/open-apis/"), 1, "a refused signature is not retried");
    let wecom: Vec<_> = robots.requests().into_iter().filter(|r| r.path.starts_with("/cgi-bin/")).collect();
    assert_eq!(wecom.len(), 2, "the rate-limited WeCom message is retried once");
    assert_eq!(wecom[0].body, wecom[1].body);
}

#[test]
fn the_new_builtins_pass_their_plugin_test_cases() {
    for (plugin, cases) in
        [("sms-gateway", "plugins/cases/sms-gateway"), ("webhook-notify", "plugins/cases/webhook-notify")]
    {
        let dir = tempfile::tempdir().unwrap();
        let case_dir = repo().join(cases);
        let r = crisis_in(
            dir.path(),
            &["plugin", "test", "--builtin", plugin, "--case", case_dir.to_str().unwrap(), "--json"],
        );
        assert_eq!(r.code, 0, "{plugin}: {}\n{}", r.stdout, r.stderr);
        let v: Value = serde_json::from_str(&r.stdout).unwrap();
        let n = std::fs::read_dir(&case_dir)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "json"))
            .count();
        assert!(n >= 3, "{cases} has cases");
        assert_eq!((v["failed"].as_u64(), v["passed"].as_u64()), (Some(0), Some(n as u64)), "{v}");
    }
}
