//! The host-side value of a guest's secret handle.
//!
//! It sits in its own file because both the generated bindings (which map the
//! WIT resource onto it) and the store state (which creates it) name it.

/// The value behind a `crisis:plugin/host.secret` handle: only the name and
/// the host it is injected for. The secret value never enters the store.
/// `pub` only because the generated bindings re-export it; the module is private.
pub struct SecretHandle {
    pub(crate) name: String,
    pub(crate) host: String,
}
