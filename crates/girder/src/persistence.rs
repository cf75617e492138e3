//! Persistence of the keyspace: opening and replaying the journal, the snapshot rules,
//! SAVE/BGSAVE for the RESP front end, and the background service that rewrites the
//! journal and syncs it at shutdown. The journal itself is `girder-stream`'s.

use crate::config::{Config, PersistenceFsync};
use anyhow::Context as _;
use bytes::Bytes;
use girder_kv::Keyspace;
use girder_runtime::Service;
use girder_stream::{Fsync, JournalConfig, StreamJournal};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Opens the journal, replays it into `keyspace`, and installs it there.
pub fn open_journal(config: &Config, keyspace: &Keyspace) -> anyhow::Result<Arc<StreamJournal>> {
    let p = &config.persistence;
    let journal_config = JournalConfig {
        dir: girder_stream::journal_dir(&config.data_dir),
        fsync: match p.fsync {
            PersistenceFsync::Always => Fsync::Always,
            PersistenceFsync::Interval => Fsync::Interval(p.fsync_interval),
            PersistenceFsync::Never => Fsync::Never,
        },
        segment_bytes: p.segment_bytes,
        compact_min_bytes: p.compact_min_bytes,
        recycle_segments: p.recycle_segments as usize,
        journal_all: p.mode.aof(),
    };
    let legacy = girder_stream::legacy_journal_dir(&config.data_dir);
    if legacy.is_dir() && !journal_config.dir.exists() {
        std::fs::rename(&legacy, &journal_config.dir).with_context(|| {
            format!(
                "cannot move the stream journal {} to {}",
                legacy.display(),
                journal_config.dir.display()
            )
        })?;
        tracing::info!(from = %legacy.display(), to = %journal_config.dir.display(), "moved the journal to its new place");
    }
    std::fs::create_dir_all(&journal_config.dir).with_context(|| {
        format!(
            "cannot create the journal directory {}",
            journal_config.dir.display()
        )
    })?;
    let started = std::time::Instant::now();
    let dir = journal_config.dir.display();
    // Journaled commands go back through the RESP front end's handlers.
    let mut resp = girder_resp::replay::Replayer::new();
    let mut replayer = |ks: &Keyspace, db, at_ms, args: &[Bytes]| resp.replay(ks, db, at_ms, args);
    let (journal, report) = match StreamJournal::open(&journal_config, keyspace, &mut replayer) {
        Ok(opened) => opened,
        Err(e @ girder_stream::JournalError::Log(girder_log::LogError::Corrupt { .. })) => {
            anyhow::bail!(
                "cannot open the journal in {dir}: {e}. Nothing was changed. `girder log check {dir}` shows the damage; `girder log repair {dir}` truncates the journal there (the changes journaled after it are lost)"
            )
        }
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!("cannot open the journal in {dir}")))
        }
    };
    if report.truncated_bytes > 0 {
        tracing::warn!(
            dir = %journal_config.dir.display(),
            truncated_bytes = report.truncated_bytes,
            "the journal ended in a torn record (a crash during a write); it was cut there"
        );
    }
    tracing::info!(
        dir = %journal_config.dir.display(),
        records = report.records,
        keys = report.keys,
        streams = report.streams,
        commands = report.commands,
        commands_failed = report.commands_failed,
        truncated_bytes = report.truncated_bytes,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "journal replayed"
    );
    if journal.install(keyspace).is_err() {
        anyhow::bail!("the keyspace already has a journal");
    }
    Ok(journal)
}

/// What SAVE, BGSAVE and CONFIG SET reach: the journal, the snapshot rules, and whether
/// a snapshot is running. Cheap to clone (the background save holds a clone).
#[derive(Debug, Clone)]
pub struct NodePersistence(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    journal: Arc<StreamJournal>,
    keyspace: Arc<Keyspace>,
    rules: Mutex<Vec<(u64, u64)>>,
    running: AtomicBool,
    last_ok: AtomicBool,
    /// The period `appendfsync everysec` means (`persistence.fsync_interval`).
    interval: Duration,
}

impl NodePersistence {
    /// Persistence of `keyspace` through `journal`, snapshots on the configured `save`
    /// rules when the mode uses them.
    pub fn new(config: &Config, journal: Arc<StreamJournal>, keyspace: Arc<Keyspace>) -> Self {
        let p = &config.persistence;
        let rules = if p.mode.snapshots() {
            // Validated with the configuration.
            girder_resp::persistence::parse_save_rules(&p.save).unwrap_or_default()
        } else {
            Vec::new()
        };
        Self(Arc::new(Inner {
            journal,
            keyspace,
            rules: Mutex::new(rules),
            running: AtomicBool::new(false),
            last_ok: AtomicBool::new(true),
            interval: p.fsync_interval,
        }))
    }

    fn rules(&self) -> Vec<(u64, u64)> {
        self.0
            .rules
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Claims the one snapshot slot.
    fn begin(&self) -> Result<(), String> {
        if self.0.running.swap(true, Ordering::SeqCst) {
            return Err("Background save already in progress".to_owned());
        }
        Ok(())
    }

    /// Claims the snapshot slot, waiting (up to ten minutes) for a running snapshot.
    fn begin_waiting(&self) -> Result<(), String> {
        let deadline = std::time::Instant::now() + Duration::from_secs(600);
        while self.begin().is_err() {
            if std::time::Instant::now() > deadline {
                return Err("a snapshot is still running".to_owned());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    /// Takes a snapshot (the slot claimed by `begin`), tried again when a FLUSHALL or
    /// SWAPDB voided it; blocking.
    fn run_claimed(&self) -> Result<(), String> {
        let mut outcome = Err(
            "the keyspace kept being flushed or swapped while the snapshot was taken".to_owned(),
        );
        for _ in 0..3 {
            match self.0.journal.compact(&self.0.keyspace) {
                Ok(report) if report.applied => {
                    outcome = Ok(());
                    break;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, "snapshot failed");
                    outcome = Err(format!("snapshot failed: {e}"));
                    break;
                }
            }
        }
        self.0.last_ok.store(outcome.is_ok(), Ordering::Relaxed);
        self.0.running.store(false, Ordering::SeqCst);
        outcome
    }

    /// Takes a snapshot unless one is running; blocking.
    pub fn snapshot(&self) -> Result<(), String> {
        self.begin()?;
        self.run_claimed()
    }

    /// Whether a `save` rule says a snapshot is due.
    fn due(&self) -> bool {
        let changes = self.0.journal.changes_since_save(&self.0.keyspace);
        let since = self
            .0
            .keyspace
            .now_ms()
            .saturating_sub(self.0.journal.last_save_ms())
            / 1000;
        changes > 0
            && self
                .rules()
                .iter()
                .any(|&(secs, min)| since >= secs && changes >= min)
    }
}

impl girder_resp::persistence::Persistence for NodePersistence {
    fn save(&self) -> Result<(), String> {
        self.snapshot()
    }

    fn bgsave(&self) -> Result<(), String> {
        self.begin()?;
        let me = self.clone();
        std::thread::Builder::new()
            .name("girder-bgsave".into())
            .spawn(move || {
                let _ = me.run_claimed();
            })
            .map(|_| ())
            .map_err(|e| {
                self.0.running.store(false, Ordering::SeqCst);
                format!("cannot start the background save: {e}")
            })
    }

    fn last_save_secs(&self) -> u64 {
        self.0.journal.last_save_ms() / 1000
    }

    fn appendonly(&self) -> bool {
        self.0.journal.journals_all()
    }

    fn set_appendonly(&self, on: bool) -> Result<(), String> {
        if on && !self.0.journal.journals_all() {
            // Turning it on takes a snapshot: wait for a running one, then hold the slot.
            self.begin_waiting()?;
            let outcome = self.0.journal.set_journal_all(&self.0.keyspace, true);
            self.0.running.store(false, Ordering::SeqCst);
            return outcome.map_err(|e| format!("cannot turn the append-only journal on: {e}"));
        }
        self.0
            .journal
            .set_journal_all(&self.0.keyspace, on)
            .map_err(|e| format!("cannot change appendonly: {e}"))
    }

    fn appendfsync(&self) -> &'static str {
        match self.0.journal.fsync() {
            Fsync::Always => "always",
            Fsync::Interval(_) => "everysec",
            Fsync::Never => "no",
        }
    }

    fn set_appendfsync(&self, policy: &str) -> Result<(), String> {
        let fsync = match policy.to_ascii_lowercase().as_str() {
            "always" => Fsync::Always,
            "everysec" => Fsync::Interval(self.0.interval),
            "no" => Fsync::Never,
            _ => {
                return Err(
                    "argument(s) must be one of the following: everysec, always, no".to_owned(),
                )
            }
        };
        self.0.journal.set_fsync(fsync);
        Ok(())
    }

    fn save_rules(&self) -> String {
        girder_resp::persistence::format_save_rules(&self.rules())
    }

    fn set_save_rules(&self, rules: &str) -> Result<(), String> {
        let parsed = girder_resp::persistence::parse_save_rules(rules)?;
        *self
            .0
            .rules
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = parsed;
        Ok(())
    }

    fn info(&self) -> Vec<(&'static str, String)> {
        let running = self.0.running.load(Ordering::SeqCst);
        let ok = if self.0.last_ok.load(Ordering::Relaxed) {
            "ok"
        } else {
            "err"
        };
        let aof = self.0.journal.journals_all();
        vec![
            (
                "rdb_changes_since_last_save",
                self.0
                    .journal
                    .changes_since_save(&self.0.keyspace)
                    .to_string(),
            ),
            ("rdb_bgsave_in_progress", u8::from(running).to_string()),
            ("rdb_last_save_time", self.last_save_secs().to_string()),
            ("rdb_last_bgsave_status", ok.to_owned()),
            ("aof_enabled", u8::from(aof).to_string()),
            (
                "aof_rewrite_in_progress",
                u8::from(running && aof).to_string(),
            ),
            ("aof_last_bgrewrite_status", ok.to_owned()),
        ]
    }
}

/// Takes snapshots on the `save` rules, rewrites the journal when it has grown, and at
/// shutdown takes a last snapshot (when the rules are in use, as Redis does) and syncs.
pub struct PersistenceService {
    /// The node's persistence.
    pub persistence: NodePersistence,
}

impl Service for PersistenceService {
    fn name(&self) -> &'static str {
        "persistence"
    }

    fn run(
        self: Box<Self>,
        ctx: girder_runtime::ServiceContext,
    ) -> girder_runtime::BoxFuture<'static, anyhow::Result<()>> {
        Box::pin(async move {
            let p = self.persistence;
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut retry_at = tokio::time::Instant::now();
            loop {
                tokio::select! {
                    () = ctx.shutdown.cancelled() => break,
                    _ = tick.tick() => {
                        if tokio::time::Instant::now() < retry_at
                            || !(p.0.journal.needs_compaction() || p.due())
                        {
                            continue;
                        }
                        let q = p.clone();
                        // Blocking: it fsyncs, and takes each shard's lock in turn.
                        let outcome = tokio::task::spawn_blocking(move || q.snapshot()).await?;
                        // A failed snapshot loses nothing (the journal before it stays):
                        // serve on, and try again later.
                        if let Err(e) = outcome {
                            tracing::error!(error = %e, "snapshot failed; retrying in a minute");
                            retry_at = tokio::time::Instant::now() + Duration::from_secs(60);
                        }
                    }
                }
            }
            let last = !p.rules().is_empty() && p.0.journal.changes_since_save(&p.0.keyspace) > 0;
            tokio::task::spawn_blocking(move || {
                if last {
                    // Redis saves at shutdown when save points are configured.
                    if let Err(e) = p.begin_waiting().and_then(|()| p.run_claimed()) {
                        tracing::error!(error = %e, "the snapshot at shutdown failed");
                    }
                }
                p.0.journal.sync()
            })
            .await??;
            Ok(())
        })
    }
}
