//! Logging and tracing: `tracing` to stderr as text or JSON, and OpenTelemetry span export
//! over OTLP/HTTP when an endpoint is configured.

use crate::config::{LogConfig, LogFormat, OtlpConfig};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Keeps the exporter alive; [`Telemetry::shutdown`] flushes spans still buffered.
#[derive(Debug)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Flushes and stops the span exporter, if one runs. Blocks: call it outside the async
    /// runtime (the OTLP client is a blocking one).
    pub fn shutdown(self) {
        if let Some(provider) = self.provider {
            if let Err(e) = provider.shutdown() {
                eprintln!("girder: flushing spans at exit failed: {e}");
            }
        }
    }
}

/// The URL spans are POSTed to: the endpoint itself when it has a path, else `/v1/traces`
/// under it (as OTEL_EXPORTER_OTLP_ENDPOINT is interpreted).
pub fn traces_url(endpoint: &str) -> String {
    let after_scheme = endpoint
        .split_once("://")
        .map_or(endpoint, |(_, rest)| rest);
    match after_scheme.find('/') {
        Some(i) if after_scheme.len() > i + 1 => endpoint.to_owned(),
        _ => format!("{}/v1/traces", endpoint.trim_end_matches('/')),
    }
}

/// Installs the global subscriber. Call once, outside the async runtime.
///
/// # Errors
/// When the log filter does not parse or the OTLP exporter cannot be built.
pub fn init(log: &LogConfig, otlp: &OtlpConfig) -> anyhow::Result<Telemetry> {
    let filter = EnvFilter::builder().parse(&log.level)?;
    let fmt = match log.format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let (otel, provider) = match &otlp.endpoint {
        None => (None, None),
        Some(endpoint) => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_endpoint(traces_url(endpoint))
                .build()?;
            let provider = SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(
                    Resource::builder()
                        .with_service_name(otlp.service_name.clone())
                        .build(),
                )
                .build();
            opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
            let tracer = provider.tracer("girder");
            (
                Some(tracing_opentelemetry::layer().with_tracer(tracer)),
                Some(provider),
            )
        }
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init()?;
    Ok(Telemetry { provider })
}

#[cfg(test)]
mod tests {
    use super::traces_url;

    #[test]
    fn traces_url_appends_the_signal_path_only_to_bare_endpoints() {
        assert_eq!(traces_url("http://c:4318"), "http://c:4318/v1/traces");
        assert_eq!(traces_url("http://c:4318/"), "http://c:4318/v1/traces");
        assert_eq!(
            traces_url("https://c/otlp/v1/traces"),
            "https://c/otlp/v1/traces"
        );
    }
}
