//! `crisis token ...`: create, list and revoke per-person and intake API
//! tokens (an admin token is needed, e.g. the bootstrap `state_dir/api.token`).

use super::Cli;
use super::client::Client;
use super::output::{Failure, print_reply, table};
use crate::daemon::api_types::{CreateTokenBody, CreatedToken, TokenInfo};
use crate::incident::clock::fmt_ms;
use crate::store::{TokenKind, TokenRole};
use clap::Subcommand;
use std::io::Write;
use std::path::{Path, PathBuf};

const ROLES_HELP: &str = "Roles:
  responder  read, trigger, ack, assign, mark steps, post updates, record the outcome, resolve
  approver   a responder who may also approve activations and approval steps
             (the playbook's approver rule still applies: e.g. role:duty-manager)
  admin      everything: reload, tokens, unquarantine, retry, drills, and --as PERSON
             (acting for someone else is journaled on the incident)
An intake token (--intake NAME) may only POST /v1/intake/*; everything else is refused.";

/// `crisis token` subcommands.
#[derive(Debug, Subcommand)]
#[command(after_help = ROLES_HELP)]
pub enum TokenCmd {
    /// Create a token for a roster person (default role responder), or an
    /// intake token for an alert source with --intake. The secret is printed
    /// (or written to --out) once and cannot be shown again.
    #[command(after_help = ROLES_HELP)]
    Create {
        /// Roster person id the token acts as.
        #[arg(required_unless_present = "intake", conflicts_with = "intake")]
        person: Option<String>,
        /// What the person's token may do: responder, approver or admin (see Roles below).
        #[arg(long, value_parser = parse_role, default_value = "responder", conflicts_with = "intake")]
        role: TokenRole,
        /// An intake token for this alert source (e.g. alertmanager) instead of a person's token.
        #[arg(long, value_name = "NAME")]
        intake: Option<String>,
        /// Lifetime, e.g. 90d, 12h, 1y; default: until revoked.
        #[arg(long, value_name = "DURATION", value_parser = parse_expires)]
        expires: Option<u64>,
        /// Write the secret to this new file (mode 0640; an existing file or symlink is refused) instead of printing it.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Every token with its person or source, role and state; never a secret.
    #[command(after_help = ROLES_HELP)]
    List,
    /// Revoke a token: it is refused from its next request on.
    Revoke {
        /// Token id (`tok_...`, see `crisis token list`).
        id: String,
    },
}

fn parse_role(s: &str) -> Result<TokenRole, String> {
    TokenRole::parse(s).ok_or_else(|| format!("unknown role `{s}`: use responder, approver or admin"))
}

fn parse_expires(s: &str) -> Result<u64, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("`{s}` is not a duration like 90d or 12h: {e}"))?;
    match d.as_secs() {
        0 => Err("a token's lifetime must be at least one second".into()),
        n => Ok(n),
    }
}

/// Runs `crisis token ...`.
pub(crate) fn run(cli: &Cli, cmd: &TokenCmd) -> Result<(), Failure> {
    let c = Client::from_cli(cli)?;
    match cmd {
        TokenCmd::Create { person, role, intake, expires, out } => {
            let body = match (person, intake) {
                (_, Some(name)) => CreateTokenBody::Intake { name: name.clone(), expires_in_secs: *expires },
                (Some(p), None) => {
                    CreateTokenBody::Person { person: p.clone(), role: *role, expires_in_secs: *expires }
                }
                (None, None) => {
                    return Err(Failure::invalid("name a roster PERSON, or --intake NAME for an alert source"));
                }
            };
            // Opened before the token exists, so a refused path leaves no token behind.
            let mut file = out.as_deref().map(create_secret_file).transpose()?;
            let created: CreatedToken = match c.post("/v1/tokens", &body) {
                Ok(v) => v,
                Err(e) => {
                    if let Some(path) = out {
                        let _ = std::fs::remove_file(path);
                    }
                    return Err(e);
                }
            };
            if let (Some(f), Some(path)) = (file.as_mut(), out) {
                f.write_all(format!("{}\n", created.secret).as_bytes()).and_then(|()| f.sync_all()).map_err(|e| {
                    Failure::failed(format!(
                        "token {} was created but {} could not be written ({e}): revoke it with `crisis token revoke {}`",
                        created.token.id,
                        path.display(),
                        created.token.id
                    ))
                })?;
            }
            print_created(cli, &created, out.as_deref());
            Ok(())
        }
        TokenCmd::List => {
            let list: Vec<TokenInfo> = c.get("/v1/tokens")?;
            if cli.json {
                print_reply(&list);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|t| {
                    vec![
                        t.id.clone(),
                        who(t),
                        t.role.map(|r| r.to_string()).unwrap_or_else(|| "intake".into()),
                        crate::cli::output::wire_name(&t.state),
                        format!("{} by {}", fmt_ms(t.created_at), t.created_by),
                        t.expires_at.map(fmt_ms).unwrap_or_else(|| "never".into()),
                    ]
                })
                .collect();
            print!("{}", table(&["ID", "FOR", "ROLE", "STATE", "CREATED", "EXPIRES"], &rows));
            Ok(())
        }
        TokenCmd::Revoke { id } => {
            let t: TokenInfo = c.post(&format!("/v1/tokens/{id}/revoke"), &serde_json::json!({}))?;
            if cli.json {
                print_reply(&t);
            } else {
                println!("revoked {} ({}): it is refused from its next request on", t.id, who(&t));
            }
            Ok(())
        }
    }
}

fn who(t: &TokenInfo) -> String {
    match t.kind {
        TokenKind::Person => t.subject.clone(),
        TokenKind::Intake => format!("intake:{}", t.subject),
    }
}

fn print_created(cli: &Cli, created: &CreatedToken, out: Option<&Path>) {
    let t = &created.token;
    if cli.json {
        match out {
            Some(_) => print_reply(t),
            None => print_reply(created),
        }
        return;
    }
    let role = t.role.map(|r| format!(", role {r}")).unwrap_or_default();
    let expires = t.expires_at.map(|e| format!(", expires {}", fmt_ms(e))).unwrap_or_default();
    println!("created {} for {}{role}{expires}", t.id, who(t));
    match out {
        Some(path) => println!("the secret is in {} (mode 0640); it cannot be shown again", path.display()),
        None => {
            println!("{}", created.secret);
            println!("this secret cannot be shown again: store it now (e.g. in ~/.config/crisis/token, mode 0600)");
        }
    }
}

/// A new file for a secret: `O_CREAT|O_EXCL|O_NOFOLLOW`, so an existing file
/// or a symlink is never written through, and mode 0640 (owner and group).
fn create_secret_file(path: &Path) -> Result<std::fs::File, Failure> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o640)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => Failure::failed(format!(
                "{} already exists: it is never overwritten; remove it first, or choose another --out",
                path.display()
            )),
            _ => Failure::failed(format!("cannot create {}: {e}", path.display())),
        })?;
    // The umask may have taken bits away; the mode is exactly 0640.
    f.set_permissions(std::fs::Permissions::from_mode(0o640))
        .map_err(|e| Failure::failed(format!("cannot set the mode of {}: {e}", path.display())))?;
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn secret_files_are_new_0640_and_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("intake.token");
        drop(create_secret_file(&path).unwrap());
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o640);
        let again = create_secret_file(&path).unwrap_err();
        assert!(again.message.contains("never overwritten"), "{}", again.message);
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), &link).unwrap();
        assert!(create_secret_file(&link).is_err());
        assert!(!dir.path().join("elsewhere").exists());
    }

    #[test]
    fn roles_and_lifetimes_parse() {
        assert_eq!(parse_role("approver"), Ok(TokenRole::Approver));
        assert!(parse_role("root").unwrap_err().contains("responder, approver or admin"));
        assert_eq!(parse_expires("90d"), Ok(90 * 86_400));
        assert!(parse_expires("soon").is_err());
        assert!(parse_expires("0s").is_err());
    }
}
