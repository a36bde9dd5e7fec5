//! The hash chain that makes the journal tamper-evident.

use sha2::{Digest, Sha256};

/// The `prev_hash` of the first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// sha256 over the previous hash and every field of the event.
pub fn event_hash(prev: &str, seq: i64, incident_id: &str, at: i64, kind: &str, data: &str) -> String {
    let mut h = Sha256::new();
    for part in [
        prev.as_bytes(),
        &seq.to_be_bytes(),
        incident_id.as_bytes(),
        &at.to_be_bytes(),
        kind.as_bytes(),
        data.as_bytes(),
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_field_changes_the_hash() {
        let base = event_hash(GENESIS, 1, "INC-1", 5, "k", "{}");
        assert_ne!(base, event_hash(GENESIS, 2, "INC-1", 5, "k", "{}"));
        assert_ne!(base, event_hash(GENESIS, 1, "INC-2", 5, "k", "{}"));
        assert_ne!(base, event_hash(GENESIS, 1, "INC-1", 6, "k", "{}"));
        assert_ne!(base, event_hash(GENESIS, 1, "INC-1", 5, "j", "{}"));
        assert_ne!(base, event_hash(GENESIS, 1, "INC-1", 5, "k", "{ }"));
        // Length prefixes stop field boundaries from sliding.
        assert_ne!(event_hash(GENESIS, 1, "ab", 5, "c", "{}"), event_hash(GENESIS, 1, "a", 5, "bc", "{}"));
    }
}
