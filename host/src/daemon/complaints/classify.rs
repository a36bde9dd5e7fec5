//! The classification pipeline: the category given with the complaint,
//! else the first `[[complaints.rule]]` that matches, else `other` with
//! confidence 0.

use crate::config::complaints::ComplaintRule;
use crate::incident::complaint::ClassifiedBy;
use crate::playbook::types::Category;

/// A complaint's category, how sure it is (0 to 1) and which step decided.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Classification {
    /// The category.
    pub category: Category,
    /// 0.0 to 1.0.
    pub confidence: f64,
    /// The step that decided.
    pub by: ClassifiedBy,
}

/// Classifies one complaint, trying each step in order. A classifier plugin
/// step belongs between the rules and the `other` default: it is asked only
/// when no rule matched, and its answer (category, confidence, plugin name)
/// is used when it gives one.
pub(crate) fn classify(given: Option<Category>, rules: &[ComplaintRule], locale: &str, text: &str) -> Classification {
    if let Some(category) = given {
        return Classification { category, confidence: 1.0, by: ClassifiedBy::Given };
    }
    if let Some((i, r)) = rules.iter().enumerate().find(|(_, r)| r.matches(locale, text)) {
        return Classification { category: r.category, confidence: r.confidence, by: ClassifiedBy::Rule { index: i + 1 } };
    }
    Classification { category: Category::Other, confidence: 0.0, by: ClassifiedBy::Default }
}
