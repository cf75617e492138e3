//! The RESP server: accept loop, one task per connection, pipelined request handling.
//!
//! A connection reads into its query buffer, parses every complete command in it,
//! executes them in order and encodes their replies into one output buffer, and writes
//! that buffer once: a pipeline of N commands costs one read and one write, not N.
//! A blocking command (BLPOP...) that finds nothing leaves a wait in the client state:
//! the replies so far are written and the connection awaits it (still watching the
//! socket for a close) before it executes the rest of the pipeline.
//!
//! A subscribed connection (SUBSCRIBE, PSUBSCRIBE) also waits on its queue of published
//! messages: when one arrives it writes it, with whatever else is queued, and goes back
//! to waiting. Messages queued before a command runs are written before its reply, so a
//! confirmation of UNSUBSCRIBE follows the messages published before it.
//!
//! Bounds: `maxclients` (beyond it a new connection gets `-ERR max number of clients
//! reached` and is closed, as in Redis), the framing limits of [`crate::codec::Limits`],
//! `client-query-buffer-limit` for unparsed input, and `pubsub_queue_limit` messages
//! queued per subscriber (beyond it the subscriber is disconnected: see [`crate::pubsub`]).

use crate::codec::{parse_command, Protocol, ProtocolError, Reply};
use crate::commands::{self, Ctx};
use crate::metrics::{Instant, LocalStats};
use crate::notify;
use crate::state::{ClientState, RespConfig, Shared};
use bytes::BytesMut;
use girder_kv::{Durability, Keyspace};
use girder_runtime::{BoxFuture, Service, ServiceContext};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The RESP front end as a [`Service`].
pub struct RespService {
    listener: TcpListener,
    keyspace: Arc<Keyspace>,
    config: RespConfig,
    ids: Option<Arc<girder_id::Generator>>,
    tls: Option<Arc<rustls::ServerConfig>>,
    persistence: Option<Arc<dyn crate::persistence::Persistence>>,
}

impl std::fmt::Debug for RespService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RespService").finish_non_exhaustive()
    }
}

impl RespService {
    /// Serves `keyspace` on an already bound `listener`.
    pub fn new(listener: TcpListener, keyspace: Arc<Keyspace>, config: RespConfig) -> Self {
        Self {
            listener,
            keyspace,
            config,
            ids: None,
            tls: None,
            persistence: None,
        }
    }

    /// Serves SAVE, BGSAVE, LASTSAVE, BGREWRITEAOF and the persistence settings from
    /// `persistence`; without it they answer that nothing is persisted.
    pub fn with_persistence(
        mut self,
        persistence: Arc<dyn crate::persistence::Persistence>,
    ) -> Self {
        self.persistence = Some(persistence);
        self
    }

    /// Speaks TLS only, with `config` (see [`crate::tls::server_config`]).
    pub fn with_tls(mut self, config: Arc<rustls::ServerConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// Serves `ID.NEXT` from `ids` (the node's generator, shared with `GET /v1/ids`)
    /// instead of a generator of node 0.
    pub fn with_ids(mut self, ids: Arc<girder_id::Generator>) -> Self {
        self.ids = Some(ids);
        self
    }
}

impl Service for RespService {
    fn name(&self) -> &'static str {
        "resp"
    }

    fn run(self: Box<Self>, ctx: ServiceContext) -> BoxFuture<'static, anyhow::Result<()>> {
        Box::pin(async move {
            let addr = self.listener.local_addr()?;
            tracing::info!(service = "resp", %addr, "listening");
            let ids = match self.ids {
                Some(ids) => ids,
                None => Arc::new(girder_id::Generator::new(
                    girder_id::Config::default(),
                    girder_id::SystemClock,
                )?),
            };
            // Protected mode: no password-less service beyond this machine.
            let protected = self.config.protected_mode && !addr.ip().is_loopback();
            if protected && self.config.requirepass.is_empty() {
                anyhow::bail!(
                    "refusing to serve RESP on the non-loopback address {addr} without a password (protected mode): set resp.requirepass, or resp.protected_mode = false"
                );
            }
            let server = Arc::new(Server {
                keyspace: self.keyspace,
                shared: Shared::new(self.config, ids, &ctx.metrics),
            });
            server.shared.settings.set_protected(protected);
            if let Some(p) = self.persistence {
                let _ = server.shared.persistence.set(p);
            }
            // The active expiry reports removed keys here (`expired` events); weak, so
            // the keyspace does not keep the server alive.
            let weak = Arc::downgrade(&server);
            server
                .keyspace
                .set_expired_hook(Some(Arc::new(move |db, key: &[u8]| {
                    if let Some(server) = weak.upgrade() {
                        let shared = &server.shared;
                        let flags = shared.notify.flags();
                        notify::publish(shared, flags, notify::EXPIRED, "expired", db, key);
                    }
                })));
            server
                .keyspace
                .report_expired(notify::reports_expired(server.shared.notify.flags()));
            let tls = self.tls.map(tokio_rustls::TlsAcceptor::from);
            let sampler = tokio::spawn(sample_rates(Arc::downgrade(&server)));
            serve(self.listener, server, tls, ctx.shutdown).await;
            sampler.abort();
            tracing::info!(service = "resp", "stopped");
            Ok(())
        })
    }
}

struct Server {
    keyspace: Arc<Keyspace>,
    shared: Shared,
}

/// Samples the command and byte counters for INFO's `instantaneous_*` rates every
/// [`crate::metrics::RATE_PERIOD`], until the server is gone.
async fn sample_rates(server: std::sync::Weak<Server>) {
    let mut tick = tokio::time::interval(crate::metrics::RATE_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let start = std::time::Instant::now();
    loop {
        tick.tick().await;
        let Some(server) = server.upgrade() else {
            return;
        };
        let m = &server.shared.metrics;
        let totals = [m.total_calls(), m.net_input_bytes(), m.net_output_bytes()];
        let now_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
        server.shared.stats.rates.lock().sample(now_ms, totals);
    }
}

/// Longest a TLS handshake may take before the connection is dropped.
const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

async fn serve(
    listener: TcpListener,
    server: Arc<Server>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: CancellationToken,
) {
    let loops = match Loops::start(server.shared.config.threads, server.shared.config.busy_poll) {
        Ok(loops) => loops,
        Err(e) => {
            tracing::error!(service = "resp", error = %e, "cannot start the RESP event loops");
            return;
        }
    };
    let connections = TaskTracker::new();
    loop {
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(service = "resp", error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        server
            .shared
            .stats
            .connections_received
            .fetch_add(1, Ordering::Relaxed);
        let _ = stream.set_nodelay(true);
        if server.shared.connected() >= server.shared.settings.max_clients() {
            server
                .shared
                .stats
                .rejected_connections
                .fetch_add(1, Ordering::Relaxed);
            connections.spawn(async move {
                let mut stream = stream;
                let _ = stream
                    .write_all(b"-ERR max number of clients reached\r\n")
                    .await;
            });
            continue;
        }
        let local = stream.local_addr().unwrap_or(peer);
        // Served by one of the event loops: out of this runtime's reactor, into that
        // loop's (in the task, which runs on the loop).
        let stream = match stream.into_std() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(service = "resp", %peer, error = %e, "cannot hand the connection to an event loop");
                continue;
            }
        };
        let client = server.shared.register(peer, local, &shutdown);
        server.shared.metrics.clients.inc();
        let server = Arc::clone(&server);
        let tls = tls.clone();
        let (handle, load) = loops.pick();
        connections.spawn_on(async move {
            let id = client.id;
            let result = match tokio::net::TcpStream::from_std(stream) {
                Err(e) => Err(e),
                Ok(stream) => match tls {
                None => connection(stream, &server, client).await,
                Some(tls) => {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, tls.accept(stream)).await {
                        Ok(Ok(stream)) => connection(stream, &server, client).await,
                        Ok(Err(e)) => {
                            tracing::info!(service = "resp", client = id, %peer, error = %e, "TLS handshake failed");
                            Ok(())
                        }
                        Err(_) => {
                            tracing::info!(service = "resp", client = id, %peer, "TLS handshake timed out");
                            Ok(())
                        }
                    }
                }
                },
            };
            if let Err(e) = result {
                tracing::debug!(service = "resp", client = id, error = %e, "connection closed with an error");
            }
            server.shared.unregister(id);
            server.shared.metrics.clients.dec();
            load.fetch_sub(1, Ordering::Relaxed);
        }, &handle);
    }
    drop(listener);
    connections.close();
    connections.wait().await;
    loops.stop().await;
}

/// The event loops that run the connections: `resp.threads` OS threads, each driving a
/// single-threaded runtime, as Redis runs its clients on one event loop. A connection
/// stays on the loop it was given (the one with the fewest connections), so its
/// commands never wait for another thread, and a loop that has several connections
/// ready reads and executes all of them before it writes any reply (see
/// [`serve_client`]). Commands on different loops run in parallel on the sharded
/// keyspace. Measured in ARCHITECTURE.md: one loop beside the benchmark client on two
/// cores does more than two work-stealing workers contending for the same shards.
struct Loops {
    loops: Vec<(tokio::runtime::Handle, Arc<AtomicUsize>)>,
    threads: Vec<std::thread::JoinHandle<()>>,
    stop: CancellationToken,
}

impl Loops {
    /// `busy_poll`: how long a loop keeps polling its sockets after a batch of commands
    /// instead of sleeping, once its batches come this close together
    /// ([`crate::spin`]); zero sleeps at once.
    fn start(threads: usize, busy_poll: std::time::Duration) -> std::io::Result<Self> {
        let stop = CancellationToken::new();
        let mut loops = Vec::new();
        let mut handles = Vec::new();
        for i in 0..threads.max(1) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            loops.push((runtime.handle().clone(), Arc::new(AtomicUsize::new(0))));
            let stop = stop.clone();
            handles.push(
                std::thread::Builder::new()
                    .name(format!("girder-resp-{i}"))
                    .spawn(move || {
                        runtime.block_on(async {
                            if busy_poll.is_zero() {
                                stop.cancelled().await;
                            } else {
                                tokio::select! {
                                    () = stop.cancelled() => {}
                                    () = crate::spin::run(busy_poll) => {}
                                }
                            }
                        });
                    })?,
            );
        }
        Ok(Self {
            loops,
            threads: handles,
            stop,
        })
    }

    /// The loop with the fewest connections, its count already raised by one.
    fn pick(&self) -> (tokio::runtime::Handle, Arc<AtomicUsize>) {
        let (handle, load) = self
            .loops
            .iter()
            .min_by_key(|(_, load)| load.load(Ordering::Relaxed))
            .expect("at least one loop");
        load.fetch_add(1, Ordering::Relaxed);
        (handle.clone(), Arc::clone(load))
    }

    /// Stops the loops once their connections have ended.
    async fn stop(self) {
        self.stop.cancel();
        let threads = self.threads;
        let _ = tokio::task::spawn_blocking(move || {
            for thread in threads {
                let _ = thread.join();
            }
        })
        .await;
    }
}

/// A client connection: plain TCP, or TLS over it.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<S: AsyncRead + AsyncWrite + Unpin + Send> Stream for S {}

/// Writes all of `data` and flushes it: a TLS stream holds written bytes in its session
/// until flushed (for TCP the flush is free).
async fn send<S: Stream>(stream: &mut S, data: &[u8]) -> std::io::Result<()> {
    stream.write_all(data).await?;
    stream.flush().await
}

async fn connection<S: Stream>(
    mut stream: S,
    server: &Server,
    mut client: ClientState,
) -> std::io::Result<()> {
    let mut stats = LocalStats::default();
    let result = serve_client(&mut stream, server, &mut client, &mut stats).await;
    stats.flush(&server.shared.metrics, Instant::now());
    commands::transactions::release(&server.keyspace, &mut client);
    // A closed connection leaves no subscription behind.
    server.shared.pubsub.release(&mut client);
    result
}

async fn serve_client<S: Stream>(
    stream: &mut S,
    server: &Server,
    client: &mut ClientState,
    stats: &mut LocalStats,
) -> std::io::Result<()> {
    let limits = server.shared.config.limits;
    let mut input = BytesMut::with_capacity(16 * 1024);
    let mut output = BytesMut::with_capacity(16 * 1024);
    // CLIENT KILL or shutdown (the kill token is the shutdown token's child). One future
    // for the connection's life: its waiter stays registered, where a future made per
    // wait would register and unregister it around every command.
    let killed = client.handle.kill.clone().cancelled_owned();
    tokio::pin!(killed);
    // The connection's start on the latency clock (`ClientHandle::created` is on std's).
    let started = Instant::now() - client.handle.created.elapsed();
    loop {
        // Execute every complete command already buffered, then write all replies at
        // once. One wall-clock read per batch (TTL decisions) and one monotonic read per
        // command (its latency: the time since the previous command ended).
        let mut now_ms = server.keyspace.now_ms();
        let mut mark = Instant::now();
        // What the batch starts with: a large command's allocation outlives its split-off
        // bytes (`capacity` then counts only the tail), so this says whether to give the
        // buffer back once it is empty.
        let buffered = input.len();
        // Whether a reply of this batch shows journaled (stream) state.
        let mut shows_journaled = false;
        // Commands this batch ran.
        let mut commands = 0usize;
        loop {
            let limits = if client.authenticated {
                limits
            } else {
                limits.unauthenticated()
            };
            match parse_command(&mut input, &limits) {
                Ok(Some(args)) if args.is_empty() => continue,
                Ok(Some(args)) => {
                    commands += 1;
                    deliver_queued(client, &mut output);
                    let (index, mut reply) = execute(server, client, &args, now_ms);
                    shows_journaled |= index.is_some_and(commands::reads_journaled);
                    let done = Instant::now();
                    match index {
                        Some(i) => stats.record(i, done - mark, matches!(reply, Reply::Error(_))),
                        None => stats.record_unknown(),
                    }
                    mark = done;
                    if let Some(wait) = client.blocked.take() {
                        settle(server, client, &mut shows_journaled).await?;
                        // The replies before it go out now: the client may need them.
                        if !output.is_empty() {
                            stats.wrote(output.len());
                            send(stream, &output).await?;
                            output.clear();
                        }
                        // A blocked client is an idle one: its counts go in now.
                        stats.flush(&server.shared.metrics, Instant::now());
                        let limit = server.shared.config.query_buffer_limit;
                        // What the client sends while blocked is read by `interrupted`.
                        let buffered_before = input.len();
                        let interrupted = interrupted(stream, &mut input, limit, killed.as_mut());
                        let handle = Arc::clone(&client.handle);
                        // Registered before `blocked` is set, so CLIENT UNBLOCK cannot
                        // slip between the two (`notify_waiters` wakes it once created).
                        let notified = handle.unblocked.notified();
                        handle.blocked.store(true, Ordering::SeqCst);
                        let unblocked = async {
                            notified.await;
                            handle.unblock.lock().take().unwrap_or(Reply::NullArray)
                        };
                        let outcome = wait
                            .finish(&server.shared.blocking, interrupted, unblocked)
                            .await;
                        handle.blocked.store(false, Ordering::SeqCst);
                        handle.unblock.lock().take();
                        stats.read(input.len().saturating_sub(buffered_before));
                        match outcome {
                            Some(outcome) => reply = outcome,
                            None => return Ok(()),
                        }
                        // Served by another client's write, which may not be durable yet.
                        shows_journaled = true;
                        // The commands after it run later than the batch started.
                        now_ms = server.keyspace.now_ms();
                        mark = Instant::now();
                    }
                    match reply {
                        // A long reply encoded by the engine becomes the output buffer
                        // itself instead of being copied into it (SRANDMEMBER -10M, a
                        // huge LRANGE: the copy doubled their peak memory).
                        Reply::Encoded(bytes)
                            if output.is_empty() && bytes.len() >= OUTPUT_FLUSH_BYTES =>
                        {
                            output = bytes;
                        }
                        reply => reply.encode(client.protocol, &mut output),
                    }
                    let hard = server.shared.output_limits.normal_hard();
                    if hard > 0 && output.len() as u64 > hard && !client.pubsub.active() {
                        tracing::warn!(
                            service = "resp",
                            client = client.id,
                            bytes = output.len(),
                            limit_bytes = hard,
                            "closing client over client-output-buffer-limit normal"
                        );
                        return Ok(());
                    }
                    if client.closing {
                        settle(server, client, &mut shows_journaled).await?;
                        stats.wrote(output.len());
                        send(stream, &output).await?;
                        return Ok(());
                    }
                    // A long pipeline's replies go out as they accumulate, so its output
                    // buffer stays near this size instead of growing with the pipeline.
                    if output.len() >= OUTPUT_FLUSH_BYTES {
                        settle(server, client, &mut shows_journaled).await?;
                        stats.wrote(output.len());
                        if !write_or_killed(stream, &output, killed.as_mut()).await? {
                            return Ok(());
                        }
                        release_spare(&mut output);
                    }
                }
                Ok(None) => break,
                Err(e) => return protocol_error(stream, &mut output, server, client, e).await,
            }
        }
        if commands > 0 {
            crate::spin::note_activity(mark, commands);
        }
        client.handle.last_command_ms.store(
            u64::try_from(mark.duration_since(started).as_millis()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        stats.maybe_flush(&server.shared.metrics, mark);
        settle(server, client, &mut shows_journaled).await?;
        if !output.is_empty() {
            // Let the loop read and execute every other connection that is ready before
            // this one writes (Redis writes its replies in `beforeSleep`, after the whole
            // event batch): the replies then reach a client that is still busy with the
            // previous ones, instead of waking it once per connection — measured, that
            // wake-up was a third of the server's CPU time under redis-benchmark.
            // After a lone request-response command too: where the server is the
            // bottleneck (`-P 1` MSET) each early reply woke the client for that reply
            // alone, and yielding there measured +9% requests/s (paired rounds, GET and
            // LRANGE unchanged; `bench/resp-run8.md`), for a second poll of this task.
            tokio::task::yield_now().await;
            stats.wrote(output.len());
            if !write_or_killed(stream, &output, killed.as_mut()).await? {
                return Ok(());
            }
            release_spare(&mut output);
        }
        if input.is_empty() {
            // A large command leaves a large buffer behind: give it back.
            if buffered > SPARE_BUFFER_BYTES {
                input = BytesMut::with_capacity(16 * 1024);
            } else {
                release_spare(&mut input);
            }
        }
        if input.len() > server.shared.config.query_buffer_limit {
            tracing::warn!(
                service = "resp",
                client = client.id,
                bytes = input.len(),
                "closing client that exceeded client-query-buffer-limit"
            );
            return Ok(());
        }
        if input.capacity() - input.len() < 4096 {
            input.reserve(16 * 1024);
        }
        // `timeout`: an idle client is closed, unless it is a subscriber (as in Redis;
        // blocked clients wait elsewhere and are exempt too).
        let idle_secs = server.shared.settings.timeout_secs();
        let exempt = idle_secs == 0 || client.pubsub.active();
        let idle = async move {
            if exempt {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(std::time::Duration::from_secs(idle_secs)).await;
        };
        // `next` never completes for a connection that has not subscribed.
        // Biased, the read first: when it is ready, as it is for a busy client, the
        // other branches are not polled at all.
        let metrics = &server.shared.metrics;
        let n = tokio::select! {
            biased;
            read = stream.read_buf(&mut input) => read?,
            // Polled only when the read must wait: a connection that goes idle folds its
            // counts now, so INFO and /metrics never miss a quiet client's last commands.
            () = async {
                stats.flush(metrics, Instant::now());
                std::future::pending::<()>().await;
            } => unreachable!("pending"),
            () = idle => {
                tracing::debug!(service = "resp", client = client.id, idle_secs, "closing idle client (timeout)");
                return Ok(());
            }
            message = client.pubsub.next() => {
                message.into_reply().encode(client.protocol, &mut output);
                deliver_queued(client, &mut output);
                continue;
            }
            () = killed.as_mut() => return Ok(()),
        };
        if n == 0 {
            return Ok(());
        }
        stats.read(n);
    }
}

/// Waits until what this batch's commands journaled is durable under the configured
/// policy, before any of their replies leave (and before the connection waits on
/// anything, so a later batch on this thread is not charged for it); and, when a reply
/// shows journaled state (`shows_journaled`: a stream read, a blocked reader served by
/// someone else's XADD), until everything journaled so far is durable — so no client
/// sees an entry that a crash could take back, as Redis's `appendfsync always` sends
/// no reply before its fsync. If the journal failed, the replies are not sent: the
/// connection closes, and its client cannot take an unrecorded change for an
/// acknowledged one.
async fn settle(
    server: &Server,
    client: &ClientState,
    shows_journaled: &mut bool,
) -> std::io::Result<()> {
    let own = server.keyspace.take_durability();
    let barrier = if std::mem::take(shows_journaled) {
        server.keyspace.durability_barrier()
    } else {
        Durability::Nothing
    };
    let mut failure = None;
    for durability in [own, barrier] {
        match durability {
            Durability::Nothing => {}
            Durability::Wait(wait) => {
                if let Err(e) = wait.await {
                    failure.get_or_insert(e);
                }
            }
            Durability::Failed(e) => {
                failure.get_or_insert(e);
            }
        }
    }
    let Some(failure) = failure else {
        return Ok(());
    };
    tracing::error!(
        service = "resp",
        client = client.id,
        error = %failure,
        "closing client: its changes could not be made durable"
    );
    Err(std::io::Error::other(failure))
}

/// Replies written mid-batch once this much output has accumulated.
const OUTPUT_FLUSH_BYTES: usize = 64 * 1024;

/// Empties a connection buffer whose contents are done with, and gives its memory back
/// when a large command or reply grew it past [`SPARE_BUFFER_BYTES`], so an idle
/// connection does not keep its peak (Redis frees its reply blocks once written).
fn release_spare(buf: &mut BytesMut) {
    if buf.capacity() > SPARE_BUFFER_BYTES {
        *buf = BytesMut::with_capacity(16 * 1024);
    } else {
        buf.clear();
    }
}

/// The most a connection's empty input or output buffer keeps allocated.
const SPARE_BUFFER_BYTES: usize = 1024 * 1024;

/// Encodes the published messages already queued for `client` (none if it never
/// subscribed) into `output`. The queue's bound also bounds what this adds.
fn deliver_queued(client: &mut ClientState, output: &mut BytesMut) {
    while let Some(message) = client.pubsub.try_next() {
        message.into_reply().encode(client.protocol, output);
    }
}

/// Writes `output`; returns false, without finishing, if the client is killed or the
/// server shuts down meanwhile. A subscriber that stopped reading blocks this write, and
/// is killed when its message queue overflows: the write must not outlive it.
async fn write_or_killed<S: Stream>(
    stream: &mut S,
    output: &[u8],
    killed: Pin<&mut impl Future<Output = ()>>,
) -> std::io::Result<bool> {
    // Biased: a write that can finish now does, even if shutdown has begun.
    tokio::select! {
        biased;
        written = send(stream, output) => written.map(|()| true),
        () = killed => Ok(false),
    }
}

/// Completes when a blocked client must stop waiting: the peer closed the connection or
/// sent more than the query buffer limit (input that arrives meanwhile is kept, to run
/// after the blocked command), CLIENT KILL, or shutdown.
async fn interrupted<S: Stream>(
    stream: &mut S,
    input: &mut BytesMut,
    limit: usize,
    mut killed: Pin<&mut impl Future<Output = ()>>,
) {
    loop {
        if input.len() > limit {
            return;
        }
        if input.capacity() - input.len() < 4096 {
            input.reserve(16 * 1024);
        }
        tokio::select! {
            read = stream.read_buf(input) => if !matches!(read, Ok(n) if n > 0) {
                return;
            },
            () = killed.as_mut() => return,
        }
    }
}

async fn protocol_error<S: Stream>(
    stream: &mut S,
    output: &mut BytesMut,
    server: &Server,
    client: &ClientState,
    e: ProtocolError,
) -> std::io::Result<()> {
    server
        .shared
        .stats
        .protocol_errors
        .fetch_add(1, Ordering::Relaxed);
    tracing::debug!(service = "resp", client = client.id, error = %e, "protocol error; closing");
    Reply::Error(format!("ERR {e}")).encode(client.protocol, output);
    settle(server, client, &mut true).await?;
    send(stream, output).await?;
    stream.shutdown().await
}

/// Runs one command; returns its table index (`None` for an unknown command) and reply.
fn execute(
    server: &Server,
    client: &mut ClientState,
    args: &[bytes::Bytes],
    now_ms: u64,
) -> (Option<usize>, Reply) {
    let result = commands::dispatch(
        &mut Ctx {
            keyspace: &server.keyspace,
            client,
            shared: &server.shared,
            now_ms,
        },
        args,
    );
    // What CLIENT LIST shows of this connection (relaxed stores to its own handle).
    let handle = &client.handle;
    if let Some(index) = result.0 {
        handle.last_cmd.store(index, Ordering::Relaxed);
    }
    let resp = if matches!(client.protocol, Protocol::Resp3) {
        3
    } else {
        2
    };
    handle.resp.store(resp, Ordering::Relaxed);
    let multi = client.tx.queued.as_ref().map_or(-1, |q| q.len() as i64);
    handle.multi.store(multi, Ordering::Relaxed);
    result
}
