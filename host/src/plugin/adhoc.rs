//! Calls on components that are not registered: `crisis plugin inspect` and
//! `crisis plugin call` load a file, check it like a reload would, and run
//! it once without touching the registry.

use super::api::*;
use super::call::{CallKind, CallValue};
use super::capabilities;
use super::error::{LoadError, PluginCallError};
use super::grant::{PluginGrant, ResolvedGrant};
use super::host::PluginHost;
use super::limits::Limits;
use super::stub::StubUpstream;
use std::collections::BTreeMap;
use std::sync::Arc;

impl PluginHost {
    /// Describe a component without registering it: world, imports, exports,
    /// capabilities, sha256 and `describe()`. Refused components produce the
    /// same error a load would. Why: `crisis plugin inspect FILE`.
    pub fn inspect(&self, bytes: &[u8]) -> Result<Inspection, LoadError> {
        let v = self.prepare("inspect", bytes, PluginSource::Bytes, None, None)?;
        Ok(Inspection {
            world: v.world,
            api_version: v.api_version.clone(),
            capabilities: capabilities::capabilities(&v.imports),
            imports: v.imports.clone(),
            exports: v.exports.clone(),
            sha256: v.sha256.clone(),
            size_bytes: v.size,
            describe: v.describe.clone(),
        })
    }

    /// Run one call of an unregistered component with JSON input, for
    /// `crisis plugin call FILE --world W --input JSON`. Input fields (all
    /// optional, defaults filled in): `invocation`, `config`, `grant` (a
    /// `PluginGrant` as JSON) and per world: notifier `notification`;
    /// appeasement `incident`, `customer`; drill `op` (`plan`|`score`),
    /// `incident`, `params`, `journal`; classifier `complaint` (`text`,
    /// `channel`, `locale`). `mode` overrides the invocation's mode.
    pub fn call_json(
        &self,
        bytes: &[u8],
        world: World,
        input_json: &str,
        mode: RunMode,
    ) -> Result<serde_json::Value, PluginCallError> {
        self.call_json_with(bytes, world, input_json, mode, None)
    }

    /// [`Self::call_json`] with outgoing HTTP answered by `stub` instead of
    /// the network or the drill capture. Why: `crisis plugin test` replays
    /// recorded upstream answers.
    pub fn call_json_stubbed(
        &self,
        bytes: &[u8],
        world: World,
        input_json: &str,
        mode: RunMode,
        stub: Arc<dyn StubUpstream>,
    ) -> Result<serde_json::Value, PluginCallError> {
        self.call_json_with(bytes, world, input_json, mode, Some(stub))
    }

    fn call_json_with(
        &self,
        bytes: &[u8],
        world: World,
        input_json: &str,
        mode: RunMode,
        stub: Option<Arc<dyn StubUpstream>>,
    ) -> Result<serde_json::Value, PluginCallError> {
        #[derive(serde::Deserialize, Default)]
        #[serde(default, deny_unknown_fields)]
        struct Input {
            invocation: Invocation,
            config: BTreeMap<String, String>,
            grant: Option<PluginGrant>,
            notification: Notification,
            incident: IncidentInfo,
            customer: CustomerRef,
            op: Option<String>,
            params: Vec<(String, String)>,
            journal: Option<serde_json::Value>,
            complaint: super::classifier::ComplaintInput,
        }
        let name = "call";
        let bad = |m: String| PluginCallError::Input { plugin: name.into(), message: m };
        let input: Input = if input_json.trim().is_empty() {
            Input::default()
        } else {
            serde_json::from_str(input_json).map_err(|e| bad(format!("input is not valid JSON for {world}: {e}")))?
        };
        let grant = match &input.grant {
            Some(g) => Arc::new(g.resolve(name).map_err(|e| bad(e.0))?),
            None => Arc::new(ResolvedGrant::default()),
        };
        let v = self
            .prepare_with(name, bytes, PluginSource::Bytes, Some(world), None, grant.clone())
            .map_err(|source| PluginCallError::Load { plugin: name.into(), source })?;
        let mut inv = input.invocation.clone();
        inv.mode = mode;
        if inv.invocation_id.is_empty() {
            inv.invocation_id = format!("call-{}", uuid::Uuid::now_v7());
        }
        let limits = Limits::for_world(world).with_overrides(&grant.limits, &self.caps);
        let mut config = grant.config.clone();
        config.extend(input.config.clone());
        let kind = match world {
            World::Notifier => CallKind::Send(inv.clone(), input.notification.clone()),
            World::Appeasement => CallKind::Compose(inv.clone(), input.incident.clone(), input.customer.clone()),
            World::Drill => match input.op.as_deref().unwrap_or("plan") {
                "plan" => CallKind::Plan(inv.clone(), input.incident.clone(), input.params.clone()),
                "score" => CallKind::Score(
                    inv.clone(),
                    input.journal.clone().unwrap_or(serde_json::Value::Array(vec![])).to_string(),
                ),
                other => return Err(bad(format!("op `{other}`: use `plan` or `score`"))),
            },
            World::Classifier => CallKind::Classify(inv.clone(), input.complaint.clone()),
        };
        let env = super::call::CallEnv { stub, ..self.call_env() };
        let out = env.run(&v, grant, &limits, limits.call_budget, mode, &inv.invocation_id, config, kind)?;
        let value = match out.value {
            CallValue::Describe(d) => serde_json::to_value(d),
            CallValue::Send(r) => serde_json::to_value(r),
            CallValue::Compose(m) => serde_json::to_value(m),
            CallValue::Plan(s) => serde_json::to_value(s),
            CallValue::Score(c) => serde_json::to_value(c),
            CallValue::Classify(c) => serde_json::to_value(c),
        }
        .expect("plain types serialize");
        Ok(serde_json::json!({
            "plugin": v.describe.name,
            "version": v.describe.version,
            "sha256": v.sha256,
            "world": world,
            "mode": mode,
            "value": value,
            "http": out.http,
            "logs": out.logs,
        }))
    }
}
