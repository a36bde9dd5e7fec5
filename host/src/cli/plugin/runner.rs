//! `crisis plugin test FILE [--case PATH]...`: run recorded cases against a
//! component and report every difference. Exit 0 when all pass, 1 when any
//! fails, 2 for a refused component or a malformed case, 3 for a missing path.

use super::cases::{Case, case_files, compare_requests, compare_result, err_kind};
use super::{CacheArgs, Cli, cache_dir, config_in_use, load_config, new_host, read_component};
use crate::cli::output::{Failure, print_json};
use crate::plugin::{LoadError, PluginCallError};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One case's outcome, as `--json` prints it.
#[derive(Debug, Serialize)]
struct CaseReport {
    case: String,
    description: String,
    passed: bool,
    /// Every difference, one readable line each.
    failures: Vec<String>,
    /// The requests the plugin made, as `METHOD scheme://host/path`.
    requests: Vec<String>,
    /// The call's value, or its error kind and message.
    result: Value,
}

pub(super) fn test(
    cli: &Cli,
    file: Option<&Path>,
    builtin: Option<&str>,
    cases: &[PathBuf],
    cache: &CacheArgs,
) -> Result<(), Failure> {
    let (bytes, origin) = read_component(file, builtin)?;
    let roots: Vec<PathBuf> = match (cases.is_empty(), file) {
        (false, _) => cases.to_vec(),
        (true, Some(f)) => vec![f.parent().unwrap_or(Path::new(".")).join("cases")],
        (true, None) => return Err(Failure::invalid("give the cases of a built-in plugin with --case PATH")),
    };
    let mut files = Vec::new();
    for root in &roots {
        let found = case_files(root).map_err(|m| {
            if root.exists() { Failure::invalid(m) } else { Failure::not_found(format!("{m} (give --case PATH)")) }
        })?;
        files.extend(found);
    }
    let loaded: Vec<(PathBuf, Case)> = files
        .into_iter()
        .map(|f| Case::load(&f).map(|c| (f, c)))
        .collect::<Result<_, _>>()
        .map_err(|m| Failure::invalid(format!("{m}\n(see `crisis plugin test --help` for the case format)")))?;

    let cfg = if config_in_use(cli) { Some(load_config(cli)?) } else { None };
    let host = new_host(cache_dir(cli, cache, cfg.as_ref()), BTreeMap::new(), false)?;
    let mut reports = Vec::new();
    for (path, case) in &loaded {
        let stub = Arc::new(case.stub());
        let input = case.call_input().to_string();
        let result = host.call_json_stubbed(&bytes, case.world, &input, case.mode, stub.clone());
        if let Err(PluginCallError::Load { source, .. }) = &result {
            let code = if matches!(source, LoadError::Io { .. }) { 1 } else { 2 };
            return Err(Failure::new(code, format!("{origin} was refused: {source}")));
        }
        let seen = stub.seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut failures = compare_requests(&case.requests, &seen);
        failures.extend(compare_result(&case.expect, &result));
        reports.push(CaseReport {
            case: path.display().to_string(),
            description: case.description.clone(),
            passed: failures.is_empty(),
            failures,
            requests: seen.iter().map(|r| format!("{} {}://{}{}", r.method, r.scheme, r.host, r.path)).collect(),
            result: match &result {
                Ok(out) => serde_json::json!({ "ok": out["value"] }),
                Err(e) => {
                    let (kind, message) = err_kind(e);
                    serde_json::json!({ "err": kind, "message": message })
                }
            },
        });
    }
    let failed = reports.iter().filter(|r| !r.passed).count();
    if cli.json {
        print_json(&serde_json::json!({
            "file": origin,
            "passed": reports.len() - failed,
            "failed": failed,
            "cases": reports,
        }));
    } else {
        for r in &reports {
            let about = if r.description.is_empty() { String::new() } else { format!(" — {}", r.description) };
            println!("{} {}{about}", if r.passed { "PASS" } else { "FAIL" }, r.case);
            for f in &r.failures {
                println!("    {f}");
            }
            if !r.passed {
                println!(
                    "    requests made: {}",
                    if r.requests.is_empty() { "none".into() } else { r.requests.join(", ") }
                );
                println!("    result: {}", r.result);
            }
        }
        println!("{origin}: {} cases, {} passed, {failed} failed", reports.len(), reports.len() - failed);
    }
    if failed > 0 {
        // Already printed; only the exit code is left to give.
        return Err(Failure::new(1, ""));
    }
    Ok(())
}
