//! The host-side value of a guest's secret handle.
//!
//! It sits in its own file because both the generated bindings (which map the
//! WIT resource onto it) and the store state (which creates it) name it.

/// The value behind a `crisis:plugin/host.secret` handle: only the name and
/// the host it is injected for. The secret value never enters the store.
/// `pub` only because the generated bindings re-export it; the module is private.
#[expect(unreachable_pub, reason = "the generated wasmtime bindings re-export this type")]
pub struct SecretHandle {
    pub(crate) name: String,
    pub(crate) host: String,
}

/// A resolved secret. Why a newtype: `Debug` never prints the value.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(String);

impl SecretValue {
    /// Wrap a value resolved elsewhere (e.g. by the daemon's secret store).
    pub fn new(value: impl Into<String>) -> Self {
        SecretValue(value.into())
    }
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretValue([redacted])")
    }
}

/// The placeholder `host.hmac-sha256` replaces with the signing secret.
pub(crate) const SECRET_PLACEHOLDER: &str = "{secret}";

/// Why the host refused to sign. Why typed: the guest gets `config` for a
/// template without the placeholder and `denied` for an ungranted name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SignError {
    /// Neither template names `{secret}`: the result would not depend on the secret.
    NoPlaceholder,
}

/// HMAC-SHA256 over templates in which every `{secret}` becomes the secret.
/// Why templates: DingTalk keys the MAC with the secret and signs text that
/// contains it, Feishu keys it with text that contains the secret; one
/// function serves both without the secret entering the guest.
pub(crate) fn hmac_sha256(
    secret: &SecretValue,
    key_template: &str,
    message_template: &str,
) -> Result<Vec<u8>, SignError> {
    use hmac::{Hmac, Mac};
    if !key_template.contains(SECRET_PLACEHOLDER) && !message_template.contains(SECRET_PLACEHOLDER) {
        return Err(SignError::NoPlaceholder);
    }
    let key = key_template.replace(SECRET_PLACEHOLDER, secret.expose());
    let message = message_template.replace(SECRET_PLACEHOLDER, secret.expose());
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()) else {
        unreachable!("HMAC accepts keys of any length")
    };
    mac.update(message.as_bytes());
    Ok(mac.finalize().into_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn hmac_matches_rfc4231_and_substitutes_the_secret() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let v = hmac_sha256(&SecretValue::new("Jefe"), "{secret}", "what do ya want for nothing?").unwrap();
        assert_eq!(hex(&v), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        // The same bytes when the secret sits inside the key text.
        let w = hmac_sha256(&SecretValue::new("efe"), "J{secret}", "what do ya want for nothing?").unwrap();
        assert_eq!(v, w);
        // Message side: HMAC("k", "1\nJefe").
        let a = hmac_sha256(&SecretValue::new("Jefe"), "k", "1\n{secret}").unwrap();
        let b = hmac_sha256(&SecretValue::new("x"), "k", "1\nJefe");
        assert_eq!(b, Err(SignError::NoPlaceholder));
        assert_ne!(a, v);
    }
}
