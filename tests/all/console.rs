//! End to end: the web console of a real daemon, in headless Chromium. A
//! person signs in with their token, sees an incident triggered from the CLI
//! appear on the board without reloading, acknowledges it with the keyboard
//! shortcut, posts a note with a script tag that is shown and never run, and
//! is refused a POST without the CSRF token and a button their role lacks.
//! The cookie and redirects are also checked over plain HTTP, without a browser.
//!
//! With `CRISIS_SCREENSHOTS=DIR` the browser tests write screenshots of the
//! board and an incident page into DIR (the README's come from here).
use crate::common::browser::Browser;
use crate::common::*;
use serde_json::Value;

/// Creates a person token with the bootstrap token; returns its id and secret.
fn create(d: &Daemon, args: &[&str]) -> (String, String) {
    let mut a = vec!["token", "create"];
    a.extend_from_slice(args);
    let v = d.json(&a);
    (v["token"]["id"].as_str().unwrap().to_string(), v["secret"].as_str().unwrap().to_string())
}

/// A person token's secret.
fn token(d: &Daemon, args: &[&str]) -> String {
    create(d, args).1
}

/// Signs `b` in to `d`'s console with `secret` and lands on the board.
fn sign_in(b: &mut Browser, d: &Daemon, secret: &str) {
    b.navigate(&d.url("/console"));
    assert_eq!(b.eval("location.pathname"), "/console/login", "an unsigned page leads to the sign-in form");
    let js = format!(
        "document.getElementById('token').value = {}; document.getElementById('sign-in').click()",
        Value::from(secret)
    );
    b.eval_then_load(&js);
    assert_eq!(b.eval("location.pathname"), "/console", "{}", b.eval("document.body.innerText"));
}

/// Where screenshots go, if anywhere.
fn screenshots() -> Option<std::path::PathBuf> {
    let dir = std::env::var_os("CRISIS_SCREENSHOTS")?;
    let dir = repo().join(dir);
    std::fs::create_dir_all(&dir).unwrap();
    Some(dir)
}

/// POSTs a form from inside the page (same origin, with the session cookie); returns status and text.
fn post_from_page(b: &mut Browser, path: &str, fields: &str) -> (u64, String) {
    let js = format!(
        "fetch({}, {{method: 'POST', body: new URLSearchParams({fields}), redirect: 'manual'}}).then(async r => [r.status, await r.text()])",
        Value::from(path)
    );
    let v = b.eval(&js);
    (v[0].as_u64().unwrap(), v[1].as_str().unwrap().to_string())
}

fn kinds(d: &Daemon, id: &str) -> Vec<String> {
    d.events(id).iter().map(|e| e["kind"].as_str().unwrap().to_string()).collect()
}

#[test]
fn a_responder_follows_the_board_live_acks_and_posts_notes_within_their_role() {
    let Some(mut b) = Browser::launch("console::a_responder_follows_the_board_live") else { return };
    let d = Daemon::start("tokens", LOG_TARGETS);
    let alice = token(&d, &["alice"]);
    sign_in(&mut b, &d, &alice);
    assert_eq!(b.eval("document.getElementById('who').textContent"), "alice");
    b.wait_until("the board's live stream", "document.body.dataset.live === 'on'");

    // A trigger from the CLI reaches the open board without a reload.
    b.eval("window.sameDocument = true");
    let v = d.json(&["trigger", "gate", "--field", "nature=payment outage", "--title", "Payments failing"]);
    let id = v["incident"]["id"].as_str().unwrap().to_string();
    let latency =
        b.wait_until("the new incident on the board", &format!("!!document.querySelector('tr[data-id=\"{id}\"]')"));
    println!("console: the board showed {id} {latency:?} after the trigger returned");
    assert_eq!(b.eval("window.sameDocument"), true, "the board must not reload");
    let row = b.eval(&format!("document.querySelector('tr[data-id=\"{id}\"]').innerText"));
    assert!(row.as_str().unwrap().contains("Payments failing"), "{row}");
    assert!(row.as_str().unwrap().contains("sev2"), "{row}");
    if let Some(dir) = screenshots() {
        b.screenshot(&dir.join("console-board.png"));
    }

    // The incident page: six phases, no approve button for a responder, an ack button.
    b.navigate(&d.url(&format!("/console/incidents/{id}")));
    assert_eq!(b.eval("document.querySelectorAll('#phases li').length"), 6);
    assert_eq!(b.eval("document.querySelector('#phases li[data-phase=\"report\"]').dataset.state"), "done");
    assert_eq!(b.eval("!!document.getElementById('approve-button')"), false, "alice may not approve");
    assert_eq!(b.eval("!!document.getElementById('ack-button')"), true);
    assert_eq!(b.eval("document.getElementById('acked').textContent"), "not acknowledged");
    assert_eq!(b.eval("document.querySelectorAll('#step-graph g.node').length"), 1);

    // `a` acknowledges through the same engine call as `crisis ack`.
    b.press_then_load("a");
    let acked = b.eval("document.getElementById('acked').textContent");
    assert!(acked.as_str().unwrap().starts_with("acknowledged by alice"), "{acked}");
    assert_eq!(b.eval("!!document.getElementById('ack-button')"), false, "acknowledged once");
    assert!(kinds(&d, &id).contains(&"acknowledged".to_string()));
    let ack = d.events(&id).into_iter().find(|e| e["kind"] == "acknowledged").unwrap();
    assert_eq!(ack["data"]["by"], "alice", "{ack}");

    // A note with a script tag is journaled as written, shown as text, never run.
    let note = "<script>window.pwned = 1</script><b>bold?</b> rollback started";
    b.eval(&format!("document.getElementById('update-note').value = {}", Value::from(note)));
    b.eval_then_load("document.getElementById('update-button').click()");
    let shown = b.eval("[...document.querySelectorAll('#timeline li .text')].map(e => e.textContent).join('\\n')");
    assert!(shown.as_str().unwrap().contains(note), "{shown}");
    assert_eq!(b.eval("typeof window.pwned"), "undefined");
    assert_eq!(b.eval("document.querySelectorAll('#timeline script, #timeline b').length"), 0);
    if let Some(dir) = screenshots() {
        b.screenshot(&dir.join("console-incident.png"));
    }

    let csrf = b.eval("document.querySelector('#update-form input[name=csrf]').value");
    let csrf = csrf.as_str().unwrap().to_string();
    let before = d.events(&id).len();
    let updates = format!("/console/incidents/{id}/updates");
    // Without the CSRF token, or with a wrong one: refused, nothing journaled.
    let (code, text) = post_from_page(&mut b, &updates, "{note: 'forged'}");
    assert_eq!(code, 403, "{text}");
    assert!(text.contains("CSRF"), "{text}");
    let (code, _) = post_from_page(&mut b, &updates, "{note: 'forged', csrf: 'f00'}");
    assert_eq!(code, 403);
    // An empty note and a 10 MB one: refused with a message saying what to do.
    let (code, text) = post_from_page(&mut b, &updates, &format!("{{note: '  ', csrf: '{csrf}'}}"));
    assert_eq!(code, 422, "{text}");
    assert!(text.contains("the update is empty"), "{text}");
    // The 10 MB form goes from here with the browser's session cookie: DevTools would echo it back in one oversized message.
    let cookies = b.page("Network.getCookies", serde_json::json!({"urls": [d.url("/console")]}));
    let session = cookies["cookies"].as_array().unwrap().iter().find(|c| c["name"] == "crisis_console").unwrap();
    let pair = format!("crisis_console={}", session["value"].as_str().unwrap());
    // The daemon answers from the declared length without reading the body, so only its start is sent.
    let text = {
        use std::io::{Read, Write};
        let mut tcp = std::net::TcpStream::connect(("127.0.0.1", d.port)).unwrap();
        let len = 10 * 1024 * 1024 + csrf.len() + 11;
        let head = format!(
            "POST {updates} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nCookie: {pair}\r\nContent-Length: {len}\r\nConnection: close\r\n\r\ncsrf={csrf}&note=xxxx"
        );
        tcp.write_all(head.as_bytes()).unwrap();
        let mut out = String::new();
        let _ = tcp.read_to_string(&mut out);
        out
    };
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("max_body_kb"), "{text}");
    // A button her role lacks: posting it anyway is 403 from the same role table as the API.
    let (code, text) =
        post_from_page(&mut b, &format!("/console/incidents/{id}/approve"), &format!("{{csrf: '{csrf}'}}"));
    assert_eq!(code, 403, "{text}");
    assert!(text.contains("needs the approver role"), "{text}");
    assert_eq!(d.events(&id).len(), before, "{:?}", kinds(&d, &id));

    // Dana, the approver, sees the button and approves through it.
    b.eval_then_load("document.querySelector('form.signout button').click()");
    assert_eq!(b.eval("location.pathname"), "/console/login");
    let dana = token(&d, &["dana", "--role", "approver"]);
    sign_in(&mut b, &d, &dana);
    b.navigate(&d.url(&format!("/console/incidents/{id}")));
    b.eval_then_load("document.getElementById('approve-button').click()");
    assert_eq!(b.eval("document.querySelector('#phases li[data-phase=\"activate\"]').dataset.state"), "done");
    assert!(kinds(&d, &id).contains(&"approved".to_string()), "{:?}", kinds(&d, &id));
    // The refusals provoked above are logged by Chromium as failed loads; nothing else may be.
    let provoked =
        |e: &String| e.contains("Failed to load resource") && (e.contains("/updates") || e.contains("/approve"));
    let errors: Vec<String> = b.errors().into_iter().filter(|e| !provoked(e)).collect();
    assert_eq!(errors, Vec::<String>::new(), "console errors or exceptions; Chromium log:\n{}", b.log());
    for url in b.requests() {
        assert!(url.starts_with(&d.url("/console")), "the console loaded {url}");
    }
}

const DRILL_TARGETS: &str = "[targets.superiors]\nplugin = \"log\"\ndrill_safe = true\n[targets.customers]\nplugin = \"log\"\n[targets.regulator]\nplugin = \"log\"\n[targets.pr]\nplugin = \"log\"\ndrill_safe = true\n[targets.oncall]\nplugin = \"log\"\ndrill_safe = true\n";

#[test]
fn the_console_shows_playbooks_and_drill_scores_and_opens_the_after_action_report() {
    let Some(mut b) = Browser::launch("console::the_console_shows_playbooks_and_drill_scores") else { return };
    let d = Daemon::start("drill/inline", DRILL_TARGETS);
    d.wait_for("the scheduled drill", || {
        d.json(&["drill", "list"])["runs"].as_array().unwrap().iter().any(|r| r["status"] == "completed")
    });
    let admin = d.token();
    sign_in(&mut b, &d, admin.trim());

    b.navigate(&d.url("/console/playbooks"));
    let text = b.eval("document.querySelector('#pb-checkout-drill pre').textContent");
    for phase in ["1 report:", "2 activate:", "3 assign:", "4 act:", "5 track:", "6 outcome:"] {
        assert!(text.as_str().unwrap().contains(phase), "{text}");
    }

    b.navigate(&d.url("/console/drills"));
    let run = b.eval("document.querySelector('#runs tr[data-run] a.report').getAttribute('href')");
    assert!(run.as_str().unwrap().ends_with("/report"), "{run}");
    assert!(b.eval("document.querySelectorAll('svg.spark rect.bar').length").as_u64().unwrap() >= 1);
    b.eval_then_load("document.querySelector('#runs a.report').click()");
    assert_eq!(b.eval("!!document.querySelector('svg#timeline') && !!document.querySelector('#score')"), true);
    // The report is the standalone file `crisis drill report` writes: it names no icon, so Chromium asks for /favicon.ico.
    let errors: Vec<String> = b.errors().into_iter().filter(|e| !e.contains("/favicon.ico")).collect();
    assert_eq!(errors, Vec::<String>::new(), "console errors or exceptions; Chromium log:\n{}", b.log());
}

/// A plain HTTP agent that does not follow redirects.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).build().into()
}

/// The `Set-Cookie` headers of a reply.
fn set_cookies(r: &ureq::http::Response<ureq::Body>) -> Vec<String> {
    r.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect()
}

#[test]
fn pages_need_a_session_and_sign_in_sets_a_strict_cookie_that_is_not_the_token() {
    let d = Daemon::start("tokens", LOG_TARGETS);
    let (alice_id, alice) = create(&d, &["alice"]);
    let a = agent();
    for path in ["/console", "/console/playbooks", "/console/incidents/INC-1", "/console/events"] {
        let r = a.get(&d.url(path)).call().unwrap();
        assert_eq!(r.status(), 303, "{path}");
        assert_eq!(r.headers().get("location").unwrap(), "/console/login", "{path}");
    }
    // The sign-in form's double-submit token comes with the page.
    let mut page = a.get(&d.url("/console/login")).call().unwrap();
    let login_cookie = set_cookies(&page)[0].split(';').next().unwrap().to_string();
    let html = page.body_mut().read_to_string().unwrap();
    let csrf = html.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    assert_eq!(login_cookie, format!("crisis_console_login={csrf}"));

    let form = |token: &str, csrf: &str| format!("token={}&csrf={csrf}", token);
    let post = |body: String, cookie: &str| {
        a.post(&d.url("/console/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", cookie)
            .send(body)
            .unwrap()
    };
    let mut bad = post(form("crisis_00000000_nope", &csrf), &login_cookie);
    assert_eq!(bad.status(), 401);
    assert!(bad.body_mut().read_to_string().unwrap().contains("wrong API token"));
    let no_csrf = post(form(&alice, ""), &login_cookie);
    assert_eq!(no_csrf.status(), 403);

    let ok = post(form(&alice, &csrf), &login_cookie);
    assert_eq!(ok.status(), 303);
    let cookies = set_cookies(&ok);
    let session = cookies.iter().find(|c| c.starts_with("crisis_console=")).unwrap();
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Strict") && session.contains("Path=/console"),
        "{session}"
    );
    assert!(!session.contains("Secure"), "plain HTTP on loopback: {session}");
    assert!(!session.contains(&alice) && !session.contains(&alice[alice.len() - 64..]), "the cookie is not the token");
    let pair = session.split(';').next().unwrap().to_string();
    let mut board = a.get(&d.url("/console")).header("cookie", &pair).call().unwrap();
    assert_eq!(board.status(), 200);
    let csp = board.headers().get("content-security-policy").unwrap().to_str().unwrap().to_string();
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"), "{csp}");
    assert!(board.body_mut().read_to_string().unwrap().contains("Open incidents"));
    let r = a.get(&d.url("/console?severity=sev9")).header("cookie", &pair).call().unwrap();
    assert_eq!(r.status(), 400);

    // Revoking the token ends the session on its next request.
    d.ok(&["token", "revoke", &alice_id]);
    let r = a.get(&d.url("/console")).header("cookie", &pair).call().unwrap();
    assert_eq!(r.status(), 303);
}
