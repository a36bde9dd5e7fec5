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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{SqliteStore, Store};

    #[test]
    fn tokens_round_trip_and_revoke_once() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path()).unwrap();
        let row = TokenRow {
            id: "tok_00aa11bb".into(),
            secret_sha256: "ab".repeat(32),
            kind: TokenKind::Person,
            subject: "alice".into(),
            role: Some(TokenRole::Approver),
            created_at: 5,
            created_by: "bootstrap-admin".into(),
            expires_at: Some(99),
            revoked_at: None,
            revoked_by: None,
        };
        s.put_token(&row).unwrap();
        let intake = TokenRow {
            id: "tok_intake01".into(),
            secret_sha256: "cd".repeat(32),
            kind: TokenKind::Intake,
            subject: "am".into(),
            role: None,
            expires_at: None,
            created_at: 6,
            ..row.clone()
        };
        s.put_token(&intake).unwrap();
        assert_eq!(s.tokens().unwrap(), vec![row.clone(), intake]);
        assert!(s.revoke_token("tok_00aa11bb", 7, "carol").unwrap());
        assert!(!s.revoke_token("tok_00aa11bb", 8, "carol").unwrap());
        assert!(!s.revoke_token("tok_missing", 8, "carol").unwrap());
        let got = &s.tokens().unwrap()[0];
        assert_eq!((got.revoked_at, got.revoked_by.as_deref()), (Some(7), Some("carol")));
    }
}
