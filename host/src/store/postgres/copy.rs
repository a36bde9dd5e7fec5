//! Copying a SQLite journal into an empty PostgreSQL database, row for row,
//! in one transaction: the events keep their sequence numbers, their text
//! and their hashes, so the chain verifies unchanged under the same key.
//!
//! Tables and columns are read from both schemas rather than listed here:
//! every SQLite table is copied into the PostgreSQL table of the same name,
//! each column into the column of the same name (a column only PostgreSQL
//! has keeps its default). A SQLite table or column with rows that has no
//! place in PostgreSQL stops the copy before anything is written, so nothing
//! is ever left behind silently. Rows go through `COPY ... FROM STDIN
//! BINARY`, which takes a journal of millions of events in seconds.

use super::{PgStore, Result};
use ::postgres::binary_copy::BinaryCopyInWriter;
use ::postgres::types::{ToSql, Type};
use ::postgres::{Client, GenericClient};
use anyhow::Context;
use rusqlite::types::Value;
use std::path::Path;

/// Rows copied of one table so far, for progress output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyProgress {
    /// The table being copied.
    pub table: String,
    /// Rows written so far.
    pub done: u64,
    /// Rows the table has.
    pub total: u64,
}

/// Told about each table as it is copied: every 50,000 rows and once when the table is done.
pub type ProgressFn = Box<dyn FnMut(&CopyProgress) + Send>;

/// How often a long table reports progress.
const PROGRESS_EVERY: u64 = 50_000;
/// How long the copy waits for a table another connection holds before it gives up.
const LOCK_TIMEOUT: &str = "5s";

/// How a PostgreSQL column takes a SQLite value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ColType {
    Int8,
    Int4,
    Text,
    Bool,
}

impl ColType {
    fn of(table: &str, column: &str, data_type: &str) -> Result<ColType> {
        Ok(match data_type {
            "bigint" => ColType::Int8,
            "integer" => ColType::Int4,
            "text" => ColType::Text,
            "boolean" => ColType::Bool,
            other => anyhow::bail!(
                "column {table}.{column} has PostgreSQL type {other}, which this build cannot copy SQLite values into"
            ),
        })
    }

    fn pg(self) -> Type {
        match self {
            ColType::Int8 => Type::INT8,
            ColType::Int4 => Type::INT4,
            ColType::Text => Type::TEXT,
            ColType::Bool => Type::BOOL,
        }
    }

    /// The SQLite value as this column's type; an error names what did not fit.
    fn convert(self, v: Value) -> std::result::Result<Box<dyn ToSql + Sync>, String> {
        Ok(match (self, v) {
            (ColType::Int8, Value::Null) => Box::new(None::<i64>),
            (ColType::Int4, Value::Null) => Box::new(None::<i32>),
            (ColType::Text, Value::Null) => Box::new(None::<String>),
            (ColType::Bool, Value::Null) => Box::new(None::<bool>),
            (ColType::Int8, Value::Integer(i)) => Box::new(Some(i)),
            (ColType::Int4, Value::Integer(i)) => {
                Box::new(Some(i32::try_from(i).map_err(|_| format!("{i} does not fit a 32-bit integer"))?))
            }
            (ColType::Bool, Value::Integer(i)) => Box::new(Some(i != 0)),
            (ColType::Text, Value::Text(s)) => Box::new(Some(s)),
            (t, v) => return Err(format!("a {} value cannot go into a {t:?} column", kind(&v))),
        })
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "NULL",
        Value::Integer(_) => "integer",
        Value::Real(_) => "real",
        Value::Text(_) => "text",
        Value::Blob(_) => "blob",
    }
}

/// `"name"`, for table and column names read from the schemas.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl PgStore {
    /// Refuses a database at `url` in which any table has rows, before
    /// [`PgStore::connect`] creates the journal's schema there: a database
    /// holding someone else's data is left exactly as it was.
    pub fn refuse_unless_empty(url: &str) -> Result<()> {
        let config: ::postgres::Config = url.parse().map_err(|_| {
            anyhow::anyhow!("the URL is not a PostgreSQL connection URL; write postgres://USER:PASSWORD@HOST:PORT/DATABASE in the secret")
        })?;
        let target = super::describe(&config);
        // The blocking client must not run on a runtime thread: a plain thread of its own, as the store does.
        std::thread::spawn(move || {
            let mut c = super::connect(&config)?;
            let tables = base_tables(&mut c)?;
            refuse_rows(&mut c, &tables)
        })
        .join()
        .map_err(|_| anyhow::anyhow!("the PostgreSQL check thread panicked"))?
        .with_context(|| format!("journal database {target}"))
    }

    /// Host and database of this store, for messages (never the URL).
    pub fn database(&self) -> String {
        self.lock().target.clone()
    }

    /// Copies every row of the SQLite journal at `journal` into this
    /// database, in one transaction, and returns the rows copied per table
    /// (events first). Refuses, writing nothing, when any table here already
    /// has rows (naming them), or when a SQLite table or column with data
    /// has no counterpart here. Identity sequences (timer ids) continue after
    /// the copied rows. The caller keeps anyone else off the SQLite file.
    pub fn import_sqlite(&self, journal: &Path, progress: ProgressFn) -> Result<Vec<(String, u64)>> {
        let src = rusqlite::Connection::open_with_flags(journal, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)
            .with_context(|| format!("cannot open the SQLite journal {}", journal.display()))?;
        self.lock().call(move |c| import(c, src, progress))
    }
}

/// Every table of the current schema except the migration counter.
fn base_tables(c: &mut impl GenericClient) -> Result<Vec<String>> {
    Ok(c.query(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' AND table_name <> 'schema_version' \
         ORDER BY table_name",
        &[],
    )?
    .iter()
    .map(|r| r.try_get(0))
    .collect::<std::result::Result<_, _>>()?)
}

/// Refuses a database where any of `tables` has a row, naming each such table.
fn refuse_rows(c: &mut impl GenericClient, tables: &[String]) -> Result<()> {
    let mut found = Vec::new();
    for t in tables {
        let sql = format!("SELECT COUNT(*) FROM (SELECT 1 FROM {} LIMIT 1001) s", quote(t));
        let n: i64 = c.query_one(&sql, &[])?.try_get(0)?;
        if n > 0 {
            found.push(match n {
                1 => format!("{t} (1 row)"),
                1001.. => format!("{t} (more than 1000 rows)"),
                n => format!("{t} ({n} rows)"),
            });
        }
    }
    if !found.is_empty() {
        anyhow::bail!(
            "the target database is not empty: {}; migrate into a new, empty database (CREATE DATABASE NAME ENCODING 'UTF8' TEMPLATE template0) so no journal is mixed with another",
            found.join(", ")
        );
    }
    Ok(())
}

fn import(c: &mut Client, mut src: rusqlite::Connection, mut progress: ProgressFn) -> Result<Vec<(String, u64)>> {
    let mut tx = c.transaction()?;
    tx.batch_execute(&format!("SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))?;
    let pg_tables = base_tables(&mut tx)?;
    // Held to the commit: no node can write between the emptiness check and the copy.
    let all = pg_tables.iter().map(|t| quote(t)).collect::<Vec<_>>().join(", ");
    tx.batch_execute(&format!("LOCK TABLE {all} IN EXCLUSIVE MODE")).context(
        "cannot lock the target tables: another connection (a running daemon?) is using them; stop every daemon on this database and run the migration again",
    )?;
    refuse_rows(&mut tx, &pg_tables)?;
    // One read snapshot of the SQLite journal for the whole copy.
    let snap = src.transaction()?;
    let mut tables: Vec<String> = {
        let mut stmt = snap.prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    // The journal itself first: its progress is the one worth watching.
    tables.sort_by_key(|t| t != "events");
    let mut copied = Vec::new();
    for table in tables {
        let total: i64 = snap.query_row(&format!("SELECT COUNT(*) FROM {}", quote(&table)), [], |r| r.get(0))?;
        if !pg_tables.contains(&table) {
            if total == 0 {
                continue;
            }
            anyhow::bail!(
                "SQLite table {table} has {total} rows but PostgreSQL has no such table in this build; nothing was copied"
            );
        }
        let columns = columns(&snap, &mut tx, &table)?;
        let names: Vec<String> = columns.iter().map(|(n, _)| quote(n)).collect();
        let types: Vec<Type> = columns.iter().map(|(_, t)| t.pg()).collect();
        let sink = tx.copy_in(&format!("COPY {} ({}) FROM STDIN BINARY", quote(&table), names.join(", ")))?;
        let mut writer = BinaryCopyInWriter::new(sink, &types);
        let mut stmt = snap.prepare(&format!("SELECT {} FROM {}", names.join(", "), quote(&table)))?;
        let mut rows = stmt.query([])?;
        let mut done = 0u64;
        let total = total as u64;
        while let Some(r) = rows.next()? {
            let mut values = Vec::with_capacity(columns.len());
            for (i, (name, t)) in columns.iter().enumerate() {
                let v = t.convert(r.get::<_, Value>(i)?).map_err(|e| {
                    anyhow::anyhow!("row {} of SQLite table {table}, column {name}: {e}; nothing was copied", done + 1)
                })?;
                values.push(v);
            }
            let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|b| b.as_ref()).collect();
            writer.write(&refs).with_context(|| format!("copying row {} of table {table}", done + 1))?;
            done += 1;
            if done.is_multiple_of(PROGRESS_EVERY) && done < total {
                progress(&CopyProgress { table: table.clone(), done, total });
            }
        }
        let written = writer.finish().with_context(|| format!("copying table {table}"))?;
        progress(&CopyProgress { table: table.clone(), done: written, total });
        copied.push((table, written));
    }
    drop(snap);
    continue_identities(&mut tx)?;
    tx.commit()?;
    Ok(copied)
}

/// The columns of `table` to copy, in SQLite's order, with the PostgreSQL
/// type each goes into. A SQLite column PostgreSQL lacks is an error unless
/// it is NULL in every row.
fn columns(
    src: &rusqlite::Transaction<'_>,
    pg: &mut ::postgres::Transaction<'_>,
    table: &str,
) -> Result<Vec<(String, ColType)>> {
    let pg_cols: Vec<(String, String)> = pg
        .query(
            "SELECT column_name::text, data_type::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1",
            &[&table],
        )?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<_>>()?;
    let sqlite_cols: Vec<String> = {
        let mut stmt = src.prepare(&format!("SELECT name FROM pragma_table_info('{}')", table.replace('\'', "''")))?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let mut out = Vec::new();
    for name in sqlite_cols {
        match pg_cols.iter().find(|(n, _)| *n == name) {
            Some((_, data_type)) => out.push((name.clone(), ColType::of(table, &name, data_type)?)),
            None => {
                let used: i64 = src.query_row(
                    &format!("SELECT COUNT(*) FROM {} WHERE {} IS NOT NULL", quote(table), quote(&name)),
                    [],
                    |r| r.get(0),
                )?;
                if used > 0 {
                    anyhow::bail!(
                        "column {table}.{name} holds data in SQLite but PostgreSQL has no such column in this build; nothing was copied"
                    );
                }
            }
        }
    }
    Ok(out)
}

/// Sets every identity sequence past the highest copied id, so the next
/// row PostgreSQL numbers (a new timer) cannot collide with a copied one.
fn continue_identities(tx: &mut ::postgres::Transaction<'_>) -> Result<()> {
    let identities = tx.query(
        "SELECT table_name::text, column_name::text FROM information_schema.columns \
         WHERE table_schema = current_schema() AND is_identity = 'YES'",
        &[],
    )?;
    for r in identities {
        let (table, column): (String, String) = (r.try_get(0)?, r.try_get(1)?);
        let (qt, qc) = (quote(&table), quote(&column));
        tx.execute(
            &format!(
                "SELECT setval(pg_get_serial_sequence($1, $2), GREATEST(COALESCE(MAX({qc}), 0), 1), MAX({qc}) IS NOT NULL) FROM {qt}"
            ),
            &[&qt, &column],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testdb;
    use super::*;
    use crate::store::{IntentRow, JournalKey, SqliteStore, Store};

    fn sqlite_journal(dir: &Path, key: &JournalKey) -> SqliteStore {
        let s = SqliteStore::open(dir).unwrap().with_key(key.clone(), true).unwrap();
        s.transaction(&mut |tx| {
            tx.append("INC-1", 5, "opened", &serde_json::json!({"title": "t"}))?;
            tx.add_timer("INC-1", 100, "deadline:report", "deadline", &serde_json::json!({}))?;
            tx.add_timer("INC-1", 200, "escalate:1", "escalate", &serde_json::json!({}))?;
            tx.add_intent(&IntentRow {
                invocation_id: "INC-1.1".into(),
                incident_id: "INC-1".into(),
                created_at: 5,
                not_before: 5,
                payload: serde_json::json!({"target": "superiors"}),
                attempts: 0,
                result: None,
                reclaimed_from: None,
            })?;
            tx.kv_set("k", "v")?;
            Ok(())
        })
        .unwrap();
        s
    }

    #[test]
    fn a_journal_moves_with_its_hashes_pending_work_and_timer_numbering() {
        let Some(url) = testdb::database() else { return };
        let dir = tempfile::tempdir().unwrap();
        let key = JournalKey::from_bytes(&[3; 32]).unwrap();
        let src = sqlite_journal(dir.path(), &key);
        let before = src.verify(None).unwrap();
        drop(src);
        let pg = PgStore::connect(&url).unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let s = seen.clone();
        let copied = pg
            .import_sqlite(&dir.path().join("journal.db"), Box::new(move |p| s.lock().unwrap().push(p.clone())))
            .unwrap();
        assert_eq!(copied[0], ("events".to_string(), 1));
        assert!(copied.contains(&("timers".to_string(), 2)) && copied.contains(&("intents".to_string(), 1)));
        assert!(seen.lock().unwrap().iter().any(|p| p.table == "events" && p.done == 1 && p.total == 1));
        let pg = pg.with_key(key, false).unwrap();
        let after = pg.verify(None).unwrap();
        assert!(after.problems.is_empty(), "{:?}", after.problems);
        assert_eq!((after.head_seq, after.head), (before.head_seq, before.head));
        assert_eq!(pg.pending_intents(i64::MAX, 10).unwrap().len(), 1);
        assert_eq!(pg.kv_get("k").unwrap().as_deref(), Some("v"));
        // The next timer is numbered after the copied ones.
        let mut id = 0;
        pg.transaction(&mut |tx| {
            id = tx.add_timer("INC-1", 300, "track:1", "track", &serde_json::json!({}))?;
            Ok(())
        })
        .unwrap();
        assert_eq!(id, 3);
    }

    #[test]
    fn a_database_with_rows_is_refused_naming_them_and_left_as_it_was() {
        let Some(url) = testdb::database() else { return };
        let dir = tempfile::tempdir().unwrap();
        drop(sqlite_journal(dir.path(), &JournalKey::from_bytes(&[3; 32]).unwrap()));
        let pg = PgStore::connect(&url).unwrap();
        pg.kv_put("someone", "else").unwrap();
        let e = pg.import_sqlite(&dir.path().join("journal.db"), Box::new(|_| {})).unwrap_err();
        assert!(format!("{e:#}").contains("not empty: kv (1 row)"), "{e:#}");
        assert_eq!(pg.incidents(false, None).unwrap().len(), 0);
        assert!(pg.timers().unwrap().is_empty());
    }
}
