//! Property test: whatever an editor (or a cat on the keyboard) does to a
//! valid playbook, validation never panics, and every failure carries at
//! least one diagnostic that points inside the file.

use super::tests::{BASE, ctx};
use super::*;
use crate::diag::{Diagnostic, Source};
use proptest::prelude::*;
use std::path::Path;

/// One edit to the text.
#[derive(Debug, Clone)]
enum Mutation {
    DeleteByte(usize),
    DuplicateByte(usize),
    ReplaceByte(usize, u8),
    DeleteLine(usize),
    DuplicateLine(usize),
    SwapLines(usize, usize),
    /// Swaps the values of two `key = value` lines.
    SwapValues(usize, usize),
    /// Inserts a token that is meaningful in playbooks at a line start or byte offset.
    Insert(usize, &'static str, bool),
}

/// Fragments that exercise the parser and validator rather than plain noise.
const TOKENS: &[&str] = &[
    "[[act]]\n",
    "[playbook]\n",
    "=",
    "\"",
    "{",
    "}",
    "[",
    "]",
    ",",
    "#",
    "\n",
    "\r\n",
    "\u{feff}",
    "é",
    "中文",
    "id = \"dispatch\"\n",
    "after = [\"sign-off\"]\n",
    "after = [\"nope\"]\n",
    "when = \"severity <= \"\n",
    "when = \"(\"\n",
    "kind = \"appease\"\n",
    "plugin = \"drill-sim\"\n",
    "channel = \"fax\"\n",
    "within = \"0s\"\n",
    "within = 5\n",
    "notify = [\"nobody\"]\n",
    "owner = \"rota:\"\n",
    "dedup_key = \"{{ labels.\"\n",
    "schedule = \"61 * * * *\"\n",
    "timezone = \"Nowhere/City\"\n",
    "limits = { max_messages = 0 }\n",
    "escalate = [{ after = \"1m\", to = \"role:x\" }]\n",
    "act = 1\n",
    "x = { a = [ { b = 1 } ] }\n",
];

fn mutation() -> impl Strategy<Value = Mutation> {
    let i = 0usize..4096;
    prop_oneof![
        i.clone().prop_map(Mutation::DeleteByte),
        i.clone().prop_map(Mutation::DuplicateByte),
        (i.clone(), any::<u8>()).prop_map(|(i, b)| Mutation::ReplaceByte(i, b)),
        i.clone().prop_map(Mutation::DeleteLine),
        i.clone().prop_map(Mutation::DuplicateLine),
        (i.clone(), i.clone()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        (i.clone(), i.clone()).prop_map(|(a, b)| Mutation::SwapValues(a, b)),
        (i, prop::sample::select(TOKENS), any::<bool>()).prop_map(|(i, t, at_line)| Mutation::Insert(i, t, at_line)),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let lines = |b: &[u8]| -> Vec<Vec<u8>> { b.split_inclusive(|c| *c == b'\n').map(<[u8]>::to_vec).collect() };
    match *m {
        Mutation::DeleteByte(i) if !bytes.is_empty() => {
            bytes.remove(i % bytes.len());
        }
        Mutation::DuplicateByte(i) if !bytes.is_empty() => {
            let i = i % bytes.len();
            bytes.insert(i, bytes[i]);
        }
        Mutation::ReplaceByte(i, b) if !bytes.is_empty() => {
            let i = i % bytes.len();
            bytes[i] = b;
        }
        Mutation::DeleteLine(i) | Mutation::DuplicateLine(i) => {
            let mut ls = lines(bytes);
            if ls.is_empty() {
                return;
            }
            let i = i % ls.len();
            if matches!(m, Mutation::DeleteLine(_)) {
                ls.remove(i);
            } else {
                ls.insert(i, ls[i].clone());
            }
            *bytes = ls.concat();
        }
        Mutation::SwapLines(a, b) => {
            let mut ls = lines(bytes);
            if ls.is_empty() {
                return;
            }
            let n = ls.len();
            ls.swap(a % n, b % n);
            *bytes = ls.concat();
        }
        Mutation::SwapValues(a, b) => {
            let mut ls = lines(bytes);
            let kv: Vec<usize> = (0..ls.len()).filter(|i| ls[*i].windows(3).any(|w| w == b" = ")).collect();
            if kv.len() < 2 {
                return;
            }
            let (a, b) = (kv[a % kv.len()], kv[b % kv.len()]);
            let split = |l: &[u8]| {
                let p = l.windows(3).position(|w| w == b" = ").unwrap() + 3;
                (l[..p].to_vec(), l[p..].to_vec())
            };
            let ((ka, va), (kb, vb)) = (split(&ls[a]), split(&ls[b]));
            ls[a] = [ka, vb].concat();
            ls[b] = [kb, va].concat();
            *bytes = ls.concat();
        }
        Mutation::Insert(i, token, at_line) => {
            let at = if at_line {
                let starts: Vec<usize> = std::iter::once(0)
                    .chain(bytes.iter().enumerate().filter(|(_, c)| **c == b'\n').map(|(i, _)| i + 1))
                    .collect();
                starts[i % starts.len()]
            } else {
                i % (bytes.len() + 1)
            };
            bytes.splice(at..at, token.bytes());
        }
        _ => {}
    }
}

/// Every diagnostic points at a real place: line 1..=lines+1, column 1..=line length+1.
fn check_positions(text: &str, diags: &[Diagnostic]) -> Result<(), TestCaseError> {
    let lines: Vec<&str> = text.split('\n').collect();
    let line_count = text.lines().count();
    for d in diags {
        prop_assert!(d.line >= 1 && d.col >= 1, "unpositioned diagnostic {d}");
        prop_assert!(d.line <= line_count + 1, "line {} past the end ({line_count} lines): {d}", d.line);
        let width = lines.get(d.line - 1).map(|l| l.chars().count()).unwrap_or(0);
        prop_assert!(d.col <= width + 1, "column {} past the end of line {} ({width} chars): {d}", d.col, d.line);
        prop_assert!(!d.message.trim().is_empty(), "empty message at {}:{}", d.line, d.col);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_playbooks_never_panic_and_errors_are_positioned(muts in prop::collection::vec(mutation(), 1..5)) {
        let mut bytes = BASE.as_bytes().to_vec();
        for m in &muts {
            apply(&mut bytes, m);
        }
        // Non-UTF-8 bytes are handled by the reader (tested elsewhere); the
        // validator sees text, so replace them the way an editor would show them.
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let ctx = ctx();
        match parse_one(Path::new("m.toml"), &text, &ctx) {
            Ok(pb) => {
                prop_assert!(!pb.id.is_empty());
                prop_assert!(!pb.act.is_empty(), "a valid playbook has steps");
            }
            Err(diags) => {
                prop_assert!(!diags.is_empty(), "a failure without diagnostics");
                check_positions(&text, &diags)?;
            }
        }
        // The same text in a set, next to an unbroken copy: still no panic, and
        // each diagnostic is positioned in its own file.
        let snapshot = Snapshot { files: vec![Source::new("a.toml", BASE), Source::new("m.toml", text.clone())], read_errors: vec![] };
        let v = validate(&snapshot, &ctx);
        for d in &v.diagnostics {
            let src = if d.path == Path::new("a.toml") { BASE } else { text.as_str() };
            check_positions(src, std::slice::from_ref(d))?;
        }
        prop_assert_eq!(v.is_ok(), v.playbooks.len() == 2);
    }
}

/// CEL fragments; sequences of them are mostly malformed expressions.
const CEL_TOKENS: &[&str] = &[
    "severity",
    "sev1",
    "sev2",
    "category",
    "drill",
    "fields",
    "labels",
    "fields.vip",
    "labels['region']",
    "<=",
    "<",
    "==",
    "!=",
    "&&",
    "||",
    "!",
    "-",
    "+",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ".",
    ",",
    "?",
    ":",
    "'price'",
    "\\\"",
    "1",
    "2.5",
    "in",
    "has(",
    "size(",
    "true",
    "null",
    "b'x'",
    "\\\\",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// The CEL parser panics on some malformed input; `when` must never take the validator down.
    #[test]
    fn arbitrary_when_expressions_never_panic(tokens in prop::collection::vec(prop::sample::select(CEL_TOKENS), 0..8)) {
        let expr = tokens.join(" ");
        let text = BASE.replacen("when = \"severity <= sev2\"", &format!("when = \"{expr}\""), 1);
        if let Err(diags) = parse_one(Path::new("w.toml"), &text, &ctx()) {
            prop_assert!(!diags.is_empty());
            check_positions(&text, &diags)?;
            // Whatever went wrong is on the `when` line (47) or is a TOML error there.
            prop_assert!(diags.iter().all(|d| d.line == 47), "{diags:?}");
        }
    }
}
