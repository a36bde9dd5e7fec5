//! One applied set of playbooks and configuration, swapped whole on reload.

use crate::config::Config;
use crate::config::customers::Customer;
use crate::playbook::spec::Playbook;
use std::collections::BTreeMap;
use std::sync::Arc;

/// One applied set of playbooks and configuration. Swapped whole on reload.
pub struct Generation {
    /// Sequence number of this generation, increasing with each successful load.
    pub number: u64,
    /// Hash over the playbook set and config, to tell whether a reload changed anything.
    pub set_hash: String,
    /// Unix milliseconds when this generation was loaded.
    pub loaded_at: i64,
    /// Validated playbooks by id.
    pub playbooks: BTreeMap<String, Arc<Playbook>>,
    /// The configuration this generation was loaded with.
    pub config: Arc<Config>,
    /// Customers from the customer source; empty if none is configured.
    pub customers: Arc<Vec<Customer>>,
}
