//! The customer source: who an appeasement step may write to.
//!
//! Contact details are private: they live only in [`Contact`],
//! whose `Debug` and `Serialize` never reveal them, and leave the process
//! only through a notifier delivering a message. Reports count customers by
//! id, segment, tier and channel.

use crate::playbook::types::Channel;
use serde::{Serialize, Serializer};
use std::fmt;
use std::path::Path;

/// A customer an appeasement step may message, as read from the customer source.
#[derive(Debug, Clone, Serialize)]
pub struct Customer {
    /// The customer's stable id in the customer source; reports and plugins refer to them by it.
    pub id: String,
    /// e.g. `affected`, `enterprise`, `retail`.
    pub segment: String,
    /// e.g. `vip`, `standard`.
    pub tier: String,
    /// BCP 47 tag, e.g. `zh-CN`, `en`.
    pub locale: String,
    /// How this customer prefers to be reached; selects which [`Contact`] address a notifier uses.
    pub channel: Channel,
    /// Private contact details; never serialized, logged or shown to plugins.
    pub contact: Contact,
}

/// A customer's name, phone and email. Never printed, logged or serialized.
#[derive(Clone, Default)]
pub struct Contact {
    /// The customer's name as the message should address them.
    pub name: String,
    /// Phone number used for every non-email channel (SMS, voice, chat apps).
    pub phone: String,
    /// Email address used when the channel is email.
    pub email: String,
}

impl Contact {
    /// The address for a channel, for a notifier's delivery only.
    pub fn address(&self, channel: Channel) -> &str {
        match channel {
            Channel::Email => &self.email,
            _ => &self.phone,
        }
    }
}

impl fmt::Debug for Contact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Contact(<redacted>)")
    }
}

impl Serialize for Contact {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<redacted>")
    }
}

/// Reads `id,name,segment,tier,locale,channel,phone,email` rows.
/// Errors name the file, line and column but never echo the row's contents.
pub fn load(path: &Path) -> Result<Vec<Customer>, String> {
    let mut reader =
        csv::Reader::from_path(path).map_err(|e| format!("{}: cannot read customers: {e}", path.display()))?;
    let headers = reader.headers().map_err(|e| format!("{}:1:1: {e}", path.display()))?.clone();
    let col = |name: &str| headers.iter().position(|h| h.trim() == name);
    let need = ["id", "segment", "tier", "locale", "channel"];
    for n in need {
        if col(n).is_none() {
            return Err(format!(
                "{}:1:1: customers file lacks the `{n}` column (expected id,name,segment,tier,locale,channel,phone,email)",
                path.display()
            ));
        }
    }
    let mut out = Vec::new();
    for (i, row) in reader.records().enumerate() {
        let line = i + 2;
        let row = row.map_err(|e| format!("{}:{line}:1: malformed row: {}", path.display(), e.kind_summary()))?;
        let get = |n: &str| col(n).and_then(|c| row.get(c)).unwrap_or("").trim().to_string();
        let channel_text = get("channel");
        let channel = channel_text.parse::<Channel>().map_err(|e| {
            let c = col("channel").unwrap_or(0) + 1;
            format!("{}:{line}:{c}: {e}", path.display())
        })?;
        let id = get("id");
        if id.is_empty() {
            return Err(format!("{}:{line}:1: customer row has no id", path.display()));
        }
        out.push(Customer {
            id,
            segment: get("segment"),
            tier: get("tier"),
            locale: get("locale"),
            channel,
            contact: Contact { name: get("name"), phone: get("phone"), email: get("email") },
        });
    }
    Ok(out)
}

trait KindSummary {
    fn kind_summary(&self) -> String;
}

impl KindSummary for csv::Error {
    /// The error without the record's contents.
    fn kind_summary(&self) -> String {
        match self.kind() {
            csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
                format!("expected {expected_len} fields, found {len}")
            }
            csv::ErrorKind::Utf8 { .. } => "not valid UTF-8".to_string(),
            _ => "unreadable row".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contact_details_never_print() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.csv");
        std::fs::write(&p, "id,name,segment,tier,locale,channel,phone,email\nc1,Ann Lee,affected,vip,en,sms,+15550100,ann@example.com\n").unwrap();
        let cs = load(&p).unwrap();
        assert_eq!(cs[0].contact.address(Channel::Sms), "+15550100");
        let dbg = format!("{:?}", cs);
        let json = serde_json::to_string(&cs).unwrap();
        for leak in ["Ann Lee", "+15550100", "ann@example.com"] {
            assert!(!dbg.contains(leak) && !json.contains(leak), "{leak} leaked");
        }
    }

    #[test]
    fn bad_rows_are_positioned_without_contents() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.csv");
        std::fs::write(
            &p,
            "id,name,segment,tier,locale,channel,phone,email\nc1,Ann,affected,vip,en,pigeon,+1555,a@x\n",
        )
        .unwrap();
        let e = load(&p).unwrap_err();
        assert!(e.contains(":2:6:"), "{e}");
        assert!(!e.contains("+1555"));
    }
}
