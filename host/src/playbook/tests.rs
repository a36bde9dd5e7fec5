//! Every validation rule, one at a time, with the exact line and column it
//! reports. Each test breaks the shared valid fixture in one place
//! (`tests/fixtures/valid/base.toml`), so the expected positions can be
//! checked against that file by eye.

use super::refs::RefContext;
use super::types::World;
use super::*;
use crate::diag::Source;
use std::path::Path;

/// A valid playbook using every phase and step kind.
pub(crate) const BASE: &str = include_str!("../../../tests/fixtures/valid/base.toml");

/// What the base playbook may reference: the names of examples/roster.toml
/// and the six targets both the embedded default and examples/crisis.toml declare.
pub(crate) fn ctx() -> RefContext {
    let mut c = RefContext::builtins_only();
    let set = |names: &[&str]| names.iter().map(|s| s.to_string()).collect();
    c.targets = set(&["superiors", "departments", "customers", "regulator", "pr", "oncall"]);
    c.rotas = set(&["cs-duty", "cs-manager"]);
    c.teams = set(&["pr", "legal", "scribes"]);
    c.people = set(&["director", "dpo"]);
    c.roles = set(&["duty-manager", "director"]);
    c
}

/// `line:col: message` for every problem in `text`, sorted by position.
fn errors(text: &str) -> Vec<String> {
    errors_with(text, &ctx())
}

fn errors_with(text: &str, ctx: &RefContext) -> Vec<String> {
    match parse_one(Path::new("pb.toml"), text, ctx) {
        Ok(_) => Vec::new(),
        Err(mut d) => {
            crate::diag::sort(&mut d);
            d.iter().map(|d| format!("{}:{}: {}", d.line, d.col, d.message)).collect()
        }
    }
}

/// The base playbook with `from` (which must occur exactly once) replaced by `to`.
fn edit(from: &str, to: &str) -> String {
    assert_eq!(BASE.matches(from).count(), 1, "`{from}` must occur exactly once in base.toml");
    BASE.replacen(from, to, 1)
}

/// Asserts exactly one error, at `at` ("line:col"), whose message contains `needle`.
#[track_caller]
fn one_error(text: &str, at: &str, needle: &str) {
    let e = errors(text);
    assert_eq!(e.len(), 1, "expected one error, got {e:#?}");
    assert!(e[0].starts_with(&format!("{at}: ")), "expected the error at {at}, got {e:#?}");
    assert!(e[0].contains(needle), "expected `{needle}` in {e:#?}");
}

// ------------------------------------------------------------- the base ---

#[test]
fn base_playbook_is_valid_and_fully_resolved() {
    let pb = parse_one(Path::new("base.toml"), BASE, &ctx()).expect("base.toml is valid");
    assert_eq!(pb.id, "base");
    assert_eq!(pb.severity, types::Severity::Sev2);
    assert_eq!(pb.category, types::Category::ServiceProcess);
    assert_eq!(pb.report.within.as_secs(), 120);
    assert_eq!(pb.assign.escalate.len(), 2);
    assert_eq!(pb.assign.escalate[1].repeat, 2);
    assert_eq!(pb.assign.escalate[0].repeat, 1, "repeat defaults to 1");
    let kinds: Vec<&str> = pb.act.iter().map(|s| s.kind.as_str()).collect();
    assert_eq!(kinds, ["dispatch", "appease", "notify", "approval"]);
    assert_eq!(pb.step("appease").unwrap().channel, Some(types::Channel::Sms));
    assert_eq!(pb.step("appease").unwrap().limits.per_minute, Some(10));
    assert_eq!(pb.drill.as_ref().unwrap().clock, spec::DrillClock::Virtual);
    assert_eq!(pb.hash.len(), 64);
}

#[test]
fn report_deadline_defaults_to_two_minutes() {
    let pb = parse_one(Path::new("x.toml"), &edit("within = \"2m\"\n", ""), &ctx()).unwrap();
    assert_eq!(pb.report.within, spec::DEFAULT_REPORT_WITHIN);
}

#[test]
fn appease_steps_default_to_the_builtin_appeasement_plugin() {
    let pb = parse_one(Path::new("x.toml"), &edit("plugin = \"appease-script\"\n", ""), &ctx()).unwrap();
    assert_eq!(pb.step("appease").unwrap().plugin.as_deref(), Some("appease-script"));
}

// ------------------------------------------------------- file-level ---

#[test]
fn empty_and_blank_files() {
    for text in ["", "  \n\n\t\n"] {
        let e = errors(text);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].starts_with("1:1: empty playbook: a playbook needs a [playbook] table"), "{e:?}");
    }
}

#[test]
fn comment_only_file_names_every_missing_phase() {
    let e = errors("# nothing yet\n");
    assert_eq!(e.len(), 7, "{e:#?}");
    for what in [
        "[playbook] table",
        "[report] phase",
        "[activate] phase",
        "[assign] phase",
        "[[act]] step",
        "[track] phase",
        "[outcome] phase",
    ] {
        assert!(e.iter().any(|m| m.starts_with("2:1: missing") && m.contains(what)), "{what} not reported: {e:#?}");
    }
}

#[test]
fn toml_syntax_error() {
    // The parser may report follow-on errors on the same line; the first is where the mistake is.
    let e = errors(&edit("severity = \"sev2\"", "severity = = \"sev2\""));
    assert!(e[0].starts_with("5:12: TOML syntax: "), "{e:#?}");
    assert!(e.iter().all(|m| m.starts_with("5:") && m.contains("TOML syntax")), "{e:#?}");
}

#[test]
fn duplicate_toml_key_is_a_syntax_error() {
    one_error(
        &edit("name = \"Base playbook\"\n", "name = \"Base playbook\"\nname = \"again\"\n"),
        "4:1",
        "TOML syntax:",
    );
}

#[test]
fn crlf_line_endings_keep_positions() {
    let text = edit("within = \"10m\"", "within = \"ten minutes\"").replace('\n', "\r\n");
    one_error(&text, "37:10", "bad duration `ten minutes`");
}

#[test]
fn positions_count_characters_not_bytes() {
    // Two 3-byte characters before the bad value on the same line.
    let text = edit(
        "tasks = [\"Open a bridge call\"]\nwithin = \"10m\"",
        "tasks = [\"Open a bridge call\"]\nname2 = \"\u{6865}\u{63a5}\"",
    );
    one_error(&text, "37:1", "unknown key `name2` in [[act]] #1");
}

// ------------------------------------------------------ keys and types ---

#[test]
fn unknown_section() {
    one_error(
        &format!("{BASE}\n[escalation]\nafter = \"5m\"\n"),
        "78:2",
        "unknown section `escalation`: expected one of playbook, trigger",
    );
}

#[test]
fn unknown_keys_everywhere_are_errors() {
    one_error(
        &edit("summary = ", "summry = "),
        "6:1",
        "unknown key `summry` in [playbook]: remove it or check its spelling",
    );
    one_error(&edit("tasks = [\"Open", "task = [\"Open"), "36:1", "unknown key `task` in [[act]] #1");
    one_error(&edit("tier = [\"vip\"]", "tiers = [\"vip\"]"), "43:36", "unknown key `tiers` in [[act]] #2");
    one_error(&edit("repeat = 2", "repeats = 2"), "29:44", "unknown key `repeats` in [assign]");
    one_error(&edit("per_minute = 10", "per_min = 10"), "46:32", "unknown key `per_min` in [[act]] #2");
    one_error(&edit("clock = \"virtual\"", "clocks = \"virtual\""), "75:1", "unknown key `clocks` in [drill]");
}

#[test]
fn wrong_types_are_reported_per_section() {
    // A type error in [assign] does not hide one in [[act]] or [track].
    let text = edit("ack_within = \"5m\"", "ack_within = 5");
    let text = text.replacen("max_messages = 100", "max_messages = \"lots\"", 1);
    let text = text.replacen("notify = [\"superiors\"]\nstale_after", "notify = \"superiors\"\nstale_after", 1);
    assert_eq!(
        errors(&text),
        [
            "26:14: [assign]: invalid type: integer `5`, expected a string",
            "46:27: [[act]] #2: invalid type: string \"lots\", expected a whole number",
            "64:10: [track]: invalid type: string \"superiors\", expected an array (written [ ... ])",
        ]
    );
}

#[test]
fn a_section_of_the_wrong_shape() {
    let text = format!(
        "report = \"soon\"\n{}",
        edit("[report]\nrequire = [\"nature\", \"scope\"]\nnotify = [\"superiors\"]\nwithin = \"2m\"\n", "")
    );
    one_error(&text, "1:10", "[report]: invalid type: string \"soon\", expected a table");
    let e = errors(&BASE.replace("[[act]]", "[act]").replacen("[act]", "[[act]]", 1));
    assert!(e.iter().any(|m| m.contains("TOML syntax")), "{e:#?}");
}

// ------------------------------------------------------------ [playbook] ---

#[test]
fn missing_required_playbook_fields() {
    one_error(&edit("id = \"base\"\n", ""), "1:2", "[playbook] is missing `id`");
    one_error(&edit("severity = \"sev2\"\n", ""), "1:2", "[playbook] is missing `severity`");
}

#[test]
fn bad_playbook_id() {
    one_error(
        &edit("id = \"base\"", "id = \"Base Outage\""),
        "2:6",
        "bad playbook id `Base Outage`: use lowercase letters, digits, `-` and `_`",
    );
}

#[test]
fn unknown_severity_and_category() {
    assert_eq!(
        errors(&edit(
            "category = \"service-process\"\nseverity = \"sev2\"",
            "category = \"pricing\"\nseverity = \"critical\""
        )),
        [
            "4:12: unknown complaint category `pricing`: expected one of product-quality, service-attitude, service-process, price, other",
            "5:12: unknown severity `critical`: expected one of sev1, sev2, sev3, sev4, sev5",
        ]
    );
}

#[test]
fn missing_playbook_table_does_not_hide_other_errors() {
    let text = edit("[playbook]\n", "[meta]\n").replacen("rota:cs-duty", "rota:nobody", 1);
    let e = errors(&text);
    assert!(e.iter().any(|m| m.starts_with("1:2: unknown section `meta`")), "{e:#?}");
    assert!(e.iter().any(|m| m.starts_with("23:13: `rota:nobody` does not resolve")), "{e:#?}");
    assert!(e.iter().any(|m| m.contains("missing the [playbook] table")), "{e:#?}");
}

#[test]
fn missing_phase_is_reported() {
    let text = edit("[track]\nupdate_every = \"30m\"\nnotify = [\"superiors\"]\nstale_after = \"1h\"\n", "");
    let lines = text.lines().count();
    one_error(&text, &format!("{}:1", lines + 1), "missing the [track] phase: every playbook names all six phases");
}

// -------------------------------------------------------------- trigger ---

#[test]
fn dedup_key_template_must_parse() {
    one_error(&edit("{{ labels.region }}\"", "{{ labels.region }\""), "10:13", "dedup_key template does not parse");
}

#[test]
fn dedup_key_may_only_use_labels_and_fields() {
    one_error(
        &edit("{{ labels.region }}\"", "{{ label.region }}\""),
        "10:13",
        "dedup_key uses unknown variable `label`",
    );
    assert!(errors(&edit("{{ labels.region }}\"", "{{ fields.scope | lower }}\"")).is_empty());
}

// ------------------------------------------------------------ durations ---

#[test]
fn bad_and_zero_durations() {
    one_error(&edit("within = \"10m\"", "within = \"ten minutes\""), "37:10", "bad duration `ten minutes`");
    one_error(&edit("within = \"10m\"", "within = \"ten minutes\""), "37:10", "write it like 90s, 2m, 1h30m or 3d");
    one_error(
        &edit("stale_after = \"1h\"", "stale_after = \"0s\""),
        "65:15",
        "duration `0s` is zero: use a positive duration",
    );
    one_error(&edit("within = \"72h\"", "within = \"3 fortnights\""), "70:10", "bad duration `3 fortnights`");
    one_error(&edit("after = \"15m\"", "after = \"15\""), "29:13", "bad duration `15`");
}

// ----------------------------------------------------------- references ---

#[test]
fn unknown_notification_targets() {
    one_error(
        &edit("notify = [\"customers\"]", "notify = [\"customer\"]"),
        "52:11",
        "unknown notification target `customer` in step `tell` notify: declare [targets.customer] in crisis.toml (known: customers, departments, oncall, pr, regulator, superiors)",
    );
    one_error(
        &edit("channels = [\"customers\", \"superiors\"]", "channels = [\"customers\", \"board\"]"),
        "19:26",
        "unknown notification target `board` in [activate] channels",
    );
    one_error(
        &edit("within = \"2m\"", "within = \"2m\"\nnotify = [\"ceo\"]").replacen(
            "notify = [\"superiors\"]\nwithin = \"2m\"\n",
            "within = \"2m\"\n",
            1,
        ),
        "15:11",
        "in [report] notify",
    );
}

#[test]
fn unresolved_rota_team_person_and_role() {
    one_error(
        &edit("rota:cs-duty", "rota:night-shift"),
        "23:13",
        "`rota:night-shift` does not resolve: add a [rotas.NAME] table in the roster (known: cs-duty, cs-manager)",
    );
    one_error(
        &edit("team:pr", "team:press"),
        "24:11",
        "`team:press` does not resolve: add a [teams.NAME] table in the roster",
    );
    one_error(
        &edit("person:director", "person:ceo"),
        "29:25",
        "`person:ceo` does not resolve: add a [people.NAME] table in the roster",
    );
    one_error(
        &edit("role:duty-manager", "role:shift-boss"),
        "18:12",
        "unknown role `shift-boss`: use an incident role (commander, liaison, scribe) or give a person `roles = [\"shift-boss\"]` in the roster",
    );
    one_error(&edit("role:director", "role:ceo"), "59:12", "unknown role `ceo`");
}

#[test]
fn malformed_references() {
    one_error(
        &edit("rota:cs-duty", "cs-duty"),
        "23:13",
        "`cs-duty` is not a reference: write rota:NAME, team:NAME, person:NAME or role:NAME",
    );
    one_error(&edit("team:pr", "group:pr"), "24:11", "unknown reference kind `group:`");
    one_error(&edit("team:pr", "team:"), "24:11", "`team:` names no team");
}

#[test]
fn assign_needs_a_commander() {
    one_error(&edit("commander = \"rota:cs-duty\"\n", ""), "22:2", "[assign] is missing `commander`");
}

#[test]
fn escalation_levels_must_grow() {
    one_error(
        &edit("after = \"15m\"", "after = \"5m\""),
        "29:13",
        "escalation level #2 (after `5m`) must come later than the level before it (after `5m`)",
    );
    one_error(&edit("after = \"15m\"", "after = \"1m\""), "29:13", "escalation level #2 (after `1m`)");
}

// ---------------------------------------------------------------- steps ---

#[test]
fn step_kind_unknown_or_missing() {
    one_error(
        &edit("kind = \"dispatch\"", "kind = \"page\""),
        "34:8",
        "unknown step kind `page`: expected one of dispatch, allocate, appease, notify, manual, approval",
    );
    one_error(
        &edit("kind = \"dispatch\"\n", ""),
        "33:6",
        "step `dispatch` is missing `kind` (one of dispatch, allocate, appease, notify, manual, approval)",
    );
}

#[test]
fn step_without_id_is_pointed_at_by_its_own_header() {
    let e = errors(&edit("id = \"tell\"\n", ""));
    assert_eq!(e.len(), 2, "{e:#?}");
    assert!(e[0].starts_with("49:1: [[act]] step #3 is missing `id`: give every step a unique id"), "{e:#?}");
    // True, not a cascade: no step is called `tell` any more.
    assert!(e[1].starts_with("59:10: `after` names unknown step `tell`"), "{e:#?}");
}

#[test]
fn duplicate_step_id() {
    one_error(
        &edit("id = \"tell\"", "id = \"dispatch\"").replacen("after = [\"tell\"]", "after = [\"appease\"]", 1),
        "50:6",
        "duplicate step id `dispatch` (first defined at line 33, column 6)",
    );
}

#[test]
fn after_names_unknown_step_or_itself() {
    one_error(
        &edit("after = [\"dispatch\"]", "after = [\"dispach\"]"),
        "45:10",
        "`after` names unknown step `dispach` (steps: appease, dispatch, sign-off, tell)",
    );
    one_error(
        &edit("after = [\"tell\"]", "after = [\"sign-off\"]"),
        "60:10",
        "step `sign-off` cannot come after itself",
    );
}

#[test]
fn after_cycle_names_the_cycle() {
    // dispatch -> sign-off -> tell -> appease -> dispatch
    let text = edit("within = \"10m\"", "within = \"10m\"\nafter = [\"sign-off\"]");
    // Reported once, at the `after` entry of the first step (by id) that closes it.
    one_error(&text, "46:10", "`after` forms a cycle: appease -> dispatch -> sign-off -> tell -> appease");
}

#[test]
fn after_cycle_through_a_broken_step_is_still_found() {
    let text = edit("within = \"10m\"", "within = \"10m\"\nafter = [\"appease\"]").replacen(
        "channel = \"sms\"",
        "channel = \"fax\"",
        1,
    );
    let e = errors(&text);
    assert_eq!(e.len(), 2, "{e:#?}");
    assert!(e[0].starts_with("45:11: unknown customer channel `fax`"), "{e:#?}");
    assert!(e[1].starts_with("46:10: `after` forms a cycle: appease -> dispatch -> appease"), "{e:#?}");
}

#[test]
fn plugins_must_exist_and_fit_the_step() {
    one_error(
        &edit("plugin = \"appease-script\"", "plugin = \"appease-scrpt\""),
        "42:10",
        "unknown plugin `appease-scrpt`: use a built-in or declare [plugins.appease-scrpt] in crisis.toml (known: appease-script, drill-sim, keyword-classifier, sms-gateway, webhook-notify)",
    );
    one_error(
        &edit("plugin = \"appease-script\"", "plugin = \"webhook-notify\""),
        "42:10",
        "plugin `webhook-notify` implements the notifier world, but an `appease` step needs an appeasement plugin",
    );
    one_error(
        &edit("owner = \"role:commander\"", "plugin = \"webhook-notify\""),
        "35:10",
        "a `dispatch` step runs no plugin",
    );
    // An operator-declared plugin with the right world is accepted.
    let mut c = ctx();
    c.plugins.insert("sms-gateway".into(), World::Notifier);
    assert!(errors_with(&edit("message = \"We are on it.\"", "plugin = \"sms-gateway\""), &c).is_empty());
}

#[test]
fn kind_specific_requirements() {
    one_error(
        &edit("channel = \"sms\"\n", ""),
        "40:6",
        "appease step `appease` needs `channel` (one of phone, sms, email, social)",
    );
    one_error(
        &edit("channel = \"sms\"", "channel = \"fax\""),
        "44:11",
        "unknown customer channel `fax`: expected one of phone, sms, email, social",
    );
    one_error(&edit("notify = [\"customers\"]\n", ""), "50:6", "notify step `tell` needs `notify = [\"TARGET\", ...]`");
    one_error(
        &edit("approval = \"role:director\"\n", ""),
        "57:6",
        "approval step `sign-off` needs `approval = \"role:NAME\"`",
    );
}

#[test]
fn limits_must_be_positive() {
    one_error(&edit("per_minute = 10", "per_minute = 0"), "40:6", "step `appease` limits must be positive");
    one_error(&edit("max_messages = 100", "max_messages = -1"), "46:27", "expected a whole number");
}

#[test]
fn when_must_compile_and_use_known_variables() {
    one_error(&edit("\"severity <= sev2\"", "\"severity <= sev2 &&\""), "47:9", "`when` is not a valid CEL expression");
    one_error(
        &edit("\"severity <= sev2\"", "\"sevirity <= sev2\""),
        "47:8",
        "`when` uses unknown variable `sevirity`: available are severity, sev1",
    );
    assert!(errors(&edit("\"severity <= sev2\"", "\"category == 'price' && !drill\"")).is_empty());
}

#[test]
fn incomplete_when_expressions_do_not_panic() {
    // cel-parser 0.10 panics on these; the validator must turn that into an error.
    for bad in ["severity <= ", "severity <= ((", "(", "sev1 ||", "!"] {
        let e = errors(&edit("\"severity <= sev2\"", &format!("\"{bad}\"")));
        assert_eq!(e.len(), 1, "{bad}: {e:#?}");
        assert!(e[0].starts_with("47:") && e[0].contains("`when` is not a valid CEL expression"), "{bad}: {e:#?}");
    }
    // And the parser still works afterwards.
    assert!(errors(BASE).is_empty());
}

// ------------------------------------------------------ report/outcome ---

#[test]
fn required_fields_must_be_known() {
    one_error(
        &edit("require = [\"nature\", \"scope\"]", "require = [\"nature\", \"blast-radius\"]"),
        "13:22",
        "unknown report field `blast-radius`: expected one of nature, time, scope, consequences",
    );
    one_error(
        &edit("\"process\", \"aftermath\"", "\"process\", \"blame\""),
        "68:32",
        "unknown outcome field `blame`: expected one of cause, process, aftermath",
    );
}

// ---------------------------------------------------------------- drill ---

#[test]
fn drill_schedule_time_zone_clock_and_simulator() {
    one_error(&edit("\"0 10 * * TUE\"", "\"0 25 * * TUE\""), "73:12", "bad cron schedule `0 25 * * TUE`");
    one_error(&edit("\"0 10 * * TUE\"", "\"every tuesday\""), "73:12", "write five fields like \"0 10 * * TUE\"");
    one_error(
        &edit("\"Asia/Shanghai\"", "\"Asia/Peking\""),
        "74:12",
        "unknown time zone `Asia/Peking`: use an IANA name like Asia/Shanghai or Europe/Berlin",
    );
    one_error(&edit("\"Asia/Shanghai\"", "\"CST+8\""), "74:12", "unknown time zone `CST+8`");
    one_error(&edit("clock = \"virtual\"", "clock = \"x1\""), "75:9", "unknown drill clock `x1`");
    one_error(
        &edit("\"drill-sim\"", "\"appease-script\""),
        "76:13",
        "plugin `appease-script` implements the appeasement world; a drill simulator needs a drill plugin",
    );
    one_error(&edit("\"drill-sim\"", "\"chaos\""), "76:13", "unknown drill simulator plugin `chaos`");
    let pb = parse_one(Path::new("x.toml"), &edit("clock = \"virtual\"", "clock = \"x60\""), &ctx()).unwrap();
    assert_eq!(pb.drill.unwrap().clock, spec::DrillClock::Speed(60));
}

// -------------------------------------------------- every error at once ---

#[test]
fn every_error_in_a_file_is_reported_at_once() {
    let text = edit("severity = \"sev2\"", "severity = \"sev0\"")
        .replacen("within = \"5m\"\n\n[assign]", "within = \"5 mims\"\n\n[assign]", 1)
        .replacen("rota:cs-manager", "rota:managers", 1)
        .replacen("kind = \"notify\"", "kind = \"notfy\"", 1)
        .replacen("timezone = \"Asia/Shanghai\"", "timezone = \"Mars/Olympus\"", 1);
    let e = errors(&text);
    let expected = [
        "5:12: unknown severity `sev0`: expected one of sev1, sev2, sev3, sev4, sev5",
        // The middle of this one is humantime's own wording.
        "20:10: bad duration `5 mims`: unknown time unit \"mims\"",
        "28:24: `rota:managers` does not resolve: add a [rotas.NAME] table in the roster (known: cs-duty, cs-manager)",
        "51:8: unknown step kind `notfy`: expected one of dispatch, allocate, appease, notify, manual, approval",
        "74:12: unknown time zone `Mars/Olympus`: use an IANA name like Asia/Shanghai or Europe/Berlin",
    ];
    assert_eq!(e.len(), expected.len(), "{e:#?}");
    for (got, want) in e.iter().zip(expected) {
        assert!(got.starts_with(want), "expected `{want}`, got `{got}`");
    }
    assert!(e[1].ends_with("; write it like 90s, 2m, 1h30m or 3d"), "{e:#?}");
}

// ------------------------------------------------------------- the set ---

fn snapshot(files: &[(&str, &str)]) -> Snapshot {
    Snapshot { files: files.iter().map(|(p, t)| Source::new(*p, *t)).collect(), read_errors: Vec::new() }
}

#[test]
fn duplicate_ids_across_files() {
    let v = validate(&snapshot(&[("a.toml", BASE), ("b.toml", BASE)]), &ctx());
    let e: Vec<String> = v.diagnostics.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        e,
        ["b.toml:2:6: duplicate playbook id `base`: already used by a.toml:2:6; ids are unique across files"]
    );
    assert!(v.playbooks.is_empty(), "an invalid set yields no playbooks");
}

#[test]
fn duplicate_ids_are_found_even_in_files_with_other_errors() {
    let broken = BASE.replacen("\"sev2\"", "\"sev9\"", 1);
    let v = validate(&snapshot(&[("a.toml", BASE), ("b.toml", &broken)]), &ctx());
    let e: Vec<String> = v.diagnostics.iter().map(|d| d.to_string()).collect();
    assert_eq!(e.len(), 2, "{e:#?}");
    assert!(e[0].starts_with("b.toml:2:6: duplicate playbook id `base`"), "{e:#?}");
    assert!(e[1].starts_with("b.toml:5:12: unknown severity `sev9`"), "{e:#?}");
}

#[test]
fn a_valid_set_is_sorted_by_id() {
    let other = BASE.replacen("id = \"base\"", "id = \"another\"", 1);
    let v = validate(&snapshot(&[("z.toml", BASE), ("a.toml", &other)]), &ctx());
    assert!(v.is_ok(), "{:?}", v.diagnostics);
    let ids: Vec<&str> = v.playbooks.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["another", "base"]);
}

#[test]
fn reading_directories_and_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A directory with no playbooks.
    std::fs::write(d.join("README.md"), "not a playbook").unwrap();
    let s = Snapshot::read(&[d.to_path_buf()]);
    assert_eq!(s.files.len(), 0);
    assert_eq!(s.read_errors.len(), 1);
    assert_eq!((s.read_errors[0].line, s.read_errors[0].col), (1, 1));
    assert!(s.read_errors[0].message.starts_with("no playbooks here"), "{:?}", s.read_errors);

    // Non-UTF-8 bytes: positioned at the first bad byte; other files still read.
    std::fs::write(d.join("good.toml"), BASE).unwrap();
    std::fs::write(d.join("latin1.toml"), b"[playbook]\nname = \"Caf\xe9\"\n").unwrap();
    std::fs::create_dir(d.join(".git")).unwrap();
    std::fs::write(d.join(".git").join("hidden.toml"), "ignored").unwrap();
    std::fs::write(d.join(".good.toml.swp"), "ignored").unwrap();
    let s = Snapshot::read(&[d.to_path_buf(), d.join("good.toml"), d.join("missing.toml")]);
    assert_eq!(s.files.len(), 1, "good.toml once; hidden files skipped");
    let e: Vec<String> = s
        .read_errors
        .iter()
        .map(|e| format!("{}:{}:{}", e.path.file_name().unwrap().to_string_lossy(), e.line, e.col))
        .collect();
    assert_eq!(e, ["latin1.toml:2:12", "missing.toml:1:1"]);
    assert!(s.read_errors[0].message.contains("not valid UTF-8"));
    assert!(s.read_errors[1].message.contains("no such file or directory"));
    // Read errors make the whole set invalid.
    assert!(!validate(&s, &ctx()).is_ok());
}

#[test]
fn set_hash_changes_with_content_not_order() {
    let a = snapshot(&[("a.toml", BASE), ("b.toml", "x")]);
    let b = snapshot(&[("b.toml", "x"), ("a.toml", BASE)]);
    let c = snapshot(&[("a.toml", BASE), ("b.toml", "y")]);
    assert_eq!(a.hash(), b.hash());
    assert_ne!(a.hash(), c.hash());
}

// ------------------------------------------------------ shipped content ---

fn repo() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

#[test]
fn shipped_playbooks_are_valid_under_the_example_config() {
    let cfg = crate::config::load(&repo().join("examples/crisis.toml")).unwrap_or_else(|e| panic!("{e:#?}"));
    let v = validate(&Snapshot::read(std::slice::from_ref(&cfg.playbooks)), &cfg.ref_context());
    assert!(v.is_ok(), "{:#?}", v.diagnostics);
    let ids: Vec<&str> = v.playbooks.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["billing-error", "data-leak", "quality-complaint-surge", "service-outage", "social-media-crisis"]);
    for p in &v.playbooks {
        let d = p.drill.as_ref().unwrap_or_else(|| panic!("{} has no [drill]", p.id));
        assert!(d.schedule.is_some() && d.timezone.is_some(), "{} drill needs schedule and timezone", p.id);
        assert!(!p.act.is_empty());
    }
    let leak = v.playbooks.iter().find(|p| p.id == "data-leak").unwrap();
    assert_eq!(leak.severity, types::Severity::Sev1);
    assert!(leak.act.iter().any(|s| s.notify.contains(&"regulator".to_string())), "data-leak notifies the regulator");
}

#[test]
fn shipped_playbooks_only_use_targets_the_embedded_default_declares() {
    let default: toml::Table = toml::from_str(crate::config::DEFAULT_CONFIG).unwrap();
    let example: toml::Table =
        toml::from_str(&std::fs::read_to_string(repo().join("examples/crisis.toml")).unwrap()).unwrap();
    let names =
        |t: &toml::Table| t["targets"].as_table().unwrap().keys().cloned().collect::<std::collections::BTreeSet<_>>();
    let mut c = crate::config::load(&repo().join("examples/crisis.toml")).unwrap().ref_context();
    c.targets = names(&default).intersection(&names(&example)).cloned().collect();
    let v = validate(&Snapshot::read(&[repo().join("playbooks")]), &c);
    assert!(v.is_ok(), "{:#?}", v.diagnostics);
}
