//! Score trends: a playbook's recent drill scores, oldest first, with the
//! playbook version each run drilled, for `crisis drill list` and the HTML
//! after-action report.

use serde::{Deserialize, Serialize};

/// One finished, scored drill run of a playbook.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TrendPoint {
    /// Id of the drill run.
    pub run_id: String,
    /// Total score 0..=100.
    pub score: u32,
    /// `pass` or `fail`.
    pub verdict: String,
    /// sha256 (hex) of the playbook version the run drilled.
    pub playbook_hash: String,
    /// Unix ms the run started (real time).
    pub started_at: i64,
}

/// The scores as one line, oldest first (`62 70 85`), or `-` when there are none.
pub fn scores_line(points: &[TrendPoint]) -> String {
    if points.is_empty() {
        return "-".into();
    }
    points.iter().map(|p| p.score.to_string()).collect::<Vec<_>>().join(" ")
}

/// Whether the playbook was edited between the previous point and point `i` (never for the first).
pub fn changed_before(points: &[TrendPoint], i: usize) -> bool {
    i > 0 && points.get(i).zip(points.get(i - 1)).is_some_and(|(a, b)| a.playbook_hash != b.playbook_hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(score: u32, hash: &str) -> TrendPoint {
        TrendPoint {
            run_id: format!("r{score}"),
            score,
            verdict: "pass".into(),
            playbook_hash: hash.into(),
            started_at: score as i64,
        }
    }

    #[test]
    fn the_line_lists_scores_oldest_first_and_marks_edits_between_runs() {
        assert_eq!(scores_line(&[]), "-");
        let pts = [p(62, "a"), p(70, "a"), p(85, "b")];
        assert_eq!(scores_line(&pts), "62 70 85");
        assert!(!changed_before(&pts, 0));
        assert!(!changed_before(&pts, 1));
        assert!(changed_before(&pts, 2));
        assert!(!changed_before(&pts, 3));
    }
}
