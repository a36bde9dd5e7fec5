//! Paging of the incident list: the page size a request may ask for.

use serde::{Deserialize, Serialize};

/// How many incidents one page of the list holds. Why: the list is read a
/// page at a time, and a page is bounded so one request cannot ask for the
/// whole journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "u32")]
pub struct PageLimit(u32);

impl PageLimit {
    /// The page size when none is asked for.
    pub const DEFAULT: PageLimit = PageLimit(100);
    /// The largest page served.
    pub const MAX: u32 = 1000;

    /// The page size as a count.
    pub fn get(self) -> usize {
        self.0 as usize
    }
}

impl Default for PageLimit {
    fn default() -> Self {
        PageLimit::DEFAULT
    }
}

impl TryFrom<u32> for PageLimit {
    type Error = String;
    fn try_from(n: u32) -> Result<Self, String> {
        if (1..=PageLimit::MAX).contains(&n) {
            Ok(PageLimit(n))
        } else {
            Err(format!("limit must be between 1 and {} incidents per page, got {n}", PageLimit::MAX))
        }
    }
}

impl TryFrom<String> for PageLimit {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl std::fmt::Display for PageLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl From<PageLimit> for u32 {
    fn from(l: PageLimit) -> u32 {
        l.0
    }
}

impl std::str::FromStr for PageLimit {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let n: u32 = s.trim().parse().map_err(|_| {
            format!("limit must be a whole number between 1 and {} incidents per page, got `{s}`", PageLimit::MAX)
        })?;
        PageLimit::try_from(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_holds_one_to_a_thousand_incidents() {
        assert_eq!("1".parse::<PageLimit>().map(PageLimit::get), Ok(1));
        assert_eq!("1000".parse::<PageLimit>().map(PageLimit::get), Ok(1000));
        assert_eq!(PageLimit::default().get(), 100);
        for bad in ["0", "1001", "-1", "ten", ""] {
            let e = bad.parse::<PageLimit>().unwrap_err();
            assert!(e.contains("between 1 and 1000"), "{bad}: {e}");
        }
    }
}
