//! The journal's schema, one migration at a time.

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: journal, projections, timers, outbox, pinned playbooks, key-value.
    r#"
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY,
        incident_id TEXT NOT NULL,
        at INTEGER NOT NULL,
        kind TEXT NOT NULL,
        data TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE INDEX events_incident ON events(incident_id, seq);
    CREATE TABLE incidents (
        id TEXT PRIMARY KEY,
        playbook_id TEXT NOT NULL,
        playbook_hash TEXT NOT NULL,
        mode TEXT NOT NULL,
        dedup_key TEXT,
        status TEXT NOT NULL,
        phase TEXT NOT NULL,
        severity TEXT NOT NULL,
        title TEXT NOT NULL,
        opened_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        state TEXT NOT NULL
    );
    CREATE UNIQUE INDEX incidents_open_dedup ON incidents(playbook_id, dedup_key)
        WHERE status = 'open' AND dedup_key IS NOT NULL;
    CREATE TABLE timers (
        id INTEGER PRIMARY KEY,
        incident_id TEXT NOT NULL,
        due_at INTEGER NOT NULL,
        kind TEXT NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX timers_due ON timers(due_at);
    CREATE TABLE intents (
        invocation_id TEXT PRIMARY KEY,
        incident_id TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        not_before INTEGER NOT NULL,
        payload TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        result TEXT,
        completed_at INTEGER
    );
    CREATE INDEX intents_pending ON intents(not_before) WHERE result IS NULL;
    CREATE INDEX intents_incident ON intents(incident_id);
    CREATE TABLE playbook_versions (
        hash TEXT PRIMARY KEY,
        playbook_id TEXT NOT NULL,
        spec TEXT NOT NULL
    );
    CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
    CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    "#,
    // 2: drill runs (one row per run or skipped occurrence) and schedule state.
    r#"
    CREATE TABLE drill_runs (
        id TEXT PRIMARY KEY,
        playbook_id TEXT NOT NULL,
        playbook_path TEXT NOT NULL,
        playbook_hash TEXT NOT NULL,
        origin TEXT NOT NULL,
        scheduled_for INTEGER,
        status TEXT NOT NULL,
        reason TEXT,
        clock TEXT NOT NULL,
        seed INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        started_at INTEGER,
        finished_at INTEGER,
        score INTEGER,
        verdict TEXT,
        report TEXT
    );
    CREATE UNIQUE INDEX drill_runs_occurrence ON drill_runs(playbook_id, scheduled_for) WHERE scheduled_for IS NOT NULL;
    CREATE INDEX drill_runs_playbook ON drill_runs(playbook_id, created_at);
    CREATE TABLE drill_schedules (
        playbook_id TEXT PRIMARY KEY,
        suspended INTEGER NOT NULL DEFAULT 0,
        last_checked INTEGER
    );
    "#,
    // 3: timers carry the family they are cancelled by, so cancellation is an
    // exact match on a fixed value; timers stored before get theirs from their key.
    r#"
    ALTER TABLE timers ADD COLUMN family TEXT NOT NULL DEFAULT '';
    UPDATE timers SET family = CASE
        WHEN kind LIKE 'deadline:step:%' THEN 'step-deadline'
        WHEN kind LIKE 'deadline:%' THEN 'deadline'
        WHEN kind LIKE 'escalate:%' THEN 'escalate'
        WHEN kind LIKE 'track:%' THEN 'track'
        ELSE '' END;
    CREATE INDEX timers_incident_family ON timers(incident_id, family);
    CREATE INDEX timers_incident_kind ON timers(incident_id, kind);
    "#,
    // 4: per-item error isolation. A timer or intent that keeps failing (or
    // cannot be decoded) is dead-lettered: kept with its reason, never claimed
    // again until re-driven. Timers count their failed firings; an intent
    // handed to a worker is `claimed` so the next batch skips it.
    r#"
    ALTER TABLE timers ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE timers ADD COLUMN dead_letter TEXT;
    ALTER TABLE timers ADD COLUMN dead_at INTEGER;
    ALTER TABLE intents ADD COLUMN claimed INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE intents ADD COLUMN dead_letter TEXT;
    ALTER TABLE intents ADD COLUMN dead_at INTEGER;
    CREATE INDEX intents_dead ON intents(dead_at) WHERE dead_letter IS NOT NULL;
    CREATE INDEX timers_dead ON timers(dead_at) WHERE dead_letter IS NOT NULL;
    "#,
    // 5: API tokens. Only the SHA-256 of each secret is kept: the secret is
    // shown once when the token is created and can never be read back.
    r#"
    CREATE TABLE api_tokens (
        id TEXT PRIMARY KEY,
        secret_sha256 TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        subject TEXT NOT NULL,
        role TEXT,
        created_at INTEGER NOT NULL,
        created_by TEXT NOT NULL,
        expires_at INTEGER,
        revoked_at INTEGER,
        revoked_by TEXT
    );
    "#,
    // 6: an intent held back by its target's open circuit is marked `held`,
    // so a restart (whose circuits start closed) makes it due at once instead
    // of leaving it until the old circuit's cooldown would have ended.
    r#"
    ALTER TABLE intents ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
    "#,
    // 7: an intent's delivery target as its own indexed column, so per-target
    // outbox depth, age and expediting read an index instead of parsing every
    // pending payload. Rows whose payload is not JSON get the target `?`.
    r#"
    ALTER TABLE intents ADD COLUMN target TEXT NOT NULL DEFAULT '?';
    UPDATE intents SET target = COALESCE(json_extract(payload, '$.target'), '?') WHERE json_valid(payload);
    CREATE INDEX intents_target_pending ON intents(target, created_at) WHERE result IS NULL AND dead_letter IS NULL;
    "#,
    // 8: the intents the outbox may still claim, in claim order. Claimed rows
    // leave this index, so claiming the next batch and finding the next due
    // time cost the same with 20,000 claimed intents waiting in their lanes as
    // with none (without it both walked every claimed row).
    r#"
    CREATE INDEX intents_claimable ON intents(not_before, created_at, invocation_id)
        WHERE result IS NULL AND dead_letter IS NULL AND claimed = 0;
    "#,
    // 9: customer complaints: one projection row per complaint (its events
    // are in the journal under its id), read by customer and by time.
    r#"
    CREATE TABLE complaints (
        id TEXT PRIMARY KEY,
        customer TEXT NOT NULL,
        category TEXT NOT NULL,
        channel TEXT NOT NULL,
        state TEXT NOT NULL,
        received_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX complaints_customer ON complaints(customer, received_at);
    CREATE INDEX complaints_received ON complaints(received_at);
    "#,
    // 10: the incident list in its order (newest first, then by id), so a
    // page of it reads only its own rows: one index over all incidents, one
    // over the open ones for the open-only list.
    r#"
    CREATE INDEX incidents_list ON incidents(opened_at, id);
    CREATE INDEX incidents_open_list ON incidents(opened_at, id) WHERE status = 'open';
    "#,
    // 11: a complaint remembers the digest of its sender's idempotency key
    // (unique, so a retried intake can never record a second complaint), and
    // a surge's window is read per category.
    r#"
    ALTER TABLE complaints ADD COLUMN intake_key TEXT;
    CREATE UNIQUE INDEX complaints_intake_key ON complaints(intake_key) WHERE intake_key IS NOT NULL;
    CREATE INDEX complaints_category ON complaints(category, received_at);
    "#,
    // 12: the open incidents' labels (the open-incident gauge at start, the
    // drill scheduler's check every second) read from an index of the open
    // ones alone, without visiting a row of the table.
    r#"
    CREATE INDEX incidents_open_labels ON incidents(id, mode, playbook_id, severity, phase, status)
        WHERE status = 'open';
    "#,
    // 13: the claim index also holds each intent's target, so a claim that
    // passes over a busy target's rows reads the index alone.
    r#"
    DROP INDEX intents_claimable;
    CREATE INDEX intents_claimable ON intents(not_before, created_at, invocation_id, target)
        WHERE result IS NULL AND dead_letter IS NULL AND claimed = 0;
    "#,
    // 14: the claim index is ordered by target first, so a claim reads each
    // target's due rows alone and never walks past a target it passes over.
    r#"
    DROP INDEX intents_claimable;
    CREATE INDEX intents_claimable ON intents(target, not_before, created_at, invocation_id)
        WHERE result IS NULL AND dead_letter IS NULL AND claimed = 0;
    "#,
];
