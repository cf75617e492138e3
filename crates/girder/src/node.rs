//! A node: the configured set of services, bound to their ports, ready to run.
//!
//! This is the wiring the binary does, as a library so that tests run a real node in
//! process (on port 0) and plug extra routes in through the same seam later systems use.

use crate::config::Config;
use anyhow::Context as _;
use girder_http::server::ConnectionLimits;
use girder_http::{Api, HttpApp, HttpOptions, HttpService, OpenApiDoc};
use girder_id::{Generator, SystemClock};
use girder_runtime::{
    supervise, BuildInfo, CancellationToken, Metrics, Readiness, Service, ServiceContext,
    ShutdownPolicy, ShutdownReport,
};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

/// A node whose listeners are bound; [`Node::run`] serves until shutdown.
#[derive(Debug)]
pub struct Node {
    http_addr: SocketAddr,
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
            ids,
            readiness: ctx.readiness.clone(),
            metrics: ctx.metrics.clone(),
        });
        for (router, doc) in self.mounts {
            app = app.mount(router, doc);
        }
        let body_limit = usize::try_from(config.http.body_limit).unwrap_or(usize::MAX);
        let router = app.into_router(HttpOptions { body_limit });
        let listener = tokio::net::TcpListener::bind(config.http.addr)
            .await
            .with_context(|| format!("cannot listen on http.addr {}", config.http.addr))?;
        let http_addr = listener.local_addr()?;
        Ok(Node {
            http_addr,
            services: vec![Box::new(HttpService::new(
                listener,
                router,
                ConnectionLimits {
                    max_connections: usize::try_from(config.http.max_connections)
                        .unwrap_or(usize::MAX),
                    header_read_timeout: config.http.header_read_timeout,
                    write_timeout: config.http.write_timeout,
                },
            ))],
            ctx,
            policy: ShutdownPolicy {
                drain_delay: config.shutdown.drain_delay,
                grace_period: config.shutdown.grace_period,
            },
        })
    }
}
