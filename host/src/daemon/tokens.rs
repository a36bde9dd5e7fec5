//! Per-person and intake API tokens: what each role may do, how a bearer
//! secret is recognised, and the in-memory map the `/v1` gate checks (so a
//! request never waits for the journal database, and a revoked token is
//! refused on its very next request).
//!
//! A secret is `crisis_<id>_<64 hex>`: 32 random bytes plus the public id
//! (`tok_<id>`) it belongs to. Only its SHA-256 is stored; a fast hash is
//! right for 32 random bytes, which cannot be guessed. `state_dir/api.token`
//! stays the bootstrap admin token, which speaks for no person.

use super::api_types::{ApiError, TokenState};
use crate::incident::clock::{Clock, fmt_ms};
use crate::store::{TokenKind, TokenRole, TokenRow};
use axum::http::{Method, StatusCode};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Every person and intake secret starts with this; the bootstrap token does not.
pub(crate) const SECRET_PREFIX: &str = "crisis_";

/// Who the bootstrap admin token is in `created_by`, `revoked_by` and the journal.
pub(crate) const BOOTSTRAP: &str = "bootstrap-admin";

/// What a request asks to do, from its method and path. Why: the role table
/// is written once, over these, rather than in every handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Read,
    Trigger,
    Ack,
    Assign,
    Step,
    Update,
    Outcome,
    Resolve,
    Approve,
    Intake,
    Reload,
    Tokens,
    Unquarantine,
    Retry,
    DrillRun,
    DrillSchedule,
    /// A route this table does not know: admins only.
    Other,
}

impl Action {
    /// The action a `/v1` request asks for.
    pub(crate) fn of(method: &Method, path: &str) -> Action {
        let segs: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
        let post = method == Method::POST;
        match (post, segs.as_slice()) {
            (_, ["v1", "tokens", ..]) => Action::Tokens,
            (false, _) if method == Method::GET => Action::Read,
            (true, ["v1", "incidents"]) => Action::Trigger,
            (true, ["v1", "incidents", _, "ack"]) => Action::Ack,
            (true, ["v1", "incidents", _, "assign"]) => Action::Assign,
            (true, ["v1", "incidents", _, "approve"]) => Action::Approve,
            (true, ["v1", "incidents", _, "steps", _]) => Action::Step,
            (true, ["v1", "incidents", _, "updates"]) => Action::Update,
            (true, ["v1", "incidents", _, "outcome"]) => Action::Outcome,
            (true, ["v1", "incidents", _, "resolve"]) => Action::Resolve,
            (true, ["v1", "intake", _]) => Action::Intake,
            (true, ["v1", "complaints", _, "assign" | "escalate"]) => Action::Assign,
            (true, ["v1", "complaints", _, "resolve"]) => Action::Resolve,
            (true, ["v1", "reload"]) => Action::Reload,
            (true, ["v1", "plugins", _, "unquarantine"]) => Action::Unquarantine,
            (true, ["v1", "intents", _, "retry"]) => Action::Retry,
            (true, ["v1", "drills", "runs"]) => Action::DrillRun,
            // Steering a running drill is the exercise controller's job, like starting one.
            (true, ["v1", "drills", "runs", _, "cancel" | "pause" | "resume" | "injects"]) => Action::DrillRun,
            (true, ["v1", "drills", "schedules", ..]) => Action::DrillSchedule,
            _ => Action::Other,
        }
    }

    /// The least role that may do this.
    pub(crate) fn needs(self) -> TokenRole {
        match self {
            Action::Read
            | Action::Trigger
            | Action::Intake
            | Action::Ack
            | Action::Assign
            | Action::Step
            | Action::Update
            | Action::Outcome
            | Action::Resolve => TokenRole::Responder,
            Action::Approve => TokenRole::Approver,
            Action::Reload
            | Action::Tokens
            | Action::Unquarantine
            | Action::Retry
            | Action::DrillRun
            | Action::DrillSchedule
            | Action::Other => TokenRole::Admin,
        }
    }
}

/// Whether `role` may do `action`: each role holds the powers of those below it.
pub(crate) fn role_allows(role: TokenRole, action: Action) -> bool {
    role >= action.needs()
}

/// The hex SHA-256 of a secret, as stored.
pub(crate) fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The public id a person or intake secret names; `None` for anything else.
pub(crate) fn secret_id(secret: &str) -> Option<String> {
    let rest = secret.strip_prefix(SECRET_PREFIX)?;
    let (id, key) = rest.split_once('_')?;
    let hexlike = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hexlike(id, 8) && hexlike(key, 64)).then(|| format!("tok_{id}"))
}

/// Compares without leaking where the first difference is.
pub(crate) fn token_matches(expected: &str, given: &str) -> bool {
    let (a, b) = (expected.as_bytes(), given.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A fresh token: its public id and its secret (shown once, never stored).
pub(crate) fn generate() -> (String, String) {
    use rand::Rng;
    let mut rng = rand::rng();
    let id: [u8; 4] = rng.random();
    let key: [u8; 32] = rng.random();
    let id = hex::encode(id);
    (format!("tok_{id}"), format!("{SECRET_PREFIX}{id}_{}", hex::encode(key)))
}

/// A stored token's state at `now`.
pub(crate) fn state_at(row: &TokenRow, now: i64) -> TokenState {
    if row.revoked_at.is_some() {
        TokenState::Revoked
    } else if row.expires_at.is_some_and(|e| now >= e) {
        TokenState::Expired
    } else {
        TokenState::Active
    }
}

/// Whom a request's token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Grant {
    /// `state_dir/api.token`: an admin that is no person.
    Bootstrap,
    /// A roster person's token.
    Person { person: String, role: TokenRole },
    /// An alert source's token: intake routes only.
    Intake { name: String },
}

/// The authenticated caller, put on each `/v1` request by the gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Caller {
    /// The token's public id; `None` for the bootstrap token.
    pub token: Option<String>,
    pub grant: Grant,
}

/// Who acts in a request, and the admin acting for them, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Acting {
    /// The acting person; `None` only for the bootstrap token without `as`.
    pub person: Option<String>,
    /// The admin acting for `person` (its person, or [`BOOTSTRAP`]) and its token id.
    pub delegated_by: Option<(String, Option<String>)>,
}

/// An admin acting for someone else, as it is journaled before the action.
pub(crate) struct Delegation<'a> {
    /// The admin's person id, or [`BOOTSTRAP`].
    pub by: &'a str,
    /// The admin's token id (none for the bootstrap token).
    pub token: Option<&'a str>,
    /// The person acted for.
    pub person: &'a str,
}

impl Acting {
    /// The admin acting for the person, when there is one: what every action
    /// journals as `acting_for` before it runs.
    pub(crate) fn delegation(&self) -> Option<Delegation<'_>> {
        match (&self.person, &self.delegated_by) {
            (Some(person), Some((by, token))) => Some(Delegation { by, token: token.as_deref(), person }),
            _ => None,
        }
    }
}

impl Caller {
    /// The bootstrap admin.
    pub(crate) fn bootstrap() -> Caller {
        Caller { token: None, grant: Grant::Bootstrap }
    }

    /// Who this caller is in `created_by`, `revoked_by` and logs.
    pub(crate) fn label(&self) -> String {
        match &self.grant {
            Grant::Bootstrap => BOOTSTRAP.to_string(),
            Grant::Person { person, .. } => person.clone(),
            Grant::Intake { name } => format!("intake:{name}"),
        }
    }

    /// Whether this caller may do `action`; `Err` says why not.
    pub(crate) fn may(&self, action: Action) -> Result<(), String> {
        let id = self.token.as_deref().unwrap_or(BOOTSTRAP);
        match &self.grant {
            Grant::Bootstrap => Ok(()),
            Grant::Intake { .. } if action == Action::Intake => Ok(()),
            Grant::Intake { name } => Err(format!(
                "token {id} is the intake token of `{name}`: it may only POST /v1/intake/*; use a person's token for anything else"
            )),
            Grant::Person { role, .. } if role_allows(*role, action) => Ok(()),
            Grant::Person { person, role } => Err(format!(
                "token {id} ({person}, role {role}) may not do this: it needs the {} role; ask an admin for such a token (crisis token create {person} --role {})",
                action.needs(),
                action.needs()
            )),
        }
    }

    /// Who acts when the request says `as` (empty counts as absent): admins
    /// may act for anyone, others only for themselves.
    pub(crate) fn acting(&self, requested: Option<String>) -> Result<Acting, ApiError> {
        let requested = requested.filter(|s| !s.trim().is_empty());
        let me = || Acting { person: None, delegated_by: None };
        match (&self.grant, requested) {
            (Grant::Bootstrap, None) => Ok(me()),
            (Grant::Bootstrap, Some(p)) => {
                Ok(Acting { person: Some(p), delegated_by: Some((BOOTSTRAP.to_string(), None)) })
            }
            (Grant::Person { person, .. }, None) => Ok(Acting { person: Some(person.clone()), delegated_by: None }),
            (Grant::Person { person, .. }, Some(p)) if &p == person => {
                Ok(Acting { person: Some(p), delegated_by: None })
            }
            (Grant::Person { person, role: TokenRole::Admin }, Some(p)) => {
                Ok(Acting { person: Some(p), delegated_by: Some((person.clone(), self.token.clone())) })
            }
            (Grant::Person { person, role }, Some(p)) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "this token is {person}'s (role {role}); only an admin token may act for someone else (`as` {p}): drop --as, or use {p}'s own token"
                ),
            )),
            (Grant::Intake { name }, _) => {
                Err(ApiError::new(StatusCode::FORBIDDEN, format!("the intake token of `{name}` acts for no person")))
            }
        }
    }
}

/// Why a bearer token was not accepted (401).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Rejected {
    Unknown,
    Revoked { id: String, at: i64 },
    Expired { id: String, at: i64 },
}

impl Rejected {
    /// The reply's sentence: what happened and what to do.
    pub(crate) fn message(&self) -> String {
        match self {
            Rejected::Unknown => {
                "wrong API token: use the token in state_dir/api.token, or one from `crisis token create`".into()
            }
            Rejected::Revoked { id, at } => {
                format!(
                    "API token {id} was revoked at {}; ask an admin for a new one (crisis token create)",
                    fmt_ms(*at)
                )
            }
            Rejected::Expired { id, at } => {
                format!("API token {id} expired at {}; ask an admin for a new one (crisis token create)", fmt_ms(*at))
            }
        }
    }
}

/// The tokens the gate accepts: the bootstrap secret plus every stored
/// token by public id. Loaded at start, changed on create and revoke.
pub(crate) struct TokenRegistry {
    bootstrap: String,
    by_id: RwLock<HashMap<String, TokenRow>>,
    clock: Arc<dyn Clock>,
}

impl TokenRegistry {
    /// The gate's map from the bootstrap secret and the stored rows.
    pub(crate) fn new(bootstrap: &str, rows: Vec<TokenRow>, clock: Arc<dyn Clock>) -> TokenRegistry {
        let by_id = rows.into_iter().map(|r| (r.id.clone(), r)).collect();
        TokenRegistry { bootstrap: bootstrap.to_string(), by_id: RwLock::new(by_id), clock }
    }

    /// Unix milliseconds now, by the registry's clock.
    pub(crate) fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The caller a bearer secret stands for.
    pub(crate) fn authenticate(&self, secret: &str) -> Result<Caller, Rejected> {
        if token_matches(&self.bootstrap, secret) {
            return Ok(Caller::bootstrap());
        }
        let id = secret_id(secret).ok_or(Rejected::Unknown)?;
        let map = self.by_id.read().unwrap_or_else(|p| p.into_inner());
        let row = map.get(&id).ok_or(Rejected::Unknown)?;
        if !token_matches(&row.secret_sha256, &hash_secret(secret)) {
            return Err(Rejected::Unknown);
        }
        match state_at(row, self.now()) {
            TokenState::Active => {}
            TokenState::Revoked => return Err(Rejected::Revoked { id, at: row.revoked_at.unwrap_or_default() }),
            TokenState::Expired => return Err(Rejected::Expired { id, at: row.expires_at.unwrap_or_default() }),
        }
        let grant = match row.kind {
            TokenKind::Intake => Grant::Intake { name: row.subject.clone() },
            TokenKind::Person => {
                Grant::Person { person: row.subject.clone(), role: row.role.unwrap_or(TokenRole::Responder) }
            }
        };
        Ok(Caller { token: Some(id), grant })
    }

    /// Adds a token just stored.
    pub(crate) fn insert(&self, row: TokenRow) {
        self.by_id.write().unwrap_or_else(|p| p.into_inner()).insert(row.id.clone(), row);
    }

    /// Marks a token revoked; `None` if unknown, `Some(false)` if it already was.
    pub(crate) fn revoke(&self, id: &str, at: i64, by: &str) -> Option<bool> {
        let mut map = self.by_id.write().unwrap_or_else(|p| p.into_inner());
        let row = map.get_mut(id)?;
        if row.revoked_at.is_some() {
            return Some(false);
        }
        row.revoked_at = Some(at);
        row.revoked_by = Some(by.to_string());
        Some(true)
    }

    /// Every token, oldest first.
    pub(crate) fn list(&self) -> Vec<TokenRow> {
        let mut v: Vec<TokenRow> = self.by_id.read().unwrap_or_else(|p| p.into_inner()).values().cloned().collect();
        v.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        v
    }

    /// Whether the stored token `id` is still accepted (not revoked, not
    /// expired). Why: a console session made with it ends on its next request.
    pub(crate) fn still_valid(&self, id: &str) -> Result<(), Rejected> {
        let map = self.by_id.read().unwrap_or_else(|p| p.into_inner());
        let row = map.get(id).ok_or(Rejected::Unknown)?;
        match state_at(row, self.now()) {
            TokenState::Active => Ok(()),
            TokenState::Revoked => {
                Err(Rejected::Revoked { id: id.to_string(), at: row.revoked_at.unwrap_or_default() })
            }
            TokenState::Expired => {
                Err(Rejected::Expired { id: id.to_string(), at: row.expires_at.unwrap_or_default() })
            }
        }
    }

    /// Every token id, for "did you mean".
    pub(crate) fn ids(&self) -> Vec<String> {
        self.by_id.read().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::clock::ManualClock;

    fn row(id: &str, secret: &str, kind: TokenKind, subject: &str, role: Option<TokenRole>) -> TokenRow {
        TokenRow {
            id: id.into(),
            secret_sha256: hash_secret(secret),
            kind,
            subject: subject.into(),
            role,
            created_at: 1,
            created_by: BOOTSTRAP.into(),
            expires_at: None,
            revoked_at: None,
            revoked_by: None,
        }
    }

    #[test]
    fn the_role_table() {
        use Action::*;
        let all = [
            Read,
            Trigger,
            Ack,
            Assign,
            Step,
            Update,
            Outcome,
            Resolve,
            Approve,
            Intake,
            Reload,
            Tokens,
            Unquarantine,
            Retry,
            DrillRun,
            DrillSchedule,
            Other,
        ];
        let responder = [Read, Trigger, Ack, Assign, Step, Update, Outcome, Resolve, Intake];
        for a in all {
            assert_eq!(role_allows(TokenRole::Responder, a), responder.contains(&a), "responder {a:?}");
            assert_eq!(role_allows(TokenRole::Approver, a), responder.contains(&a) || a == Approve, "approver {a:?}");
            assert!(role_allows(TokenRole::Admin, a), "admin {a:?}");
        }
        let intake = Caller { token: Some("tok_1".into()), grant: Grant::Intake { name: "am".into() } };
        for a in all {
            assert_eq!(intake.may(a).is_ok(), a == Intake, "intake {a:?}");
        }
        assert!(intake.may(Read).unwrap_err().contains("may only POST /v1/intake/*"));
    }

    #[test]
    fn routes_map_to_actions() {
        let (get, post) = (Method::GET, Method::POST);
        for (m, p, a) in [
            (&get, "/v1/incidents/INC-1", Action::Read),
            (&get, "/v1/status", Action::Read),
            (&get, "/v1/tokens", Action::Tokens),
            (&post, "/v1/tokens/tok_1/revoke", Action::Tokens),
            (&post, "/v1/incidents", Action::Trigger),
            (&post, "/v1/incidents/INC-1/approve", Action::Approve),
            (&post, "/v1/incidents/INC-1/steps/dispatch", Action::Step),
            (&post, "/v1/intake/alertmanager", Action::Intake),
            (&post, "/v1/intake/events", Action::Intake),
            (&post, "/v1/reload", Action::Reload),
            (&post, "/v1/plugins/log/unquarantine", Action::Unquarantine),
            (&post, "/v1/intents/INC-1.2/retry", Action::Retry),
            (&post, "/v1/drills/runs", Action::DrillRun),
            (&post, "/v1/drills/schedules/outage/suspend", Action::DrillSchedule),
            (&post, "/v1/nothing", Action::Other),
            (&Method::DELETE, "/v1/incidents/INC-1", Action::Other),
        ] {
            assert_eq!(Action::of(m, p), a, "{m} {p}");
        }
    }

    #[test]
    fn secrets_parse_and_hash() {
        let (id, secret) = generate();
        assert_eq!(secret_id(&secret), Some(id.clone()));
        assert!(id.starts_with("tok_") && id.len() == 12, "{id}");
        assert_eq!(secret.len(), SECRET_PREFIX.len() + 8 + 1 + 64);
        let h = hash_secret(&secret);
        assert_eq!(h.len(), 64);
        assert!(!h.contains(&secret[SECRET_PREFIX.len() + 9..]));
        assert_eq!(hash_secret("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        for bad in [
            "",
            "crisis_",
            "crisis_0011aabb",
            "crisis_0011aabb_xyz",
            "crisis_001_".to_string().as_str(),
            &"a".repeat(64),
        ] {
            assert_eq!(secret_id(bad), None, "{bad}");
        }
        assert_ne!(generate().1, secret);
    }

    #[test]
    fn expired_and_revoked_tokens_are_refused() {
        let clock = Arc::new(ManualClock::new(1_000));
        let (pid, psecret) = generate();
        let (iid, isecret) = generate();
        let mut person = row(&pid, &psecret, TokenKind::Person, "alice", Some(TokenRole::Approver));
        person.expires_at = Some(2_000);
        let reg = TokenRegistry::new(
            "b00tstrap",
            vec![person, row(&iid, &isecret, TokenKind::Intake, "am", None)],
            clock.clone(),
        );
        assert_eq!(reg.authenticate("b00tstrap"), Ok(Caller::bootstrap()));
        assert_eq!(reg.authenticate("b00tstrapx"), Err(Rejected::Unknown));
        let alice = reg.authenticate(&psecret).unwrap();
        assert_eq!(alice.grant, Grant::Person { person: "alice".into(), role: TokenRole::Approver });
        // One character off: unknown, never "someone else's".
        let mut wrong = psecret.clone();
        wrong.pop();
        wrong.push(if psecret.ends_with('0') { '1' } else { '0' });
        assert_eq!(reg.authenticate(&wrong), Err(Rejected::Unknown));
        clock.set(1_999);
        assert!(reg.authenticate(&psecret).is_ok());
        clock.set(2_000);
        assert_eq!(reg.authenticate(&psecret), Err(Rejected::Expired { id: pid.clone(), at: 2_000 }));
        assert!(reg.authenticate(&isecret).is_ok());
        assert_eq!(reg.revoke(&iid, 2_500, "carol"), Some(true));
        assert_eq!(reg.revoke(&iid, 2_600, "carol"), Some(false));
        assert_eq!(reg.revoke("tok_nope", 2_600, "carol"), None);
        assert_eq!(reg.authenticate(&isecret), Err(Rejected::Revoked { id: iid, at: 2_500 }));
    }

    #[test]
    fn only_admins_act_for_others() {
        let person =
            |role| Caller { token: Some("tok_a".into()), grant: Grant::Person { person: "alice".into(), role } };
        let r = person(TokenRole::Approver);
        assert_eq!(r.acting(None).unwrap().person.as_deref(), Some("alice"));
        assert_eq!(r.acting(Some("alice".into())).unwrap().delegated_by, None);
        let e = r.acting(Some("bob".into())).unwrap_err();
        assert_eq!(e.status, StatusCode::FORBIDDEN);
        assert!(e.body.error.contains("only an admin token may act for someone else"), "{}", e.body.error);
        let a = person(TokenRole::Admin).acting(Some("bob".into())).unwrap();
        assert_eq!(a.person.as_deref(), Some("bob"));
        assert_eq!(a.delegated_by, Some(("alice".into(), Some("tok_a".into()))));
        let b = Caller::bootstrap();
        assert_eq!(b.acting(Some(" ".into())).unwrap(), Acting { person: None, delegated_by: None });
        assert_eq!(b.acting(Some("bob".into())).unwrap().delegated_by, Some((BOOTSTRAP.into(), None)));
    }
}
