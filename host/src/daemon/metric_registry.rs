//! Registering groups of metrics: one shape for every struct of metric
//! families (the daemon's own, the complaints'), in a file of its own so
//! each of them can use it without importing the others.

/// Registers `(name, help, metric)` entries in a registry, each metric
/// cloned (a clone shares its values), so a group of metrics lists its
/// families once instead of repeating the registration call.
macro_rules! register_all {
    ($r:expr, $( ($name:expr, $help:expr, $metric:expr) ),* $(,)?) => {
        $( $r.register($name, $help, $metric.clone()); )*
    };
}
pub(crate) use register_all;
