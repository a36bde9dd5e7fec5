//! The hash chain that makes the journal tamper-evident.
//!
//! Each event's hash covers the previous event's stored hash and every field
//! of the event, length-prefixed. Events written with a [`JournalKey`] carry
//! an HMAC-SHA256 under that key (stored as `k1:` + hex), so whoever can write
//! the database but not read the key cannot recompute the chain after an
//! edit. Events written before the journal had a key carry plain SHA-256
//! (bare hex); the first keyed event chains onto the last of them, so the
//! unkeyed prefix is covered by every keyed hash after it.
//!
//! Nothing here depends on the database: every backend stores the same
//! strings and checks them with these functions.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type ChainMac = Hmac<Sha256>;

/// The `prev_hash` of the first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Prefix of a stored hash computed as HMAC-SHA256 under the journal key.
pub const KEYED_PREFIX: &str = "k1:";

/// Length of a journal key in bytes.
pub(crate) const KEY_LEN: usize = 32;

/// The secret that authenticates the journal chain. Why a type: it is kept
/// outside the database and must never be printed, so `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct JournalKey([u8; KEY_LEN]);

impl std::fmt::Debug for JournalKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JournalKey(..)")
    }
}

impl JournalKey {
    /// A key from exactly [`KEY_LEN`] bytes; the error says how many were given.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let arr: [u8; KEY_LEN] = bytes
            .try_into()
            .map_err(|_| format!("a journal key is exactly {KEY_LEN} bytes, this one has {}", bytes.len()))?;
        Ok(JournalKey(arr))
    }

    /// A fresh random key.
    pub fn generate() -> Self {
        use rand::Rng;
        JournalKey(rand::rng().random())
    }

    /// The raw key, to be written to its private file.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    fn mac(&self) -> ChainMac {
        // HMAC accepts keys of any length; a 32-byte key never fails.
        <ChainMac as Mac>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
    }

    /// A keyed seal over labelled, length-prefixed parts (`k1:` + hex): for
    /// records beside the chain (where keying began, pinned playbook specs).
    pub fn seal(&self, label: &str, parts: &[&[u8]]) -> String {
        let mut m = self.mac();
        feed(&mut m, label.as_bytes());
        for p in parts {
            feed(&mut m, p);
        }
        format!("{KEYED_PREFIX}{}", hex::encode(m.finalize().into_bytes()))
    }
}

/// Which algorithm produced a stored hash, read from its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlg {
    /// Plain SHA-256, from before the journal had a key.
    Unkeyed,
    /// HMAC-SHA256 under the journal key.
    Keyed,
}

impl HashAlg {
    /// The algorithm a stored hash string was made with.
    pub fn of(stored: &str) -> HashAlg {
        if stored.starts_with(KEYED_PREFIX) { HashAlg::Keyed } else { HashAlg::Unkeyed }
    }
}

fn feed(m: &mut impl Mac, part: &[u8]) {
    m.update(&(part.len() as u64).to_be_bytes());
    m.update(part);
}

/// The fields of one event that its hash covers, besides the previous hash.
#[derive(Debug, Clone, Copy)]
pub struct EventFields<'a> {
    /// Position in the journal.
    pub seq: i64,
    /// The incident it belongs to.
    pub incident_id: &'a str,
    /// Unix milliseconds.
    pub at: i64,
    /// Event type name.
    pub kind: &'a str,
    /// The event's JSON text exactly as stored.
    pub data: &'a str,
}

impl EventFields<'_> {
    fn parts<'p>(&'p self, prev: &'p str, seq: &'p [u8; 8], at: &'p [u8; 8]) -> [&'p [u8]; 6] {
        [prev.as_bytes(), seq, self.incident_id.as_bytes(), at, self.kind.as_bytes(), self.data.as_bytes()]
    }

    /// sha256 over the previous hash and every field (journals without a key).
    pub fn unkeyed_hash(&self, prev: &str) -> String {
        let (s, a) = (self.seq.to_be_bytes(), self.at.to_be_bytes());
        let mut h = Sha256::new();
        for part in self.parts(prev, &s, &a) {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part);
        }
        hex::encode(h.finalize())
    }

    /// HMAC-SHA256 under `key` over the same fields, stored as `k1:` + hex.
    pub fn keyed_hash(&self, key: &JournalKey, prev: &str) -> String {
        let (s, a) = (self.seq.to_be_bytes(), self.at.to_be_bytes());
        let mut m = key.mac();
        for part in self.parts(prev, &s, &a) {
            feed(&mut m, part);
        }
        format!("{KEYED_PREFIX}{}", hex::encode(m.finalize().into_bytes()))
    }

    /// The hash a new event gets: keyed when the store has a key.
    pub fn next_hash(&self, key: Option<&JournalKey>, prev: &str) -> String {
        match key {
            Some(k) => self.keyed_hash(k, prev),
            None => self.unkeyed_hash(prev),
        }
    }

    /// Recomputes a stored hash with the algorithm its prefix names; a keyed
    /// hash cannot be checked without the key (`None`).
    pub fn recompute(&self, key: Option<&JournalKey>, stored: &str, prev: &str) -> Option<String> {
        match HashAlg::of(stored) {
            HashAlg::Unkeyed => Some(self.unkeyed_hash(prev)),
            HashAlg::Keyed => key.map(|k| self.keyed_hash(k, prev)),
        }
    }
}

/// sha256 over the previous hash and every field of the event (unkeyed journals).
pub fn event_hash(prev: &str, seq: i64, incident_id: &str, at: i64, kind: &str, data: &str) -> String {
    EventFields { seq, incident_id, at, kind, data }.unkeyed_hash(prev)
}

/// The seal recording that keyed hashing began at event `seq`.
pub(crate) fn keyed_from_seal(key: &JournalKey, seq: i64) -> String {
    key.seal("crisis journal keyed from", &[&seq.to_be_bytes()])
}

/// The seal over a pinned playbook version: its hash, playbook id and stored spec text.
pub(crate) fn playbook_seal(key: &JournalKey, hash: &str, playbook_id: &str, spec: &str) -> String {
    key.seal("crisis pinned playbook", &[hash.as_bytes(), playbook_id.as_bytes(), spec.as_bytes()])
}

/// A chain position an operator recorded elsewhere (`SEQ:HASH`), to prove
/// later that event `SEQ` still has that hash even after the chain grew.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Anchor {
    /// The event's position in the journal.
    pub seq: i64,
    /// Its stored hash (`k1:` + hex for keyed events).
    pub hash: String,
}

impl std::fmt::Display for Anchor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.seq, self.hash)
    }
}

impl std::str::FromStr for Anchor {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not an anchor: expected SEQ:HASH as printed by `crisis verify --anchor`");
        let (seq, hash) = s.trim().split_once(':').ok_or_else(bad)?;
        let seq: i64 = seq.parse().map_err(|_| bad())?;
        let hex = hash.strip_prefix(KEYED_PREFIX).unwrap_or(hash);
        if seq < 1 || hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        Ok(Anchor { seq, hash: hash.to_string() })
    }
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

    #[test]
    fn keyed_hash_differs_from_unkeyed_and_between_keys() {
        let k = JournalKey::from_bytes(&[7; 32]).unwrap();
        let f = EventFields { seq: 1, incident_id: "INC-1", at: 5, kind: "k", data: "{}" };
        let plain = event_hash(GENESIS, 1, "INC-1", 5, "k", "{}");
        assert_eq!(f.unkeyed_hash(GENESIS), plain);
        let keyed = f.keyed_hash(&k, GENESIS);
        assert!(keyed.starts_with(KEYED_PREFIX));
        assert_ne!(keyed.trim_start_matches(KEYED_PREFIX), plain);
        assert_eq!(HashAlg::of(&keyed), HashAlg::Keyed);
        assert_eq!(HashAlg::of(&plain), HashAlg::Unkeyed);
        let other = JournalKey::from_bytes(&[8; 32]).unwrap();
        assert_ne!(keyed, f.keyed_hash(&other, GENESIS));
        assert_eq!(f.recompute(Some(&k), &keyed, GENESIS), Some(keyed.clone()));
        assert_eq!(f.recompute(None, &keyed, GENESIS), None);
        assert_eq!(f.recompute(None, &plain, GENESIS), Some(plain.clone()));
        assert_ne!(keyed_from_seal(&k, 3), keyed_from_seal(&other, 3));
        assert_ne!(keyed_from_seal(&k, 3), keyed_from_seal(&k, 4));
    }

    #[test]
    fn anchors_read_back_what_they_print() {
        let keyed = format!("12:{KEYED_PREFIX}{}", "ab".repeat(32));
        let a: Anchor = keyed.parse().unwrap();
        assert_eq!((a.seq, a.to_string()), (12, keyed));
        let plain: Anchor = format!("3:{}", "0".repeat(64)).parse().unwrap();
        assert_eq!(plain.hash, "0".repeat(64));
        for bad in ["12", "x:ab", "0:ab", "4:zz", "4:k1:abc"] {
            assert!(bad.parse::<Anchor>().unwrap_err().contains("SEQ:HASH"), "{bad}");
        }
    }

    #[test]
    fn keys_have_exactly_32_bytes_and_never_print() {
        assert!(JournalKey::from_bytes(&[1; 31]).unwrap_err().contains("31"));
        assert_eq!(format!("{:?}", JournalKey::from_bytes(&[1; 32]).unwrap()), "JournalKey(..)");
    }
}
