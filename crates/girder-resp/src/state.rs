//! Per-connection and server-wide state of the RESP front end.

use crate::codec::{Limits, Protocol};
use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// Settings of the RESP front end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RespConfig {
    /// Framing limits.
    pub limits: Limits,
    /// Largest unparsed input kept per client (`client-query-buffer-limit`).
    pub query_buffer_limit: usize,
    /// Most clients connected at once (`maxclients`).
    pub max_clients: usize,
    /// Most published messages queued for one subscriber; a subscriber that falls this
    /// far behind is disconnected (Redis's `client-output-buffer-limit pubsub`).
    pub pubsub_queue_limit: usize,
    /// Initial `notify-keyspace-events` flags ([`crate::notify::parse`]); 0 is off.
    pub notify_keyspace_events: u32,
    /// Most keys `RL.CHECK` tracks per distinct quota ([`crate::ratelimits`]).
    pub rate_limit_keys: usize,
    /// The default user's password (`requirepass`); empty: none.
    pub requirepass: String,
    /// Seconds a client may stay idle before it is closed (`timeout`); 0 is never.
    pub timeout_secs: u64,
    /// Refuse to serve on a non-loopback address without a password.
    pub protected_mode: bool,
    /// `client-output-buffer-limit`, in Redis's syntax ([`crate::output_limits`]).
    pub client_output_buffer_limit: String,
    /// Event-loop threads serving connections (`resp.threads`, at least 1).
    pub threads: usize,
    /// How long an event loop keeps polling its sockets after a batch of commands
    /// instead of sleeping, once batches come this close together (`resp.busy_poll_us`);
    /// zero: it sleeps at once ([`crate::spin`]).
    pub busy_poll: std::time::Duration,
}

impl Default for RespConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            query_buffer_limit: 1024 * 1024 * 1024,
            max_clients: 10_000,
            pubsub_queue_limit: 10_000,
            notify_keyspace_events: 0,
            rate_limit_keys: 1_000_000,
            requirepass: String::new(),
            timeout_secs: 0,
            protected_mode: true,
            client_output_buffer_limit: crate::output_limits::DEFAULT.to_owned(),
            threads: 1,
            busy_poll: std::time::Duration::from_micros(50),
        }
    }
}

/// What other connections can see of a client (CLIENT LIST, CLIENT KILL).
#[derive(Debug)]
pub struct ClientHandle {
    /// Unique, increasing id.
    pub id: u64,
    /// Peer address.
    pub addr: SocketAddr,
    /// Local address.
    pub laddr: SocketAddr,
    /// When the connection was accepted.
    pub created: Instant,
    /// Milliseconds after `created` of the last command.
    pub last_command_ms: AtomicU64,
    /// Selected database.
    pub db: AtomicUsize,
    /// CLIENT SETNAME, CLIENT SETINFO and the last command, behind one small lock.
    pub meta: Mutex<ClientMeta>,
    /// Cancelled by CLIENT KILL, or with its parent, the server's shutdown token.
    pub kill: CancellationToken,
    /// Set while the client waits in a blocking command (CLIENT UNBLOCK acts on it).
    pub blocked: std::sync::atomic::AtomicBool,
    /// CLIENT UNBLOCK's request: the reply that ends the wait, and the signal.
    pub unblock: Mutex<Option<crate::codec::Reply>>,
    /// Wakes a blocked client for CLIENT UNBLOCK.
    pub unblocked: tokio::sync::Notify,
    /// Channels and patterns subscribed to (CLIENT LIST `sub`/`psub`, CLIENT KILL TYPE
    /// pubsub), as the connection last set them.
    pub subscriptions: [AtomicUsize; 2],
    /// The last command's index in the command table (`usize::MAX`: none yet), its
    /// protocol version and its MULTI queue length (-1 outside MULTI), as the connection
    /// last published them (CLIENT LIST `cmd`, `resp`, `multi`).
    pub last_cmd: AtomicUsize,
    /// 2 or 3.
    pub resp: std::sync::atomic::AtomicU8,
    /// Commands queued since MULTI, -1 outside MULTI.
    pub multi: std::sync::atomic::AtomicI64,
}

impl ClientHandle {
    /// Whether the connection is in subscribe mode (Redis's client type `pubsub`).
    pub fn is_pubsub(&self) -> bool {
        self.subscriptions
            .iter()
            .any(|n| n.load(Ordering::Relaxed) > 0)
    }
}

/// Descriptive fields of a client.
#[derive(Debug, Default, Clone)]
pub struct ClientMeta {
    /// CLIENT SETNAME.
    pub name: Option<Bytes>,
    /// CLIENT SETINFO LIB-NAME.
    pub lib_name: Option<Bytes>,
    /// CLIENT SETINFO LIB-VER.
    pub lib_ver: Option<Bytes>,
    /// The ACL user the connection is logged in as.
    pub user: String,
}

/// A connection's own state.
#[derive(Debug)]
pub struct ClientState {
    /// Same as the handle's id.
    pub id: u64,
    /// Selected database.
    pub db: usize,
    /// RESP2 or RESP3.
    pub protocol: Protocol,
    /// Set by QUIT: close after replying.
    pub closing: bool,
    /// Visible to other connections.
    pub handle: Arc<ClientHandle>,
    /// Set by a blocking command that found nothing to pop: the connection waits on it
    /// before executing anything else.
    pub blocked: Option<crate::blocking::Wait>,
    /// MULTI ... EXEC.
    pub tx: Transaction,
    /// SUBSCRIBE / PSUBSCRIBE state and the queue of messages to deliver.
    pub pubsub: crate::pubsub::Subscriptions,
    /// Whether the client may run commands: true from the start when the default user
    /// needs no password, else after AUTH or HELLO AUTH.
    pub authenticated: bool,
    /// The ACL user this connection runs as.
    pub user: Arc<crate::acl::User>,
    /// The ACL epoch `user` was read at; a newer one means it must be read again.
    pub acl_epoch: u64,
    /// CLIENT NO-TOUCH ON: the commands of this client leave the keys' LRU/LFU stamps
    /// alone (TOUCH still touches).
    pub no_touch: bool,
    /// The name this client last sent, byte for byte, and its index in the command
    /// table: a pipeline repeats its command, and comparing a few bytes is cheaper than
    /// folding case and hashing them again.
    pub last_command: Option<(bytes::Bytes, usize)>,
}

/// A connection's transaction state.
#[derive(Debug, Default)]
pub struct Transaction {
    /// Commands queued since MULTI; `None` outside MULTI.
    pub queued: Option<Vec<Vec<bytes::Bytes>>>,
    /// A command refused while queueing: EXEC will answer EXECABORT.
    pub aborted: bool,
    /// WATCHed keys: (database, key, version when watched).
    pub watched: Vec<(usize, Bytes, u64)>,
    /// True while EXEC runs the queue: pushes are announced after it, blocking commands
    /// do not block.
    pub executing: bool,
    /// Keys pushed to during EXEC, announced to blocked clients when it ends.
    pub pushed: Vec<(usize, Bytes)>,
}

/// Most commands one transaction may queue: the queue is memory the client controls.
pub const MAX_QUEUED: usize = 100_000;

/// Server-wide state shared by connections.
#[derive(Debug)]
pub struct Shared {
    /// Settings.
    pub config: RespConfig,
    /// Connected clients by id.
    pub clients: Mutex<BTreeMap<u64, Arc<ClientHandle>>>,
    next_client_id: AtomicU64,
    /// When the server started.
    pub started: Instant,
    /// INFO stats.
    pub stats: Stats,
    /// Per-command metrics, also the source of INFO's command totals.
    pub metrics: crate::metrics::CommandMetrics,
    /// Clients blocked on list keys.
    pub blocking: crate::blocking::Blocking,
    /// Channel and pattern subscriptions.
    pub pubsub: crate::pubsub::PubSub,
    /// `notify-keyspace-events`.
    pub notify: crate::notify::Notifications,
    /// The node's Snowflake generator (`ID.NEXT`).
    pub ids: Arc<girder_id::Generator>,
    /// `RL.CHECK` limiters.
    pub rate_limits: crate::ratelimits::RateLimits,
    /// `maxclients` and `timeout`, changed by CONFIG SET.
    pub settings: crate::auth::Settings,
    /// ACL users (`requirepass` is the default user's password).
    pub acl: crate::acl::Acl,
    /// `client-output-buffer-limit`.
    pub output_limits: Arc<crate::output_limits::OutputLimits>,
    /// SAVE, BGSAVE and the persistence settings; unset when nothing is persisted.
    pub persistence: std::sync::OnceLock<Arc<dyn crate::persistence::Persistence>>,
}

/// Counters for INFO stats.
#[derive(Debug, Default)]
pub struct Stats {
    /// Connections accepted.
    pub connections_received: AtomicU64,
    /// Connections refused at `maxclients`.
    pub rejected_connections: AtomicU64,
    /// Protocol errors that closed a connection.
    pub protocol_errors: AtomicU64,
    /// The monotonic counters INFO shows, as they stood at the last CONFIG RESETSTAT:
    /// INFO reports what was counted since (`/metrics` keeps counting from the start).
    pub baseline: Mutex<StatsBaseline>,
    /// INFO's `instantaneous_*` rates, sampled every [`crate::metrics::RATE_PERIOD`].
    pub rates: Mutex<crate::metrics::Rates>,
    /// Each command's counts at the last CONFIG RESETSTAT (INFO commandstats), in
    /// command-table order; empty before the first.
    pub command_baseline: Mutex<Vec<crate::metrics::CommandTotals>>,
}

/// See [`Stats::baseline`].
#[derive(Debug, Default, Clone, Copy)]
pub struct StatsBaseline {
    /// Commands executed.
    pub commands: u64,
    /// Error replies.
    pub errors: u64,
    /// Keys evicted.
    pub evicted: u64,
    /// Lookups and expiries (`Keyspace::keyspace_stats`).
    pub keyspace: girder_kv::KeyspaceStats,
    /// Bytes read from clients.
    pub net_input: u64,
    /// Bytes written to clients.
    pub net_output: u64,
}

impl Shared {
    /// Server state with no clients; registers the RESP metrics in `metrics`.
    pub fn new(
        config: RespConfig,
        ids: Arc<girder_id::Generator>,
        metrics: &girder_runtime::Metrics,
    ) -> Self {
        tracing::info!(
            service = "resp",
            pubsub_queue_limit = config.pubsub_queue_limit,
            "a subscriber this many messages behind is disconnected"
        );
        // Validated with the configuration; Redis's defaults otherwise.
        let output_limits = Arc::new(
            crate::output_limits::OutputLimits::new(&config.client_output_buffer_limit)
                .unwrap_or_else(|_| {
                    crate::output_limits::OutputLimits::new(crate::output_limits::DEFAULT)
                        .expect("the default parses")
                }),
        );
        let pubsub =
            crate::pubsub::PubSub::new(config.pubsub_queue_limit, Arc::clone(&output_limits));
        let notify = crate::notify::Notifications::new(config.notify_keyspace_events);
        let rate_limits = crate::ratelimits::RateLimits::new(config.rate_limit_keys);
        let settings = crate::auth::Settings::new(config.max_clients, config.timeout_secs);
        let acl = crate::acl::Acl::new(&config.requirepass);
        Self {
            settings,
            acl,
            output_limits,
            config,
            ids,
            rate_limits,
            clients: Mutex::new(BTreeMap::new()),
            next_client_id: AtomicU64::new(1),
            started: Instant::now(),
            stats: Stats::default(),
            blocking: crate::blocking::Blocking::default(),
            pubsub,
            notify,
            metrics: crate::metrics::CommandMetrics::register(metrics),
            persistence: std::sync::OnceLock::new(),
        }
    }

    /// Registers a new connection. Its kill token is a child of `shutdown`, so the
    /// connection watches one token for CLIENT KILL and for shutdown.
    pub fn register(
        &self,
        addr: SocketAddr,
        laddr: SocketAddr,
        shutdown: &CancellationToken,
    ) -> ClientState {
        let id = self.next_client_id.fetch_add(1, Ordering::Relaxed);
        let handle = Arc::new(ClientHandle {
            id,
            addr,
            laddr,
            created: Instant::now(),
            last_command_ms: AtomicU64::new(0),
            db: AtomicUsize::new(0),
            meta: Mutex::new(ClientMeta {
                user: self.acl.default_user().name.clone(),
                ..ClientMeta::default()
            }),
            kill: shutdown.child_token(),
            blocked: std::sync::atomic::AtomicBool::new(false),
            unblock: Mutex::new(None),
            unblocked: tokio::sync::Notify::new(),
            subscriptions: Default::default(),
            last_cmd: AtomicUsize::new(usize::MAX),
            resp: std::sync::atomic::AtomicU8::new(2),
            multi: std::sync::atomic::AtomicI64::new(-1),
        });
        self.clients.lock().insert(id, Arc::clone(&handle));
        ClientState {
            id,
            db: 0,
            protocol: Protocol::Resp2,
            closing: false,
            handle,
            blocked: None,
            tx: Transaction::default(),
            authenticated: !self.acl.default_user().needs_password(),
            user: self.acl.default_user(),
            acl_epoch: self.acl.epoch(),
            no_touch: false,
            last_command: None,
            pubsub: crate::pubsub::Subscriptions::default(),
        }
    }

    /// Forgets a closed connection.
    pub fn unregister(&self, id: u64) {
        self.clients.lock().remove(&id);
    }

    /// Connected clients.
    pub fn connected(&self) -> usize {
        self.clients.lock().len()
    }
}

impl ClientState {
    /// Runs the connection as `user` from now on, and shows it on the handle (CLIENT
    /// LIST `user=`, CLIENT KILL USER).
    pub fn set_user(&mut self, user: Arc<crate::acl::User>) {
        self.handle.meta.lock().user.clone_from(&user.name);
        self.user = user;
    }

    /// Publishes the subscription counts on the handle, for other clients' CLIENT LIST
    /// and CLIENT KILL TYPE (after SUBSCRIBE, UNSUBSCRIBE, RESET, ...).
    pub fn show_subscriptions(&self) {
        let counts = [self.pubsub.channels.len(), self.pubsub.patterns.len()];
        for (slot, n) in self.handle.subscriptions.iter().zip(counts) {
            slot.store(n, Ordering::Relaxed);
        }
    }

    /// Selects database `db` (already validated).
    pub fn select(&mut self, db: usize) {
        self.db = db;
        self.handle.db.store(db, Ordering::Relaxed);
    }
}
