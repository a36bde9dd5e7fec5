//! `crisis playbook validate|list|show` on good and broken directories.
mod common;
use common::*;

#[test]
fn version_prints() {
    let r = crisis(&["--version"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.starts_with("crisis "));
}
