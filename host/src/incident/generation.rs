//! One applied set of playbooks and configuration, swapped whole on reload.

use crate::config::customers::Customer;
use crate::config::Config;
use crate::playbook::spec::Playbook;
use std::collections::BTreeMap;
use std::sync::Arc;

/// One applied set of playbooks and configuration. Swapped whole on reload.
pub struct Generation {
    pub number: u64,
    pub set_hash: String,
    pub loaded_at: i64,
    pub playbooks: BTreeMap<String, Arc<Playbook>>,
    pub config: Arc<Config>,
    pub customers: Arc<Vec<Customer>>,
}
