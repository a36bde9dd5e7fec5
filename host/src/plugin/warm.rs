//! Instances kept between calls when a grant sets `limits.warm_calls`.
//!
//! Its own file because the registry stores them per version and the call
//! path creates and reuses them; neither should depend on the other for it.

use super::state::{CapturePipe, StoreState};
use wasmtime::Store;

/// An instantiated plugin kept between calls (`limits.warm_calls`).
pub(crate) struct WarmInstance {
    pub(crate) store: Store<StoreState>,
    pub(crate) instance: wasmtime::component::Instance,
    pub(crate) stdout: CapturePipe,
    pub(crate) stderr: CapturePipe,
    pub(crate) calls: u32,
}
