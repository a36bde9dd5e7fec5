//! Shell completions and man pages come from the same command definition as
//! `--help`: bash can load the script, `man -l` renders the pages.

use crate::common::*;
use std::process::Command;

#[test]
fn bash_loads_the_completion_script_and_completes_subcommands() {
    let script = crisis(&["completions", "bash"]);
    assert_eq!(script.code, 0, "{}", script.stderr);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crisis.bash");
    std::fs::write(&path, &script.stdout).unwrap();
    // Load it, then ask the completion function what follows `crisis tok`.
    let probe = format!(
        "source {}; COMP_WORDS=(crisis tok); COMP_CWORD=1; _crisis crisis tok crisis; complete -p crisis; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        path.display()
    );
    let out = Command::new("bash").args(["--noprofile", "--norc", "-c", &probe]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{:?} {}{}", out.status, text, String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("-F _crisis crisis"), "the script registers its function: {text}");
    assert!(text.lines().any(|l| l == "token"), "`crisis tok` completes to `token`: {text}");
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let s = crisis(&["completions", shell]);
        assert!(s.code == 0 && s.stdout.contains("crisis"), "{shell}: {}", s.stderr);
    }
    let bad = crisis(&["completions", "tcsh"]);
    assert_eq!(bad.code, 2, "an unknown shell is invalid input");
}

#[test]
fn man_pages_render_and_name_every_subcommand() {
    let page = crisis(&["man"]);
    assert_eq!(page.code, 0, "{}", page.stderr);
    assert!(page.stdout.starts_with(".ie") || page.stdout.contains(".TH crisis 1"), "roff: {}", &page.stdout[..200]);
    let dir = tempfile::tempdir().unwrap();
    let out = crisis(&["man", "--dir", dir.path().to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    for name in ["crisis.1", "crisis-trigger.1", "crisis-token-create.1", "crisis-drill-run.1", "crisis-verify.1"] {
        assert!(dir.path().join(name).is_file(), "{name} written");
    }
    let missing = crisis(&["man", "--dir", dir.path().join("nope").to_str().unwrap()]);
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    assert!(missing.stderr.contains("not a directory"), "{}", missing.stderr);
    if Command::new("man").arg("--version").output().is_err() {
        eprintln!("skipped rendering with man -l: `man` is not installed");
        return;
    }
    let rendered = Command::new("man")
        .args(["-l", dir.path().join("crisis.1").to_str().unwrap()])
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&rendered.stdout);
    assert!(rendered.status.success(), "{}", String::from_utf8_lossy(&rendered.stderr));
    assert!(text.contains("SUBCOMMANDS") && text.contains("crisis-trigger(1)"), "{text}");
}
