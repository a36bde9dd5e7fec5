//! The API tokens table in PostgreSQL: one row per token, holding the
//! SHA-256 of its secret and never the secret itself.

use super::{Result, TokenKind, TokenRole, TokenRow};
use ::postgres::Client;

fn kind_str(k: TokenKind) -> &'static str {
    match k {
        TokenKind::Person => "person",
        TokenKind::Intake => "intake",
    }
}

pub(super) fn insert(c: &mut Client, t: &TokenRow) -> Result<()> {
    c.execute(
        "INSERT INTO api_tokens (id, secret_sha256, kind, subject, role, created_at, created_by, expires_at, revoked_at, revoked_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &[
            &t.id,
            &t.secret_sha256,
            &kind_str(t.kind),
            &t.subject,
            &t.role.map(TokenRole::as_str),
            &t.created_at,
            &t.created_by,
            &t.expires_at,
            &t.revoked_at,
            &t.revoked_by,
        ],
    )?;
    Ok(())
}

pub(super) fn all(c: &mut Client) -> Result<Vec<TokenRow>> {
    let found = c.query(
        "SELECT id, secret_sha256, kind, subject, role, created_at, created_by, expires_at, revoked_at, revoked_by
         FROM api_tokens ORDER BY created_at, id",
        &[],
    )?;
    let mut out = Vec::new();
    for r in found {
        let id: String = r.try_get(0)?;
        let kind = match r.try_get::<_, &str>(2)? {
            "person" => TokenKind::Person,
            "intake" => TokenKind::Intake,
            other => anyhow::bail!("API token {id} has unknown kind `{other}` in the journal database"),
        };
        let role = match r.try_get::<_, Option<&str>>(4)? {
            None => None,
            Some(s) => Some(
                TokenRole::parse(s)
                    .ok_or_else(|| anyhow::anyhow!("API token {id} has unknown role `{s}` in the journal database"))?,
            ),
        };
        out.push(TokenRow {
            secret_sha256: r.try_get(1)?,
            kind,
            subject: r.try_get(3)?,
            role,
            created_at: r.try_get(5)?,
            created_by: r.try_get(6)?,
            expires_at: r.try_get(7)?,
            revoked_at: r.try_get(8)?,
            revoked_by: r.try_get(9)?,
            id,
        });
    }
    Ok(out)
}

pub(super) fn revoke(c: &mut Client, id: &str, at: i64, by: &str) -> Result<bool> {
    let n = c.execute(
        "UPDATE api_tokens SET revoked_at = $2, revoked_by = $3 WHERE id = $1 AND revoked_at IS NULL",
        &[&id, &at, &by],
    )?;
    Ok(n == 1)
}
