//! The public status page on its own listener: a step's `[act.status]` text
//! and component state are published in the visitor's locale (HTML in
//! Chromium, JSON, Atom), nothing internal is shown, drills publish nothing,
//! a retried intent publishes once, resolving shows the components
//! operational again, and the listener is off unless configured.
use crate::common::browser::Browser;
use crate::common::*;
use serde_json::Value;

const TITLE_EN: &str = "Login and checkout unavailable";
const TITLE_ZH: &str = "登录和结账不可用";
/// Internal facts that must never reach the page.
const SECRETS: &[&str] = &["INTERNAL", "Alice Chen", "alice", "ACME-LABEL-VALUE", "INC-1", "Zeta title"];

fn config(status_port: u16) -> String {
    format!(
        "[targets.superiors]\nplugin = \"log\"\n[targets.departments]\nplugin = \"log\"\n\
         [targets.status-page]\nplugin = \"status\"\n\
         [status_page]\nlisten = \"127.0.0.1:{status_port}\"\ntitle = \"Shop status\"\n\
         components = [{{ id = \"login\", name = \"Login\", group = \"Web\" }}, {{ id = \"checkout\", name = \"Checkout\", group = \"Web\" }}, {{ id = \"api\", name = \"Public API\" }}]\n"
    )
}

fn get(port: u16, path: &str, accept_language: Option<&str>) -> (u16, Vec<(String, String)>, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut req = agent.get(&format!("http://127.0.0.1:{port}{path}"));
    if let Some(l) = accept_language {
        req = req.header("Accept-Language", l);
    }
    let mut r = req.call().unwrap();
    let headers =
        r.headers().iter().map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string())).collect();
    (r.status().as_u16(), headers, r.body_mut().read_to_string().unwrap())
}

fn index(port: u16, lang: &str) -> Value {
    let (status, _, body) = get(port, &format!("/index.json?lang={lang}"), None);
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn component(v: &Value, id: &str) -> String {
    v["components"].as_array().unwrap().iter().find(|c| c["id"] == id).unwrap()["state"].as_str().unwrap().to_string()
}

fn posts(v: &Value) -> usize {
    ["active", "history"]
        .iter()
        .flat_map(|k| v[k].as_array().unwrap())
        .map(|i| i["updates"].as_array().unwrap().len())
        .sum()
}

/// Opens the incident with internal details (title, label, note) and lets the step run.
fn open_incident(d: &Daemon) -> String {
    let v = d.json(&[
        "trigger",
        "site-outage",
        "--title",
        "INTERNAL Zeta title",
        "--field",
        "nature=INTERNAL nature",
        "--label",
        "customer=ACME-LABEL-VALUE",
    ]);
    let id = v["incident"]["id"].as_str().unwrap().to_string();
    d.wait_for("the assign phase", || d.json(&["incident", "show", &id])["phase"] == "assign");
    d.ok(&["update", &id, "--note", "INTERNAL note: database failover", "--as", "alice"]);
    d.ok(&["ack", &id, "--as", "alice"]);
    id
}

/// The status intent's invocation id, from the journal.
fn status_intent(d: &Daemon, id: &str) -> Option<String> {
    d.events(id).into_iter().find_map(|e| {
        let data = &e["data"];
        (e["kind"] == "intent_recorded" && data["target"] == "status-page")
            .then(|| data["invocation_id"].as_str().unwrap().to_string())
    })
}

#[test]
fn an_outage_is_published_in_the_visitors_locale_and_nothing_internal_shows() {
    let sp = free_port();
    let d = Daemon::start("status_page", &config(sp));
    let empty = index(sp, "en");
    assert_eq!(empty["overall"], "operational");
    assert_eq!(posts(&empty), 0);
    let id = open_incident(&d);
    d.wait_for("the publication", || posts(&index(sp, "en")) == 1);

    // JSON, in English and in Chinese (by ?lang= and by Accept-Language).
    let en = index(sp, "en");
    assert_eq!(en["locale"], "en");
    assert_eq!(component(&en, "login"), "major-outage");
    assert_eq!(component(&en, "checkout"), "major-outage");
    assert_eq!(component(&en, "api"), "operational");
    assert_eq!(en["overall"], "major-outage");
    assert_eq!(en["active"][0]["updates"][0]["title"], TITLE_EN);
    assert_eq!(en["active"][0]["components"], serde_json::json!(["Checkout", "Login"]));
    let zh = index(sp, "zh-CN");
    assert_eq!(zh["active"][0]["updates"][0]["title"], TITLE_ZH);
    let (_, headers, body) = get(sp, "/index.json", Some("fr-FR, zh;q=0.9, en;q=0.5"));
    assert!(body.contains(TITLE_ZH), "{body}");
    assert!(headers.iter().any(|(k, v)| k == "cache-control" && v.contains("max-age")), "{headers:?}");
    assert!(headers.iter().any(|(k, v)| k == "vary" && v.contains("Accept-Language")), "{headers:?}");
    let (_, _, fallback) = get(sp, "/index.json?lang=de", None);
    assert!(fallback.contains(TITLE_EN), "{fallback}");

    // HTML: the script in the published text is escaped, never markup.
    let (status, _, html) = get(sp, "/?lang=en", None);
    assert_eq!(status, 200);
    assert!(html.contains("&lt;script&gt;") && !html.contains("<script>"), "{html}");
    // Atom: well-formed XML with the message as an entry.
    let (status, headers, atom) = get(sp, "/feed.atom?lang=zh-CN", None);
    assert_eq!(status, 200);
    assert!(headers.iter().any(|(k, v)| k == "content-type" && v.starts_with("application/atom+xml")), "{headers:?}");
    let parsed = std::process::Command::new("python3")
        .args(["-c", "import sys, xml.etree.ElementTree as E; r = E.fromstring(sys.stdin.buffer.read()); ns = {'a': 'http://www.w3.org/2005/Atom'}; assert r.tag == '{http://www.w3.org/2005/Atom}feed'; [print(e.find('a:title', ns).text, '|', e.find('a:id', ns).text, '|', e.find('a:updated', ns).text) for e in r.findall('a:entry', ns)]"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(atom.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(parsed.status.success(), "invalid Atom: {}\n{atom}", String::from_utf8_lossy(&parsed.stderr));
    let entries = String::from_utf8_lossy(&parsed.stdout).to_string();
    assert_eq!(entries.lines().count(), 1, "{entries}");
    assert!(entries.starts_with(TITLE_ZH), "{entries}");

    for (what, text) in [
        ("json en", index(sp, "en").to_string()),
        ("json zh", zh.to_string()),
        ("html", html.clone()),
        ("atom", atom.clone()),
    ] {
        for s in SECRETS {
            assert!(!text.contains(s), "{what} shows internal `{s}`:\n{text}");
        }
    }
    // Read-only: anything but GET is refused.
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let r = agent.post(&format!("http://127.0.0.1:{sp}/index.json")).send("x").unwrap();
    assert_eq!(r.status().as_u16(), 405);

    // In Chromium, in Chinese: the state, the message, no script ran.
    if let Some(mut b) = Browser::launch("status_page::an_outage_is_published") {
        b.navigate(&format!("http://127.0.0.1:{sp}/?lang=zh-CN"));
        assert_eq!(b.errors(), Vec::<String>::new(), "console errors; Chromium log:\n{}", b.log());
        let dom = b.eval(
            r#"(() => ({
              text: document.body.innerText,
              lang: document.documentElement.lang,
              title: document.title,
              scripts: document.scripts.length,
              login: document.querySelector('[data-component="login"]').dataset.state,
              api: document.querySelector('[data-component="api"]').dataset.state,
              overall: document.querySelector('#overall').dataset.state,
            }))()"#,
        );
        assert_eq!(dom["lang"], "zh-CN");
        assert_eq!(dom["scripts"], 0);
        assert_eq!(dom["title"], "Shop status");
        assert_eq!(dom["login"], "major-outage");
        assert_eq!(dom["api"], "operational");
        assert_eq!(dom["overall"], "major-outage");
        let text = dom["text"].as_str().unwrap();
        assert!(text.contains(TITLE_ZH) && text.contains("严重中断") && text.contains("客户无法登录或结账"), "{text}");
        for s in SECRETS {
            assert!(!text.contains(s), "the page shows internal `{s}`:\n{text}");
        }
        if std::env::var_os("CRISIS_SCREENSHOTS").is_some() {
            b.navigate(&format!("http://127.0.0.1:{sp}/?lang=en"));
            std::fs::create_dir_all(repo().join("docs/img")).unwrap();
            b.screenshot(&repo().join("docs/img/status-page.png"));
        }
    }

    // Resolving publishes the resolved text and shows the components operational again.
    d.ok(&["resolve", &id, "--as", "alice"]);
    d.wait_for("the resolved post", || index(sp, "en")["active"].as_array().unwrap().is_empty());
    let after = index(sp, "en");
    assert_eq!(component(&after, "login"), "operational");
    assert_eq!(after["overall"], "operational");
    let past = &after["history"][0];
    assert_eq!(past["resolved"], true);
    assert_eq!(past["updates"][0]["body"], "Login and checkout work again.");
    assert_eq!(past["updates"].as_array().unwrap().len(), 2);
    assert_eq!(index(sp, "zh-CN")["history"][0]["updates"][0]["body"], "登录和结账已恢复。");
}

#[test]
fn a_drill_of_the_same_playbook_publishes_nothing() {
    let sp = free_port();
    let d = Daemon::start("status_page", &config(sp));
    let out = d.ok(&["drill", "run", "site-outage", "--seed", "1"]);
    let run = out.lines().next().unwrap().rsplit(' ').next().unwrap().to_string();
    let report = d.ok(&["drill", "report", &run, "--format", "json"]);
    // The drill reached the step and resolved: both status posts were captured, not published.
    assert_eq!(
        report.matches("step:status-page notice to target `status-page` (not drill_safe), not sent").count(),
        2,
        "{report}"
    );
    let v = index(sp, "en");
    assert_eq!(posts(&v), 0, "{v}");
    assert_eq!(v["overall"], "operational");
}

#[test]
fn a_retried_status_intent_publishes_once() {
    let sp = free_port();
    let mut d = Daemon::start_with_env("status_page", &config(sp), &[("CRISIS_FAILPOINT", "after-execute")]);
    let id = open_incident(&d);
    let mut intent = None;
    d.wait_for("the status intent", || {
        intent = status_intent(&d, &id);
        intent.is_some()
    });
    let intent = intent.unwrap();
    // Published, then stopped before the result was journaled.
    d.wait_for("the failpoint", || d.log().contains(&format!("failpoint after-execute reached for {intent}")));
    assert_eq!(posts(&index(sp, "en")), 1);
    d.kill9();
    d.restart_with_env(&[]);
    d.wait_for("the retried result", || {
        d.events(&id).iter().any(|e| e["kind"] == "effect_result" && e["data"]["invocation_id"] == intent.as_str())
    });
    let log = d.log();
    assert!(log.contains("retrying side effect with its original invocation id"), "{log}");
    let result = d
        .events(&id)
        .into_iter()
        .find(|e| e["kind"] == "effect_result" && e["data"]["invocation_id"] == intent.as_str())
        .unwrap();
    assert!(result.to_string().contains("already published to the status page"), "{result}");
    assert_eq!(posts(&index(sp, "en")), 1);
}

#[test]
fn the_status_page_is_off_unless_configured() {
    let d = Daemon::start(
        "status_page",
        "[targets.superiors]\nplugin = \"log\"\n[targets.departments]\nplugin = \"log\"\n[targets.status-page]\nplugin = \"status\"\n[status_page]\ncomponents = [{ id = \"login\" }, { id = \"checkout\" }]\n",
    );
    let id = open_incident(&d);
    d.wait_for("the step's result", || {
        d.events(&id)
            .iter()
            .any(|e| e["kind"] == "effect_result" && e.to_string().contains("published to the status page"))
    });
    assert!(!d.log().contains("public status page on"), "{}", d.log());
    // The API listener does not serve it either.
    let (status, _, _) = get(d.port, "/index.json", None);
    assert_eq!(status, 404);
}
