//! Positioned diagnostics shared by every file crisis reads.
//!
//! Operators fix files in an editor, so every problem is reported as
//! `path:line:col: message` pointing at the offending key or value.

use serde::Serialize;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem found in one file, already resolved to a line and column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub path: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub col: usize,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.path.display(), self.line, self.col, self.message)
    }
}

/// A file's text plus its path, so byte spans can become line:col.
#[derive(Debug, Clone)]
pub struct Source {
    pub path: PathBuf,
    pub text: String,
}

impl Source {
    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        Source { path: path.into(), text: text.into() }
    }

    /// Line and column (1-based, columns in chars) of a byte offset.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        position_in(&self.text, offset)
    }

    /// A diagnostic at the start of `span`.
    pub fn at(&self, span: Range<usize>, message: impl Into<String>) -> Diagnostic {
        let (line, col) = self.position(span.start);
        Diagnostic { path: self.path.clone(), line, col, message: message.into() }
    }
}

/// Line and column of `offset` in `text`; offsets past the end clamp to it.
pub(crate) fn position_in(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

/// A diagnostic for a file-level problem (unreadable, empty, not UTF-8).
pub(crate) fn file_error(path: &Path, line: usize, col: usize, message: impl Into<String>) -> Diagnostic {
    Diagnostic { path: path.to_path_buf(), line, col, message: message.into() }
}

/// Sorts diagnostics by file and position so output is stable.
pub(crate) fn sort(diags: &mut [Diagnostic]) {
    diags.sort_by(|a, b| (&a.path, a.line, a.col, &a.message).cmp(&(&b.path, b.line, b.col, &b.message)));
}

/// "Did you mean" hints: the known names close to `wanted`, closest first.
///
/// A name is close when its normalised Levenshtein similarity is at least
/// one half, or when one name contains the other (`outage` finds
/// `service-outage`). At most five are returned, so a long list of ids never
/// floods an error message, and none when nothing is close.
pub(crate) fn nearby<'a>(wanted: &str, known: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    const MIN_SIMILARITY: f64 = 0.5;
    let w = wanted.to_lowercase();
    let mut scored: Vec<(f64, &str)> = known
        .into_iter()
        .filter_map(|k| {
            let kl = k.to_lowercase();
            let sim = strsim::normalized_levenshtein(&w, &kl);
            let contains = !w.is_empty() && (kl.contains(&w) || w.contains(&kl));
            (sim >= MIN_SIMILARITY || contains).then_some((sim.max(if contains { MIN_SIMILARITY } else { 0.0 }), k))
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().take(5).map(|(_, k)| k.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_lines_and_chars() {
        let t = "a = 1\nbé = \"x\"\n";
        assert_eq!(position_in(t, 0), (1, 1));
        assert_eq!(position_in(t, 6), (2, 1));
        // 'é' is two bytes but one column.
        let eq = t.find('=').unwrap();
        assert_eq!(position_in(t, t[eq + 1..].find('=').unwrap() + eq + 1), (2, 4));
        assert_eq!(position_in(t, 999), (3, 1));
    }

    #[test]
    fn nearby_names_only_close_names_closest_first() {
        let known = ["outage", "data-leak", "service-outage", "billing-error"];
        assert_eq!(nearby("outgae", known), vec!["outage"]);
        assert_eq!(nearby("outage", known)[..2], ["outage", "service-outage"]);
        assert_eq!(nearby("data-leek", known), vec!["data-leak"]);
        assert!(nearby("zzzz", known).is_empty(), "nothing close, no hint");
        let many: Vec<String> = (1..=40).map(|n| format!("INC-{n}")).collect();
        assert!(nearby("INC-9", many.iter().map(String::as_str)).len() <= 5);
    }
}
