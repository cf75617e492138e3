//! A node: the configured set of services, bound to their ports, ready to run.
//!
//! This is the wiring the binary does, as a library so that tests run a real node in
//! process (on port 0) and plug extra routes in through the same seam later systems use.

use crate::config::Config;
use anyhow::Context as _;
use girder_http::server::ConnectionLimits;
use girder_http::{Api, HttpApp, HttpOptions, HttpService, OpenApiDoc};
use girder_id::{Generator, SystemClock};
use girder_kv::Keyspace;
use girder_resp::codec::Limits;
use girder_resp::{RespConfig, RespService};
use girder_runtime::{
    supervise, BuildInfo, CancellationToken, Metrics, Readiness, Service, ServiceContext,
    ShutdownPolicy, ShutdownReport,
};
use girder_stream::topics::{Topics, TopicsConfig};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// A node whose listeners are bound; [`Node::run`] serves until shutdown.
#[derive(Debug)]
pub struct Node {
    http_addr: SocketAddr,
    resp_addr: SocketAddr,
    services: Vec<Box<dyn Service>>,
    ctx: ServiceContext,
    policy: ShutdownPolicy,
}

/// Builds a [`Node`]; `mount_http` adds routes next to the built-in ones.
pub struct NodeBuilder {
    config: Config,
    mounts: Vec<(axum::Router, OpenApiDoc)>,
}

impl Node {
    /// Starts building a node from a validated configuration.
    pub fn builder(config: Config) -> NodeBuilder {
        NodeBuilder {
            config,
            mounts: Vec::new(),
        }
    }

    /// Where the HTTP front end listens (the real port when the config said port 0).
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Where the RESP front end listens.
    pub fn resp_addr(&self) -> SocketAddr {
        self.resp_addr
    }

    /// The node's readiness, shared with `/readyz`.
    pub fn readiness(&self) -> Readiness {
        self.ctx.readiness.clone()
    }

    /// Serves until `shutdown_requested` resolves, then shuts down per `[shutdown]`.
    ///
    /// # Errors
    /// When a service fails.
    pub async fn run(
        self,
        shutdown_requested: impl Future<Output = ()>,
    ) -> anyhow::Result<ShutdownReport> {
        supervise(self.services, self.ctx, shutdown_requested, self.policy).await
    }
}

impl NodeBuilder {
    /// Adds HTTP routes, with their OpenAPI description, to the node's API.
    #[must_use]
    pub fn mount_http(mut self, router: axum::Router, doc: OpenApiDoc) -> Self {
        self.mounts.push((router, doc));
        self
    }

    /// Creates the data directory and binds every listener.
    ///
    /// # Errors
    /// When the data directory cannot be created or a port cannot be bound.
    pub async fn bind(self) -> anyhow::Result<Node> {
        let config = self.config;
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("cannot create data_dir {}", config.data_dir.display()))?;
        let ctx = ServiceContext {
            shutdown: CancellationToken::new(),
            readiness: Readiness::default(),
            metrics: Metrics::new(BuildInfo {
                version: env!("CARGO_PKG_VERSION"),
                ..BuildInfo::default()
            }),
        };
        let ids = Arc::new(Generator::new(config.id_config(), SystemClock)?);
        let mut app = HttpApp::new(Api {
            ids: Arc::clone(&ids),
            readiness: ctx.readiness.clone(),
            metrics: ctx.metrics.clone(),
        });
        let topics = open_topics(&config)?;
        app = app.mount(
            girder_http::routes::topics::router(girder_http::routes::topics::TopicsState::new(
                Arc::clone(&topics),
                &ctx.metrics,
            )),
            girder_http::routes::topics::openapi(),
        );
        let sched = open_scheduler(&config).await?;
        sched.metrics().register(&ctx.metrics);
        app = app.mount(
            girder_http::routes::jobs::router(girder_http::routes::jobs::JobsState::new(
                Arc::clone(&sched),
            )),
            girder_http::routes::jobs::openapi(),
        );
        for (router, doc) in self.mounts {
            app = app.mount(router, doc);
        }
        let body_limit = usize::try_from(config.http.body_limit).unwrap_or(usize::MAX);
        let router = app.into_router(HttpOptions {
            body_limit,
            rate_limit: config.http.rate_limit.options()?,
        });
        let listener = tokio::net::TcpListener::bind(config.http.addr)
            .await
            .with_context(|| format!("cannot listen on http.addr {}", config.http.addr))?;
        let http_addr = listener.local_addr()?;
        let resp_listener = tokio::net::TcpListener::bind(config.resp.addr)
            .await
            .with_context(|| format!("cannot listen on resp.addr {}", config.resp.addr))?;
        let resp_addr = resp_listener.local_addr()?;
        let keyspace = Arc::new(Keyspace::new(
            Arc::new(girder_kv::SystemClock),
            to_usize(config.resp.proto_max_bulk_len),
        ));
        // maxmemory is held to what the allocator holds (girder-alloc, main.rs).
        keyspace.set_memory_probe(Arc::new(girder_alloc::allocated));
        config.memory.apply(&keyspace);
        let journal = crate::persistence::open_journal(&config, &keyspace)?;
        let persistence =
            crate::persistence::NodePersistence::new(&config, journal, Arc::clone(&keyspace));
        let resp_config = RespConfig {
            limits: Limits {
                max_bulk_len: to_usize(config.resp.proto_max_bulk_len),
                max_array_len: to_usize(config.resp.max_multibulk_len),
                max_inline_len: 64 * 1024,
                unauthenticated: false,
            },
            query_buffer_limit: to_usize(config.resp.client_query_buffer_limit),
            max_clients: to_usize(config.resp.maxclients),
            pubsub_queue_limit: to_usize(config.resp.pubsub_queue_limit),
            // Validated with the configuration.
            notify_keyspace_events: girder_resp::notify::parse(
                config.resp.notify_keyspace_events.as_bytes(),
            )
            .unwrap_or(0),
            rate_limit_keys: to_usize(config.resp.rate_limit_keys),
            requirepass: config.resp.requirepass.clone(),
            timeout_secs: config.resp.timeout,
            protected_mode: config.resp.protected_mode,
            client_output_buffer_limit: config.resp.client_output_buffer_limit.clone(),
            threads: to_usize(config.resp.threads),
            busy_poll: std::time::Duration::from_micros(config.resp.busy_poll_us),
        };
        let mut resp = RespService::new(resp_listener, Arc::clone(&keyspace), resp_config)
            .with_ids(Arc::clone(&ids))
            .with_persistence(Arc::new(persistence.clone()));
        if let (Some(cert), Some(key)) = (&config.resp.tls.cert, &config.resp.tls.key) {
            let tls =
                girder_resp::tls::server_config(cert, key, config.resp.tls.client_ca.as_deref())
                    .context("resp.tls")?;
            resp = resp.with_tls(tls);
        }
        Ok(Node {
            http_addr,
            resp_addr,
            services: vec![
                Box::new(resp),
                Box::new(crate::persistence::PersistenceService { persistence }),
                Box::new(ExpiryService { keyspace }),
                Box::new(TopicsService { topics }),
                Box::new(SchedulerService { sched }),
                Box::new(HttpService::new(
                    listener,
                    router,
                    ConnectionLimits {
                        max_connections: usize::try_from(config.http.max_connections)
                            .unwrap_or(usize::MAX),
                        header_read_timeout: config.http.header_read_timeout,
                        write_timeout: config.http.write_timeout,
                    },
                )),
            ],
            ctx,
            policy: ShutdownPolicy {
                drain_delay: config.shutdown.drain_delay,
                grace_period: config.shutdown.grace_period,
            },
        })
    }
}

/// Opens every topic under `<data_dir>/topics`.
fn open_topics(config: &Config) -> anyhow::Result<Arc<Topics>> {
    let dir = girder_stream::topics::topics_dir(&config.data_dir);
    let started = std::time::Instant::now();
    let (topics, report) = Topics::open(TopicsConfig::new(&dir)).with_context(|| {
        format!(
            "cannot open the topics in {}; `girder log check <partition dir>` shows damage in a partition",
            dir.display()
        )
    })?;
    tracing::info!(
        dir = %dir.display(),
        topics = report.topics,
        removed = report.removed.len(),
        transactions_completed = report.transactions,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "topics opened"
    );
    Ok(Arc::new(topics))
}

/// Opens the scheduler's store: the embedded `<data_dir>/scheduler/jobs.db`, or the
/// PostgreSQL database `scheduler.store` names (shared by several nodes).
async fn open_scheduler(config: &Config) -> anyhow::Result<Arc<girder_sched::Scheduler>> {
    let store: Arc<dyn girder_sched::Store> = if config.scheduler.store.is_empty() {
        let dir = config.data_dir.join("scheduler");
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create the scheduler directory {}", dir.display()))?;
        let path = dir.join("jobs.db");
        Arc::new(
            girder_sched::SqliteStore::open(&path)
                .with_context(|| format!("cannot open the scheduler store {}", path.display()))?,
        )
    } else {
        let url = config.scheduler.store.clone();
        let store = tokio::task::spawn_blocking(move || {
            girder_sched::PgStore::connect(&url, girder_sched::PgOptions::default())
        })
        .await?
        .context("cannot open the scheduler store scheduler.store (PostgreSQL)")?;
        Arc::new(store)
    };
    Ok(girder_sched::Scheduler::new(
        store,
        config.sched_config(),
        Arc::new(girder_sched::SystemClock),
    ))
}

/// The scheduler's background duties (schedule ticks, lease reaping, pruning, gauges)
/// and its webhook executor.
struct SchedulerService {
    sched: Arc<girder_sched::Scheduler>,
}

impl Service for SchedulerService {
    fn name(&self) -> &'static str {
        "scheduler"
    }

    fn run(
        self: Box<Self>,
        ctx: girder_runtime::ServiceContext,
    ) -> girder_runtime::BoxFuture<'static, anyhow::Result<()>> {
        Box::pin(async move {
            let executor = girder_sched::webhook::run(
                Arc::clone(&self.sched),
                girder_sched::webhook::WebhookConfig::default(),
                ctx.shutdown.clone(),
            );
            tokio::join!(self.sched.run(ctx.shutdown.clone()), executor);
            Ok(())
        })
    }
}

/// Applies topics' retention and checkpoints their transactions every second, and
/// fsyncs every partition at shutdown.
struct TopicsService {
    topics: Arc<Topics>,
}

impl Service for TopicsService {
    fn name(&self) -> &'static str {
        "topics"
    }

    fn run(
        self: Box<Self>,
        ctx: girder_runtime::ServiceContext,
    ) -> girder_runtime::BoxFuture<'static, anyhow::Result<()>> {
        Box::pin(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = ctx.shutdown.cancelled() => break,
                    _ = tick.tick() => {
                        let topics = Arc::clone(&self.topics);
                        // Blocking: it deletes files.
                        if let Err(e) = tokio::task::spawn_blocking(move || topics.enforce_retention()).await? {
                            tracing::error!(error = %e, "topic retention failed");
                        }
                        let topics = Arc::clone(&self.topics);
                        // Blocking: it fsyncs what transactions touched.
                        if let Err(e) = tokio::task::spawn_blocking(move || topics.checkpoint_transactions()).await? {
                            tracing::error!(error = %e, "transaction checkpoint failed");
                        }
                    }
                }
            }
            let topics = Arc::clone(&self.topics);
            tokio::task::spawn_blocking(move || topics.sync()).await??;
            Ok(())
        })
    }
}

fn to_usize(v: u64) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

/// Reclaims expired keys nobody reads: every 100 ms, up to [`EXPIRY_BUDGET`] keys per
/// database, so one cycle never holds a shard for long.
struct ExpiryService {
    keyspace: Arc<Keyspace>,
}

/// Most expired keys removed per database per cycle.
const EXPIRY_BUDGET: usize = 2_000;

impl Service for ExpiryService {
    fn name(&self) -> &'static str {
        "kv-expiry"
    }

    fn run(
        self: Box<Self>,
        ctx: girder_runtime::ServiceContext,
    ) -> girder_runtime::BoxFuture<'static, anyhow::Result<()>> {
        Box::pin(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = ctx.shutdown.cancelled() => return Ok(()),
                    _ = tick.tick() => {
                        let keyspace = Arc::clone(&self.keyspace);
                        // On the blocking pool: a cycle takes shard locks.
                        let removed = tokio::task::spawn_blocking(move || keyspace.expire_cycle(EXPIRY_BUDGET)).await?;
                        if removed > 0 {
                            tracing::trace!(removed, "expired keys reclaimed");
                        }
                    }
                }
            }
        })
    }
}
