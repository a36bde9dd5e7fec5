//! Long help texts of `crisis plugin call` and `crisis plugin test`.

pub(super) const CALL_LONG_ABOUT: &str = "\
Run one call of a plugin component with fixture input and print the result, \
every HTTP request it made and its logs.

By default the call runs in DRILL mode: outbound HTTP is captured by the host \
and answered with a synthetic 200, so nothing leaves the machine. With --live \
requests really go out, but only to hosts the grant allows (the plugin's \
declared hosts intersected with the grant's `allowed_hosts`; loopback and \
private addresses also need `allow_private`). Without a grant a live call has \
no egress at all; a drill call without a grant may address any host (every \
request is captured). Give a grant with --grant NAME (from crisis.toml) or \
`grant` in the input.

The input is JSON (inline, @FILE, or @- for stdin). It is merged over a \
built-in fixture for the world (objects key by key, your values win), so \
`--input '{\"config\":{\"url\":\"https://chat.example.com/hook\"}}'` is a complete \
notifier input. Fields:

  invocation    {invocation_id, incident_id, now_unix_ms, budget_ms}
  config        {key: value}  what the plugin reads with host.config
  grant         allowed_hosts, allow_private, drill_allow, config, limits; e.g.
                {\"allowed_hosts\": [\"127.0.0.1:8080\"], \"allow_private\": [\"127.0.0.1:8080\"]}
  notification  notifier: {target, subject, body_text, params, incident}
  incident      appeasement, drill: {id, title, playbook_id, severity, category,
                phase, summary, labels}
  customer      appeasement: {id, segment, tier, locale, channel}
  op            drill: \"plan\" (default) or \"score\", with params / journal
  complaint     classifier: {text, channel, locale}

Examples:
  crisis plugin call target/examples/python_notifier.wasm --world notifier \\
      --input '{\"config\":{\"url\":\"https://hooks.example.com/x\"}}'
  crisis plugin call --builtin appease-script --world appeasement --input @customer.json
  crisis plugin call --builtin keyword-classifier --world classifier \\
      --input '{\"complaint\":{\"text\":\"客服态度很差\",\"locale\":\"zh-CN\"}}'
  crisis plugin call my.wasm --world notifier --live --grant my-notifier --input @note.json";

pub(super) const TEST_LONG_ABOUT: &str = "\
Run recorded cases against a component and report every difference. Each case \
gives the call's input (as for `crisis plugin call`), the outgoing HTTP \
requests a notifier must make with the answers to give them, and how the call \
must end. Outgoing HTTP never reaches the network: requests that pass the \
egress policy (declared hosts ∩ grant) are answered inside the host by a stub \
upstream; refused requests are refused as usual, so a case can expect `denied`.

A case is a JSON file, or a directory with `case.json`; --case takes a case or \
a directory of cases (repeatable; default `cases/` beside FILE):

  {
    \"description\": \"a 503 answer is a transient error\",
    \"world\":  \"notifier\",            notifier | appeasement | drill | classifier
    \"export\": \"send\",                send | compose | plan | score | classify
    \"mode\":   \"drill\",               drill (default) or live; both stubbed
    \"input\":  {\"config\": {\"url\": \"https://hooks.example.com/crisis\"}},
    \"requests\": [{                     in order; all fields optional
      \"method\": \"POST\", \"host\": \"hooks.example.com\", \"path\": \"/crisis\",
      \"headers\": {\"content-type\": \"application/json\"},
      \"json\": {\"kind\": \"crisis.notification\"},   a subset of the JSON body
      \"respond\": {\"status\": 503, \"headers\": {}, \"body\": \"busy\"}
                                     or {\"fail\": \"connection-refused\" |
                                     \"connection-timeout\" | \"dns-error\"}
    }],
    \"expect\": {\"err\": \"transient\", \"message_contains\": \"answered 503\"}
  }

`expect` is {\"ok\": SUBSET} (the call's value must contain the JSON subset; {} \
accepts any object) or {\"err\": KIND} with KIND one of config, denied, transient, \
permanent, timeout, crashed, resource-exhausted. A request with no recorded \
`respond` gets 200 and an empty body; one beyond the recorded requests gets \
500 and fails the case.

Exit codes: 0 every case passed, 1 a case failed, 2 a malformed case or a \
refused component, 3 a missing component or case path.

Examples:
  crisis plugin test --builtin webhook-notify --case plugins/cases/notifier
  crisis plugin test target/examples/python_notifier.wasm --case plugins/cases/notifier --json";
