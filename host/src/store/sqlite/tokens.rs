//! The API tokens table: one row per token, holding the SHA-256 of its
//! secret and never the secret itself.

use super::{Result, TokenKind, TokenRole, TokenRow};
use rusqlite::{Connection, params};

fn kind_str(k: TokenKind) -> &'static str {
    match k {
        TokenKind::Person => "person",
        TokenKind::Intake => "intake",
    }
}

pub(super) fn insert(conn: &Connection, t: &TokenRow) -> Result<()> {
    conn.execute(
        "INSERT INTO api_tokens (id, secret_sha256, kind, subject, role, created_at, created_by, expires_at, revoked_at, revoked_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            t.id,
            t.secret_sha256,
            kind_str(t.kind),
            t.subject,
            t.role.map(TokenRole::as_str),
            t.created_at,
            t.created_by,
            t.expires_at,
            t.revoked_at,
            t.revoked_by
        ],
    )?;
    Ok(())
}

pub(super) fn all(conn: &Connection) -> Result<Vec<TokenRow>> {
    let mut stmt = conn.prepare(
        "SELECT id, secret_sha256, kind, subject, role, created_at, created_by, expires_at, revoked_at, revoked_by
         FROM api_tokens ORDER BY created_at, id",
    )?;
    let rows = stmt.query_map([], |r| {
        let kind: String = r.get(2)?;
        let role: Option<String> = r.get(4)?;
        Ok((
            kind,
            role,
            r.get::<_, String>(0)?,
            r.get(1)?,
            r.get(3)?,
            r.get(5)?,
            r.get(6)?,
            r.get(7)?,
            r.get(8)?,
            r.get(9)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (kind, role, id, secret_sha256, subject, created_at, created_by, expires_at, revoked_at, revoked_by) = row?;
        let kind = match kind.as_str() {
            "person" => TokenKind::Person,
            "intake" => TokenKind::Intake,
            other => anyhow::bail!("API token {id} has unknown kind `{other}` in the journal database"),
        };
        let role = match role.as_deref() {
            None => None,
            Some(s) => Some(
                TokenRole::parse(s)
                    .ok_or_else(|| anyhow::anyhow!("API token {id} has unknown role `{s}` in the journal database"))?,
            ),
        };
        out.push(TokenRow {
            id,
            secret_sha256,
            kind,
            subject,
            role,
            created_at,
            created_by,
            expires_at,
            revoked_at,
            revoked_by,
        });
    }
    Ok(out)
}

pub(super) fn revoke(conn: &Connection, id: &str, at: i64, by: &str) -> Result<bool> {
    let n = conn.execute(
        "UPDATE api_tokens SET revoked_at = ?2, revoked_by = ?3 WHERE id = ?1 AND revoked_at IS NULL",
        params![id, at, by],
    )?;
    Ok(n == 1)
}
