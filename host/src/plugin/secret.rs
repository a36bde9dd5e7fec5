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
