//! Built-in plugins, embedded at build time by `host/build.rs`.
//!
//! Why embedded: a fresh install notifies, appeases, drills and classifies complaints with no
//! separate plugin step.

/// (name, component bytes).
pub(crate) const BUILTINS: &[(&str, &[u8])] = &[
    ("webhook-notify", include_bytes!(concat!(env!("OUT_DIR"), "/webhook_notify.wasm"))),
    ("sms-gateway", include_bytes!(concat!(env!("OUT_DIR"), "/sms_gateway.wasm"))),
    ("appease-script", include_bytes!(concat!(env!("OUT_DIR"), "/appease_script.wasm"))),
    ("drill-sim", include_bytes!(concat!(env!("OUT_DIR"), "/drill_sim.wasm"))),
    ("keyword-classifier", include_bytes!(concat!(env!("OUT_DIR"), "/keyword_classifier.wasm"))),
];

/// The embedded component of a built-in, e.g. for `crisis plugin inspect
/// --builtin webhook-notify`. Why public: lets the CLI show or export it.
pub fn builtin_component(name: &str) -> Option<&'static [u8]> {
    BUILTINS.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
}
