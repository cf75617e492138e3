//! Running journaled commands again at start.
//!
//! When every write is journaled, a replayable command (`commands::replayable`) is
//! journaled as its arguments and the time it ran at; the journal's replay hands each
//! one back here. It runs through the command's own handler, at its recorded time, as a
//! client of its own: no ACL, no notifications, no blocking (as inside EXEC), nothing
//! announced — what it does to the keyspace is all that matters.

use crate::codec::Reply;
use crate::commands::{lookup, Ctx};
use crate::state::{ClientState, RespConfig, Shared};
use bytes::Bytes;
use girder_kv::Keyspace;
use std::sync::Arc;

/// Replays journaled commands into a keyspace.
pub struct Replayer {
    shared: Shared,
    client: ClientState,
}

impl std::fmt::Debug for Replayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Replayer")
    }
}

impl Replayer {
    /// A replayer with a client of its own.
    ///
    /// # Panics
    /// Never: the default ID generator configuration is valid.
    pub fn new() -> Self {
        let ids = girder_id::Generator::new(girder_id::Config::default(), girder_id::SystemClock)
            .expect("the default generator configuration is valid");
        let metrics = girder_runtime::Metrics::new(girder_runtime::BuildInfo::default());
        let shared = Shared::new(RespConfig::default(), Arc::new(ids), &metrics);
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let mut client = shared.register(addr, addr, &tokio_util::sync::CancellationToken::new());
        client.authenticated = true;
        // As inside EXEC: nothing blocks, nothing is announced to blocked clients.
        client.tx.executing = true;
        Self { shared, client }
    }

    /// Runs `args` on database `db` as of `at_ms`.
    ///
    /// # Errors
    /// The command's error reply, or an unknown command (a journal from another
    /// version).
    pub fn replay(
        &mut self,
        keyspace: &Keyspace,
        db: usize,
        at_ms: u64,
        args: &[Bytes],
    ) -> Result<(), String> {
        let Some(spec) = args.first().and_then(|name| lookup(name)) else {
            return Err("unknown command".to_owned());
        };
        if db >= girder_kv::DATABASES {
            return Err("database index out of range".to_owned());
        }
        self.client.select(db);
        self.client.tx.pushed.clear();
        let mut ctx = Ctx {
            keyspace,
            client: &mut self.client,
            shared: &self.shared,
            now_ms: at_ms,
        };
        match (spec.handler)(&mut ctx, args) {
            Reply::Error(e) => Err(e),
            _ => Ok(()),
        }
    }
}

impl Replayer {
    /// Runs `args` on database `db` at `now_ms` as a connection would: through dispatch,
    /// so a keyspace that journals every write journals it (tests of the journal drive
    /// the keyspace this way). Nothing blocks.
    pub fn execute(
        &mut self,
        keyspace: &Keyspace,
        db: usize,
        now_ms: u64,
        args: &[Bytes],
    ) -> Reply {
        self.client.select(db);
        let mut ctx = Ctx {
            keyspace,
            client: &mut self.client,
            shared: &self.shared,
            now_ms,
        };
        crate::commands::dispatch(&mut ctx, args).1
    }
}

impl Default for Replayer {
    fn default() -> Self {
        Self::new()
    }
}
