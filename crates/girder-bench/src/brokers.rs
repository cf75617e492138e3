//! Girder's topics against RabbitMQ (a quorum queue) and NATS JetStream (a file-storage
//! stream), with the same payload size, the same batching and the same checks.
//!
//! **Produce** (`phase = "produce"`): `producers` tasks publish `messages` messages of
//! `size` bytes, each keeping `window` messages in flight: Girder = one `POST
//! /v1/topics/T/messages` of `window` messages (answered after fsync); RabbitMQ =
//! `window` persistent publishes on a confirm-mode channel, then their publisher
//! confirms; NATS = `window` JetStream publishes, then their PubAcks. Throughput runs from
//! the first send to the last confirmation; latency is per message, from its send to its
//! confirmation.
//!
//! **Consume** (`phase = "consume"`): `consumers` tasks drain that backlog with manual
//! acks in batches of `batch`: Girder = `receive` then one `ack` request per batch;
//! RabbitMQ = `basic.consume` with prefetch `batch` and one `basic.ack multiple=true`
//! per batch; NATS = a durable pull consumer (AckExplicit) fetched `batch` at a time,
//! every message acked. The clock runs from the first receive to the confirmation of the
//! ack that completed the total (Girder: its answer; RabbitMQ: a passive `queue.declare`
//! round trip on the same channel after it; NATS: a flush after it). No latency is
//! reported for this phase.
//!
//! **End to end** (`phase = "e2e"`): producers paced at `e2e_rate` msgs/s in total and
//! consumers at once; latency = receive time − the send timestamp in the payload (one
//! machine, one clock).
//!
//! Every payload is `<send µs>:<producer>:<seq>:` padded with `x` to `size` bytes; every
//! message must be received exactly once (a duplicate, a loss or a foreign payload fails
//! the run, as does any error answer).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};

/// Which broker to drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum System {
    /// Girder's topics over HTTP.
    Girder,
    /// RabbitMQ over AMQP 0-9-1, a quorum queue.
    Rabbitmq,
    /// NATS JetStream, a file-storage stream.
    Nats,
}

impl System {
    fn name(self) -> &'static str {
        match self {
            System::Girder => "girder",
            System::Rabbitmq => "rabbitmq",
            System::Nats => "nats",
        }
    }
}

impl std::str::FromStr for System {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "girder" => Ok(System::Girder),
            "rabbitmq" => Ok(System::Rabbitmq),
            "nats" => Ok(System::Nats),
            _ => Err(format!("unknown system {s:?} (girder, rabbitmq or nats)")),
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// The broker.
    pub system: System,
    /// Girder's HTTP base URL.
    pub base: String,
    /// RabbitMQ's AMQP URL.
    pub amqp: String,
    /// NATS's URL.
    pub nats: String,
    /// Messages in the produce and consume phases.
    pub messages: u64,
    /// Payload bytes per message.
    pub size: usize,
    /// Producer tasks.
    pub producers: usize,
    /// Consumer tasks.
    pub consumers: usize,
    /// Messages in flight per producer.
    pub window: usize,
    /// Messages per receive and per ack.
    pub batch: usize,
    /// Girder topic partitions.
    pub partitions: u32,
    /// The Girder topic's `fsync` policy: `always` (answers after fsync, like RabbitMQ's
    /// quorum queues) or `never` (answers once written to the OS, like NATS JetStream's
    /// file store with its default sync interval).
    pub girder_fsync: String,
    /// Messages in the end-to-end phase (0 skips it).
    pub e2e_messages: u64,
    /// Total publish rate of the end-to-end phase, msgs/s.
    pub e2e_rate: u64,
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BrokersError(String);

fn fail(m: impl Into<String>) -> BrokersError {
    BrokersError(m.into())
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn now_ms() -> u64 {
    now_us() / 1000
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// `<ts_us>:<producer>:<seq>:` padded with `x` to `size` (never truncated).
fn payload(producer: usize, seq: u64, size: usize) -> String {
    let mut s = format!("{}:{producer}:{seq}:", now_us());
    if s.len() < size {
        s.extend(std::iter::repeat_n('x', size - s.len()));
    }
    s
}

/// (send µs, producer, seq) of a payload.
fn parse_payload(b: &[u8]) -> Option<(u64, usize, u64)> {
    let s = std::str::from_utf8(b).ok()?;
    let mut it = s.splitn(4, ':');
    let ts = it.next()?.parse().ok()?;
    let p = it.next()?.parse().ok()?;
    let seq = it.next()?.parse().ok()?;
    it.next()?;
    Some((ts, p, seq))
}

/// Messages of producer `p` when `total` are split over `producers`.
fn share(total: u64, producers: usize, p: usize) -> u64 {
    let n = producers as u64;
    total / n + u64::from((p as u64) < total % n)
}

/// What the tasks of one phase share.
struct Phase {
    total: u64,
    /// How often each (producer, seq) was received.
    seen: Mutex<Vec<Vec<u8>>>,
    received: AtomicU64,
    acked: AtomicU64,
    errors: Mutex<Vec<String>>,
    /// Per-message latencies, µs (confirmation for produce, end to end for e2e).
    latencies: Mutex<Vec<u64>>,
    first_send: Mutex<Option<Instant>>,
    last_confirm: Mutex<Option<Instant>>,
    first_receive: Mutex<Option<Instant>>,
    last_ack: Mutex<Option<Instant>>,
    /// Set once every message was received, or on an error: consumers stop.
    done: watch::Sender<bool>,
    /// Set when the producers are finished (with or without errors).
    produced: watch::Sender<bool>,
}

impl Phase {
    fn new(total: u64, producers: usize) -> Arc<Self> {
        let seen = (0..producers)
            .map(|p| vec![0u8; share(total, producers, p) as usize])
            .collect();
        Arc::new(Phase {
            total,
            seen: Mutex::new(seen),
            received: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            errors: Mutex::new(Vec::new()),
            latencies: Mutex::new(Vec::new()),
            first_send: Mutex::new(None),
            last_confirm: Mutex::new(None),
            first_receive: Mutex::new(None),
            last_ack: Mutex::new(None),
            done: watch::channel(false).0,
            produced: watch::channel(false).0,
        })
    }

    fn error(&self, e: impl Into<String>) {
        self.errors.lock().unwrap().push(e.into());
        self.done.send_replace(true);
    }

    fn failed(&self) -> bool {
        !self.errors.lock().unwrap().is_empty()
    }

    fn sent(&self, at: Instant) {
        let mut f = self.first_send.lock().unwrap();
        if f.is_none_or(|t| at < t) {
            *f = Some(at);
        }
    }

    fn confirmed(&self, at: Instant, latencies: &[u64]) {
        let mut l = self.last_confirm.lock().unwrap();
        if l.is_none_or(|t| at > t) {
            *l = Some(at);
        }
        self.latencies.lock().unwrap().extend_from_slice(latencies);
    }

    /// Accounts for received payloads; records e2e latencies when `e2e`.
    fn receive(&self, at: Instant, at_us: u64, payloads: &[&[u8]], e2e: bool) {
        {
            let mut f = self.first_receive.lock().unwrap();
            if f.is_none() {
                *f = Some(at);
            }
        }
        let mut lat = Vec::with_capacity(payloads.len());
        {
            let mut seen = self.seen.lock().unwrap();
            for b in payloads {
                match parse_payload(b) {
                    Some((ts, p, seq)) => {
                        match seen.get_mut(p).and_then(|v| v.get_mut(seq as usize)) {
                            Some(c) => {
                                *c = c.saturating_add(1);
                                if *c > 1 {
                                    drop(seen);
                                    self.error(format!("message {p}:{seq} received twice"));
                                    return;
                                }
                            }
                            None => {
                                drop(seen);
                                self.error(format!("unexpected message {p}:{seq}"));
                                return;
                            }
                        }
                        lat.push(at_us.saturating_sub(ts));
                    }
                    None => {
                        drop(seen);
                        self.error(format!(
                            "unparsable payload {:?}",
                            String::from_utf8_lossy(&b[..b.len().min(40)])
                        ));
                        return;
                    }
                }
            }
        }
        if e2e {
            self.latencies.lock().unwrap().extend_from_slice(&lat);
        }
        let n = payloads.len() as u64;
        if self.received.fetch_add(n, Ordering::SeqCst) + n >= self.total {
            // Consumers waiting for more can flush their last partial batch now.
            self.done.send_replace(true);
        }
    }

    /// Counts `n` acks sent (or confirmed); true if they completed the total.
    fn acked(&self, n: u64) -> bool {
        n > 0 && self.acked.fetch_add(n, Ordering::SeqCst) + n == self.total
    }

    fn ack_confirmed(&self, at: Instant) {
        let mut l = self.last_ack.lock().unwrap();
        if l.is_none_or(|t| at > t) {
            *l = Some(at);
        }
    }

    /// Losses and leftovers, once every task is over.
    fn check(&self) {
        let lost: usize = {
            let seen = self.seen.lock().unwrap();
            seen.iter().flatten().filter(|c| **c == 0).count()
        };
        if lost > 0 {
            self.error(format!("{lost} of {} messages never received", self.total));
        }
        let acked = self.acked.load(Ordering::SeqCst);
        if acked != self.total {
            self.error(format!("{acked} of {} messages acked", self.total));
        }
    }
}

/// The per-system connection state, made once per run.
enum Broker {
    Girder {
        client: reqwest::Client,
        base: String,
        topic: String,
        group: String,
    },
    Rabbitmq {
        args: Box<amqprs::connection::OpenConnectionArguments>,
        queue: String,
    },
    Nats {
        client: async_nats::Client,
        js: Box<async_nats::jetstream::Context>,
        stream: String,
        subject: String,
    },
}

/// Runs the three phases and prints one JSON line per phase (then a `#` line for people).
pub async fn run(config: &Config) -> Result<(), BrokersError> {
    if config.producers == 0 || config.consumers == 0 || config.window == 0 || config.batch == 0 {
        return Err(fail(
            "producers, consumers, window and batch must be above 0",
        ));
    }
    let name = format!("bench-{}-{}", std::process::id(), now_ms());
    let broker = setup(config, &name).await?;
    let mut result = phase(config, &broker, "produce").await;
    if result.is_ok() {
        result = phase(config, &broker, "consume").await;
    }
    if result.is_ok() && config.e2e_messages > 0 {
        result = phase(config, &broker, "e2e").await;
    }
    let cleaned = teardown(&broker).await;
    result.and(cleaned)
}

async fn setup(config: &Config, name: &str) -> Result<Broker, BrokersError> {
    match config.system {
        System::Girder => {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(64)
                .build()
                .map_err(|e| fail(format!("client: {e}")))?;
            let base = config.base.trim_end_matches('/').to_owned();
            let r = client
                .post(format!("{base}/v1/topics"))
                .json(
                    &serde_json::json!({"name": name, "partitions": config.partitions,
                                          "fsync": config.girder_fsync}),
                )
                .send()
                .await
                .map_err(|e| fail(format!("create topic: {e}")))?;
            if r.status() != reqwest::StatusCode::CREATED {
                let status = r.status();
                let text = r.text().await.unwrap_or_default();
                return Err(fail(format!("create topic answered {status}: {text}")));
            }
            Ok(Broker::Girder {
                client,
                base,
                topic: name.to_owned(),
                group: format!("{name}-group"),
            })
        }
        System::Rabbitmq => {
            let args = amqp_args(&config.amqp)?;
            let conn = amqprs::connection::Connection::open(&args)
                .await
                .map_err(|e| fail(format!("amqp connect {}: {e}", config.amqp)))?;
            let ch = conn
                .open_channel(None)
                .await
                .map_err(|e| fail(format!("amqp channel: {e}")))?;
            let mut table = amqprs::FieldTable::new();
            table.insert(
                "x-queue-type".try_into().unwrap(),
                amqprs::FieldValue::S("quorum".try_into().unwrap()),
            );
            ch.queue_declare(
                amqprs::channel::QueueDeclareArguments::durable_client_named(name)
                    .arguments(table)
                    .finish(),
            )
            .await
            .map_err(|e| fail(format!("declare quorum queue: {e}")))?;
            let _ = ch.close().await;
            let _ = conn.close().await;
            Ok(Broker::Rabbitmq {
                args: Box::new(args),
                queue: name.to_owned(),
            })
        }
        System::Nats => {
            use async_nats::jetstream;
            let client = async_nats::connect(config.nats.as_str())
                .await
                .map_err(|e| fail(format!("nats connect {}: {e}", config.nats)))?;
            let js = jetstream::new(client.clone());
            let subject = format!("bench.{name}");
            let stream = js
                .create_stream(jetstream::stream::Config {
                    name: name.to_owned(),
                    subjects: vec![subject.clone()],
                    storage: jetstream::stream::StorageType::File,
                    ..Default::default()
                })
                .await
                .map_err(|e| fail(format!("create stream: {e}")))?;
            stream
                .create_consumer(jetstream::consumer::pull::Config {
                    durable_name: Some(name.to_owned()),
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    ack_wait: Duration::from_secs(30),
                    max_ack_pending: 100_000,
                    ..Default::default()
                })
                .await
                .map_err(|e| fail(format!("create consumer: {e}")))?;
            Ok(Broker::Nats {
                client,
                js: Box::new(js),
                stream: name.to_owned(),
                subject,
            })
        }
    }
}

async fn teardown(broker: &Broker) -> Result<(), BrokersError> {
    match broker {
        Broker::Girder {
            client,
            base,
            topic,
            ..
        } => {
            let r = client
                .delete(format!("{base}/v1/topics/{topic}"))
                .send()
                .await
                .map_err(|e| fail(format!("delete topic: {e}")))?;
            if !r.status().is_success() {
                return Err(fail(format!("delete topic answered {}", r.status())));
            }
        }
        Broker::Rabbitmq { args, queue } => {
            let conn = amqprs::connection::Connection::open(args)
                .await
                .map_err(|e| fail(format!("amqp connect: {e}")))?;
            let ch = conn
                .open_channel(None)
                .await
                .map_err(|e| fail(format!("amqp channel: {e}")))?;
            ch.queue_delete(amqprs::channel::QueueDeleteArguments::new(queue))
                .await
                .map_err(|e| fail(format!("delete queue: {e}")))?;
            let _ = ch.close().await;
            let _ = conn.close().await;
        }
        Broker::Nats { js, stream, .. } => {
            js.delete_stream(stream)
                .await
                .map_err(|e| fail(format!("delete stream: {e}")))?;
        }
    }
    Ok(())
}

/// `amqp://user:pass@host:port/vhost` (the vhost percent-decoded; `/` when absent).
fn amqp_args(url: &str) -> Result<amqprs::connection::OpenConnectionArguments, BrokersError> {
    let bad = || fail(format!("bad AMQP URL {url:?}"));
    let rest = url.strip_prefix("amqp://").ok_or_else(bad)?;
    let (auth, rest) = rest.rsplit_once('@').unwrap_or(("guest:guest", rest));
    let (user, pass) = auth.split_once(':').unwrap_or((auth, ""));
    let (hostport, vhost) = rest.split_once('/').unwrap_or((rest, ""));
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().map_err(|_| bad())?),
        None => (hostport, 5672),
    };
    let vhost = if vhost.is_empty() {
        "/".to_owned()
    } else {
        percent_decode(vhost).ok_or_else(bad)?
    };
    let user = percent_decode(user).ok_or_else(bad)?;
    let pass = percent_decode(pass).ok_or_else(bad)?;
    Ok(
        amqprs::connection::OpenConnectionArguments::new(host, port, &user, &pass)
            .virtual_host(&vhost)
            .finish(),
    )
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(h, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// One phase: spawn the producers (and, except for `produce`, the consumers), wait,
/// check, print.
async fn phase(config: &Config, broker: &Broker, name: &str) -> Result<(), BrokersError> {
    let (total, rate) = if name == "e2e" {
        (config.e2e_messages, Some(config.e2e_rate.max(1)))
    } else {
        (config.messages, None)
    };
    let st = Phase::new(total, config.producers);
    let mut producers = Vec::new();
    let mut consumers = Vec::new();
    if name != "consume" {
        for p in 0..config.producers {
            let n = share(total, config.producers, p);
            let rate = rate.map(|r| r as f64 / config.producers as f64);
            producers.push(tokio::spawn(producer(
                config.clone(),
                handle(broker),
                st.clone(),
                p,
                n,
                rate,
            )));
        }
    }
    if name != "produce" {
        let e2e = name == "e2e";
        let nats_consumer = nats_consumer(broker).await?;
        for c in 0..config.consumers {
            consumers.push(tokio::spawn(consumer(
                config.clone(),
                handle(broker),
                st.clone(),
                c,
                e2e,
                nats_consumer.clone(),
            )));
        }
    }
    for t in producers {
        t.await.map_err(|e| fail(format!("producer task: {e}")))?;
    }
    st.produced.send_replace(true);
    for t in consumers {
        t.await.map_err(|e| fail(format!("consumer task: {e}")))?;
    }
    if name == "produce" {
        // Nobody consumes here: count nothing as lost.
        if !st.failed() && st.latencies.lock().unwrap().len() as u64 != total {
            st.error(format!(
                "{} of {total} messages confirmed",
                st.latencies.lock().unwrap().len()
            ));
        }
    } else if !st.failed() {
        st.check();
    }
    let errors = st.errors.lock().unwrap().clone();
    let (start, end, lat) = match name {
        "produce" => (&st.first_send, &st.last_confirm, true),
        "consume" => (&st.first_receive, &st.last_ack, false),
        _ => (&st.first_send, &st.last_ack, true),
    };
    let (start, end) = (*start.lock().unwrap(), *end.lock().unwrap());
    let secs = match (start, end) {
        (Some(s), Some(e)) => e.duration_since(s).as_secs_f64(),
        _ => 0.0,
    };
    let rate = if secs > 0.0 { total as f64 / secs } else { 0.0 };
    let mut l = st.latencies.lock().unwrap().clone();
    l.sort_unstable();
    let ms = |us: u64| format!("{:.3}", us as f64 / 1000.0);
    let (p50, p99, max) = if lat && !l.is_empty() {
        (
            ms(percentile(&l, 0.5)),
            ms(percentile(&l, 0.99)),
            ms(*l.last().unwrap()),
        )
    } else {
        ("null".into(), "null".into(), "null".into())
    };
    let system = config.system.name();
    println!(
        "{{\"system\":\"{system}\",\"phase\":\"{name}\",\"messages\":{total},\"size\":{},\"msgs_per_sec\":{rate:.0},\"p50_ms\":{p50},\"p99_ms\":{p99},\"max_ms\":{max},\"errors\":{}}}",
        config.size,
        errors.len()
    );
    let what = match name {
        "produce" => format!(
            "{} producers, {} in flight each; confirmation latency",
            config.producers, config.window
        ),
        "consume" => format!(
            "{} consumers, batches of {}, manual acks",
            config.consumers, config.batch
        ),
        _ => format!(
            "paced at {}/s by {} producers, {} consumers; end-to-end latency",
            config.e2e_rate, config.producers, config.consumers
        ),
    };
    let latency = if lat {
        format!(": p50 {p50} ms, p99 {p99} ms, max {max} ms")
    } else {
        String::new()
    };
    println!(
        "# {system} {name}: {total} × {} B in {secs:.2} s = {rate:.0} msgs/s ({what}{latency})",
        config.size
    );
    if let Some(e) = errors.first() {
        return Err(fail(format!(
            "{system} {name}: {e} ({} errors)",
            errors.len()
        )));
    }
    Ok(())
}

/// What a task needs of the broker (cheap clones).
#[derive(Clone)]
enum Handle {
    Girder {
        client: reqwest::Client,
        base: String,
        topic: String,
        group: String,
    },
    Rabbitmq {
        args: Box<amqprs::connection::OpenConnectionArguments>,
        queue: String,
    },
    Nats {
        client: async_nats::Client,
        js: Box<async_nats::jetstream::Context>,
        subject: String,
    },
}

fn handle(broker: &Broker) -> Handle {
    match broker {
        Broker::Girder {
            client,
            base,
            topic,
            group,
        } => Handle::Girder {
            client: client.clone(),
            base: base.clone(),
            topic: topic.clone(),
            group: group.clone(),
        },
        Broker::Rabbitmq { args, queue } => Handle::Rabbitmq {
            args: args.clone(),
            queue: queue.clone(),
        },
        Broker::Nats {
            client,
            js,
            subject,
            ..
        } => Handle::Nats {
            client: client.clone(),
            js: js.clone(),
            subject: subject.clone(),
        },
    }
}

type NatsConsumer =
    async_nats::jetstream::consumer::Consumer<async_nats::jetstream::consumer::pull::Config>;

async fn nats_consumer(broker: &Broker) -> Result<Option<NatsConsumer>, BrokersError> {
    match broker {
        Broker::Nats { js, stream, .. } => {
            let s = js
                .get_stream(stream)
                .await
                .map_err(|e| fail(format!("get stream: {e}")))?;
            let c = s
                .get_consumer(stream)
                .await
                .map_err(|e| fail(format!("get consumer: {e}")))?;
            Ok(Some(c))
        }
        _ => Ok(None),
    }
}

/// Forwards publisher confirms (tag, multiple, ack) to the producer.
struct Confirms(mpsc::UnboundedSender<(u64, bool, bool)>);

#[async_trait::async_trait]
impl amqprs::callbacks::ChannelCallback for Confirms {
    async fn close(
        &mut self,
        _: &amqprs::channel::Channel,
        close: amqprs::CloseChannel,
    ) -> Result<(), amqprs::error::Error> {
        eprintln!("girder-bench: the server closed a channel: {close}");
        Ok(())
    }
    async fn cancel(
        &mut self,
        _: &amqprs::channel::Channel,
        _: amqprs::Cancel,
    ) -> Result<(), amqprs::error::Error> {
        Ok(())
    }
    async fn flow(
        &mut self,
        _: &amqprs::channel::Channel,
        active: bool,
    ) -> Result<bool, amqprs::error::Error> {
        Ok(active)
    }
    async fn publish_ack(&mut self, _: &amqprs::channel::Channel, ack: amqprs::Ack) {
        let _ = self.0.send((ack.delivery_tag(), ack.mutiple(), true));
    }
    async fn publish_nack(&mut self, _: &amqprs::channel::Channel, nack: amqprs::Nack) {
        let _ = self.0.send((nack.delivery_tag(), nack.multiple(), false));
    }
    async fn publish_return(
        &mut self,
        _: &amqprs::channel::Channel,
        _: amqprs::Return,
        _: amqprs::BasicProperties,
        _: Vec<u8>,
    ) {
    }
}

/// A producer's connection, its confirm-mode channel and its confirms.
type AmqpProducer = (
    amqprs::connection::Connection,
    amqprs::channel::Channel,
    mpsc::UnboundedReceiver<(u64, bool, bool)>,
);

/// One producer: `n` messages, `window` at a time (or paced at `rate`/s, each send
/// carrying what is due, at most `window`), each batch confirmed before the next.
async fn producer(
    config: Config,
    handle: Handle,
    st: Arc<Phase>,
    p: usize,
    n: u64,
    rate: Option<f64>,
) {
    if let Err(e) = produce_loop(&config, handle, &st, p, n, rate).await {
        st.error(e.0);
    }
}

async fn produce_loop(
    config: &Config,
    handle: Handle,
    st: &Phase,
    p: usize,
    n: u64,
    rate: Option<f64>,
) -> Result<(), BrokersError> {
    // Per-system state.
    let mut amqp: Option<AmqpProducer> = None;
    if let Handle::Rabbitmq { args, .. } = &handle {
        let conn = amqprs::connection::Connection::open(args)
            .await
            .map_err(|e| fail(format!("amqp connect: {e}")))?;
        let ch = conn
            .open_channel(None)
            .await
            .map_err(|e| fail(format!("amqp channel: {e}")))?;
        let (tx, rx) = mpsc::unbounded_channel();
        ch.register_callback(Confirms(tx))
            .await
            .map_err(|e| fail(format!("amqp callback: {e}")))?;
        ch.confirm_select(amqprs::channel::ConfirmSelectArguments::new(false))
            .await
            .map_err(|e| fail(format!("confirm.select: {e}")))?;
        amqp = Some((conn, ch, rx));
    }
    let mut next_tag: u64 = 1;
    let started = Instant::now();
    let mut seq = 0u64;
    while seq < n {
        if st.failed() {
            return Ok(());
        }
        let count = match rate {
            None => (config.window as u64).min(n - seq),
            Some(r) => {
                let due = ((started.elapsed().as_secs_f64() * r) as u64).min(n);
                if due <= seq {
                    let at = started + Duration::from_secs_f64((seq + 1) as f64 / r);
                    tokio::time::sleep_until(at.into()).await;
                    continue;
                }
                (due - seq).min(config.window as u64)
            }
        };
        match &handle {
            Handle::Girder {
                client,
                base,
                topic,
                ..
            } => {
                let sent = Instant::now();
                let msgs: Vec<_> = (seq..seq + count)
                    .map(|s| serde_json::json!({"value": payload(p, s, config.size)}))
                    .collect();
                st.sent(sent);
                let r = client
                    .post(format!("{base}/v1/topics/{topic}/messages"))
                    .json(&serde_json::json!({ "messages": msgs }))
                    .send()
                    .await
                    .map_err(|e| fail(format!("produce: {e}")))?;
                let status = r.status();
                if status != reqwest::StatusCode::OK {
                    let text = r.text().await.unwrap_or_default();
                    return Err(fail(format!("produce answered {status}: {text}")));
                }
                let v: serde_json::Value = r
                    .json()
                    .await
                    .map_err(|e| fail(format!("produce body: {e}")))?;
                let done = Instant::now();
                let results = v["results"].as_array().map_or(0, Vec::len) as u64;
                if results != count {
                    return Err(fail(format!(
                        "produce of {count} answered {results} results"
                    )));
                }
                if v["results"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|r| r["duplicate"] == true)
                {
                    return Err(fail("produce answered a duplicate"));
                }
                let us = done.duration_since(sent).as_micros() as u64;
                st.confirmed(done, &vec![us; count as usize]);
            }
            Handle::Rabbitmq { queue, .. } => {
                let (_, ch, rx) = amqp.as_mut().unwrap();
                let mut pending = BTreeMap::new();
                for s in seq..seq + count {
                    let props = amqprs::BasicProperties::default()
                        .with_delivery_mode(amqprs::DELIVERY_MODE_PERSISTENT)
                        .finish();
                    let body = payload(p, s, config.size).into_bytes();
                    let at = Instant::now();
                    st.sent(at);
                    ch.basic_publish(
                        props,
                        body,
                        amqprs::channel::BasicPublishArguments::new("", queue),
                    )
                    .await
                    .map_err(|e| fail(format!("publish: {e}")))?;
                    pending.insert(next_tag, at);
                    next_tag += 1;
                }
                let mut lat = Vec::with_capacity(count as usize);
                while !pending.is_empty() {
                    let (tag, multiple, ack) =
                        match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
                            Ok(Some(c)) => c,
                            Ok(None) => return Err(fail("the confirm channel closed")),
                            Err(_) => return Err(fail("no publisher confirm in 30 s")),
                        };
                    let now = Instant::now();
                    if !ack {
                        return Err(fail(format!("publish {tag} was nacked")));
                    }
                    let done: Vec<Instant> = if multiple {
                        let rest = pending.split_off(&(tag + 1));
                        std::mem::replace(&mut pending, rest)
                            .into_values()
                            .collect()
                    } else {
                        pending.remove(&tag).into_iter().collect()
                    };
                    lat.extend(
                        done.iter()
                            .map(|t| now.duration_since(*t).as_micros() as u64),
                    );
                    if pending.is_empty() {
                        st.confirmed(now, &lat);
                    }
                }
            }
            Handle::Nats { js, subject, .. } => {
                let mut futs = Vec::with_capacity(count as usize);
                for s in seq..seq + count {
                    let body = payload(p, s, config.size).into_bytes();
                    let at = Instant::now();
                    st.sent(at);
                    let f = js
                        .publish(subject.clone(), body.into())
                        .await
                        .map_err(|e| fail(format!("publish: {e}")))?;
                    futs.push((at, f));
                }
                let mut lat = Vec::with_capacity(count as usize);
                let mut last = Instant::now();
                for (at, f) in futs {
                    let ack = f.await.map_err(|e| fail(format!("PubAck: {e}")))?;
                    if ack.duplicate {
                        return Err(fail("PubAck says duplicate"));
                    }
                    last = Instant::now();
                    lat.push(last.duration_since(at).as_micros() as u64);
                }
                st.confirmed(last, &lat);
            }
        }
        seq += count;
    }
    if let Some((conn, ch, _)) = amqp {
        let _ = ch.close().await;
        let _ = conn.close().await;
    }
    Ok(())
}

/// One consumer, until every message was received and acked (or an error).
async fn consumer(
    config: Config,
    handle: Handle,
    st: Arc<Phase>,
    c: usize,
    e2e: bool,
    nats: Option<NatsConsumer>,
) {
    let r = match handle {
        Handle::Girder {
            client,
            base,
            topic,
            group,
        } => girder_consume(&config, &client, &base, &topic, &group, &st, e2e).await,
        Handle::Rabbitmq { args, queue } => {
            rabbit_consume(&config, &args, &queue, &st, c, e2e).await
        }
        Handle::Nats { client, .. } => match nats {
            Some(n) => nats_consume(&config, &client, &n, &st, e2e).await,
            None => Err(fail("no NATS consumer")),
        },
    };
    if let Err(e) = r {
        st.error(e.0);
    }
}

/// Whether the phase is over for a consumer: everything acked, or an error, or the
/// producers are done and nothing has come for long (a loss: the check reports it).
fn over(st: &Phase, idle_since: Instant) -> bool {
    st.acked.load(Ordering::SeqCst) >= st.total
        || st.failed()
        || (*st.produced.borrow() && idle_since.elapsed() > Duration::from_secs(10))
}

/// Acks `receipts` (in requests of at most 100) and counts them once answered.
async fn girder_ack(
    client: &reqwest::Client,
    ack_url: &str,
    receipts: Vec<String>,
    st: &Phase,
) -> Result<(), BrokersError> {
    for chunk in receipts.chunks(100) {
        let r = client
            .post(ack_url)
            .json(&serde_json::json!({ "receipts": chunk }))
            .send()
            .await
            .map_err(|e| fail(format!("ack: {e}")))?;
        if !r.status().is_success() {
            return Err(fail(format!("ack answered {}", r.status())));
        }
        let v: serde_json::Value = r.json().await.map_err(|e| fail(format!("ack body: {e}")))?;
        let done = Instant::now();
        let ok = v["results"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["acked"] == true)
            .count();
        if ok != chunk.len() {
            return Err(fail(format!("ack of {} acked {ok}: {v}", chunk.len())));
        }
        st.acked(ok as u64);
        st.ack_confirmed(done);
    }
    Ok(())
}

/// Girder's queue mode: receive a batch while the previous batch's ack is in flight
/// (RabbitMQ's and NATS's consumers do not wait for their acks either; Girder answers
/// an ack only once it is fsynced, so waiting for it before the next receive would
/// measure the disk, not the broker).
async fn girder_consume(
    config: &Config,
    client: &reqwest::Client,
    base: &str,
    topic: &str,
    group: &str,
    st: &Phase,
    e2e: bool,
) -> Result<(), BrokersError> {
    let receive_url = format!("{base}/v1/topics/{topic}/groups/{group}/receive");
    let ack_url = format!("{base}/v1/topics/{topic}/groups/{group}/ack");
    let body = serde_json::json!({"max_messages": config.batch, "visibility_timeout_ms": 30000,
                                  "wait_ms": 1000});
    let mut idle_since = Instant::now();
    let mut unacked: Vec<String> = Vec::new();
    while !over(st, idle_since) {
        if st.received.load(Ordering::SeqCst) >= st.total {
            // Everything is received: only the last acks are left.
            break;
        }
        let ack = girder_ack(client, &ack_url, std::mem::take(&mut unacked), st);
        let receive = async {
            let r = client
                .post(&receive_url)
                .json(&body)
                .send()
                .await
                .map_err(|e| fail(format!("receive: {e}")))?;
            let at = Instant::now();
            let at_us = now_us();
            if !r.status().is_success() {
                return Err(fail(format!("receive answered {}", r.status())));
            }
            let v: serde_json::Value = r
                .json()
                .await
                .map_err(|e| fail(format!("receive body: {e}")))?;
            Ok((at, at_us, v))
        };
        let (acked, received) = tokio::join!(ack, receive);
        acked?;
        let (at, at_us, v) = received?;
        let msgs = v["messages"].as_array().cloned().unwrap_or_default();
        if msgs.is_empty() {
            continue;
        }
        idle_since = Instant::now();
        let values: Vec<&[u8]> = msgs
            .iter()
            .map(|m| m["value"].as_str().unwrap_or("").as_bytes())
            .collect();
        st.receive(at, at_us, &values, e2e);
        unacked = msgs
            .iter()
            .filter_map(|m| m["receipt"].as_str().map(str::to_owned))
            .collect();
    }
    girder_ack(client, &ack_url, unacked, st).await
}

async fn rabbit_consume(
    config: &Config,
    args: &amqprs::connection::OpenConnectionArguments,
    queue: &str,
    st: &Phase,
    c: usize,
    e2e: bool,
) -> Result<(), BrokersError> {
    use amqprs::channel::{
        BasicAckArguments, BasicConsumeArguments, BasicQosArguments, QueueDeclareArguments,
    };
    let conn = amqprs::connection::Connection::open(args)
        .await
        .map_err(|e| fail(format!("amqp connect: {e}")))?;
    let ch = conn
        .open_channel(None)
        .await
        .map_err(|e| fail(format!("amqp channel: {e}")))?;
    let prefetch = u16::try_from(config.batch).unwrap_or(u16::MAX);
    ch.basic_qos(BasicQosArguments::new(0, prefetch, false))
        .await
        .map_err(|e| fail(format!("basic.qos: {e}")))?;
    let (tag, mut rx) = ch
        .basic_consume_rx(
            BasicConsumeArguments::new(queue, &format!("bench-{c}"))
                .manual_ack(true)
                .finish(),
        )
        .await
        .map_err(|e| fail(format!("basic.consume: {e}")))?;
    let mut done_rx = st.done.subscribe();
    let mut unacked: u64 = 0;
    let mut last_tag = 0u64;
    let mut idle_since = Instant::now();
    let round_trip = || {
        ch.queue_declare(
            QueueDeclareArguments::new(queue)
                .passive(true)
                .durable(true)
                .finish(),
        )
    };
    loop {
        if over(st, idle_since) {
            break;
        }
        let flush = *done_rx.borrow_and_update();
        if !flush {
            let got = tokio::select! {
                m = rx.recv() => m,
                _ = done_rx.changed() => None,
                _ = tokio::time::sleep(Duration::from_millis(500)) => None,
            };
            if let Some(m) = got {
                let at = Instant::now();
                let at_us = now_us();
                idle_since = at;
                let body = m.content.unwrap_or_default();
                st.receive(at, at_us, &[&body[..]], e2e);
                last_tag = m.deliver.map_or(0, |d| d.delivery_tag());
                unacked += 1;
                if unacked < config.batch as u64 {
                    continue;
                }
            } else if !*done_rx.borrow() {
                continue;
            }
        }
        if unacked > 0 {
            ch.basic_ack(BasicAckArguments::new(last_tag, true))
                .await
                .map_err(|e| fail(format!("basic.ack: {e}")))?;
            let completed = st.acked(unacked);
            unacked = 0;
            if completed {
                round_trip()
                    .await
                    .map_err(|e| fail(format!("queue.declare passive: {e}")))?;
                st.ack_confirmed(Instant::now());
            }
        } else if flush {
            // Nothing of ours left to ack; wait for the others (or more messages).
            tokio::select! {
                m = rx.recv() => {
                    if let Some(m) = m {
                        let at = Instant::now();
                        idle_since = at;
                        let body = m.content.unwrap_or_default();
                        st.receive(at, now_us(), &[&body[..]], e2e);
                        last_tag = m.deliver.map_or(0, |d| d.delivery_tag());
                        unacked += 1;
                    }
                }
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    }
    let _ = ch
        .basic_cancel(amqprs::channel::BasicCancelArguments::new(&tag))
        .await;
    let _ = round_trip().await;
    let _ = ch.close().await;
    let _ = conn.close().await;
    Ok(())
}

async fn nats_consume(
    config: &Config,
    client: &async_nats::Client,
    consumer: &NatsConsumer,
    st: &Phase,
    e2e: bool,
) -> Result<(), BrokersError> {
    let mut idle_since = Instant::now();
    while !over(st, idle_since) {
        if *st.done.borrow() && st.received.load(Ordering::SeqCst) >= st.total {
            return Ok(());
        }
        let mut batch = consumer
            .batch()
            .max_messages(config.batch)
            .expires(Duration::from_millis(500))
            .messages()
            .await
            .map_err(|e| fail(format!("fetch: {e}")))?;
        while let Some(m) = batch.next().await {
            let m = m.map_err(|e| fail(format!("fetch message: {e}")))?;
            let at = Instant::now();
            idle_since = at;
            st.receive(at, now_us(), &[&m.payload[..]], e2e);
            m.ack().await.map_err(|e| fail(format!("ack: {e}")))?;
            // Counted per message: a partial batch stays open until it expires.
            if st.acked(1) {
                // The acks went out on the shared connection before this round trip.
                client
                    .flush()
                    .await
                    .map_err(|e| fail(format!("flush: {e}")))?;
                st.ack_confirmed(Instant::now());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trip() {
        let b = payload(3, 42, 100);
        assert_eq!(b.len(), 100);
        let (ts, p, seq) = parse_payload(b.as_bytes()).unwrap();
        assert!(ts > 0);
        assert_eq!((p, seq), (3, 42));
        assert!(parse_payload(b"nonsense").is_none());
    }

    #[test]
    fn shares_add_up() {
        assert_eq!((0..4).map(|p| share(10, 4, p)).sum::<u64>(), 10);
        assert_eq!((0..3).map(|p| share(2, 3, p)).sum::<u64>(), 2);
    }

    #[test]
    fn amqp_url() {
        let a = amqp_args("amqp://guest:guest@127.0.0.1:5672/%2f").unwrap();
        assert_eq!(a.get_host(), "127.0.0.1");
        assert_eq!(a.get_port(), 5672);
        assert_eq!(a.get_virtual_host(), "/");
    }
}
