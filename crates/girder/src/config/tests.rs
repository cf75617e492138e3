use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn file(text: &str) -> tempfile_path::TempFile {
    tempfile_path::TempFile::new(text)
}

/// A file in the target's temp dir, removed on drop; avoids a tempfile dependency.
mod tempfile_path {
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicU32, Ordering};

    pub struct TempFile(pub PathBuf);

    impl TempFile {
        pub fn new(text: &str) -> Self {
            static N: AtomicU32 = AtomicU32::new(0);
            let path = std::env::temp_dir().join(format!(
                "girder-config-test-{}-{}.toml",
                std::process::id(),
                N.fetch_add(1, Ordering::SeqCst)
            ));
            std::fs::write(&path, text).unwrap();
            Self(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

fn load_err(text: &str, vars: &[(&str, &str)]) -> String {
    let f = file(text);
    Config::load(Some(&f.0), env(vars), &Overrides::default())
        .unwrap_err()
        .to_string()
}

#[test]
fn defaults_are_valid() {
    let c = Config::load(None, env(&[]), &Overrides::default()).unwrap();
    assert_eq!(c, Config::default());
    assert_eq!(c.http.addr.to_string(), "127.0.0.1:7380");
    assert_eq!(c.shutdown.grace_period, Duration::from_secs(10));
}

#[test]
fn the_example_file_documents_exactly_the_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../girder.example.toml");
    let c = Config::load(Some(&path), env(&[]), &Overrides::default()).unwrap();
    assert_eq!(c, Config::default());
    // Every setting is written out (an omitted section would still load as defaults).
    let written: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
    let defaults = toml::Table::try_from(Config::default()).unwrap();
    fn keys(table: &toml::Table, prefix: &str, out: &mut Vec<String>) {
        for (k, v) in table {
            let path = format!("{prefix}{k}");
            match v.as_table() {
                Some(t) => keys(t, &format!("{path}."), out),
                None => out.push(path),
            }
        }
    }
    let (mut a, mut b) = (Vec::new(), Vec::new());
    keys(&written, "", &mut a);
    keys(&defaults, "", &mut b);
    a.sort();
    b.sort();
    assert_eq!(a, b, "girder.example.toml must list every setting");
}

#[test]
fn file_then_environment_then_flags() {
    let f = file("node_id = 1\n[http]\naddr = \"127.0.0.1:1000\"\nbody_limit = 10\n[log]\nlevel = \"debug\"\n");
    let c = Config::load(
        Some(&f.0),
        env(&[
            ("GIRDER_NODE_ID", "2"),
            ("GIRDER_HTTP__ADDR", "127.0.0.1:2000"),
            ("GIRDER_SHUTDOWN__GRACE_PERIOD", "30s"),
            ("GIRDER_DATA_DIR", "2024"),
            ("OTHER_VAR", "ignored"),
        ]),
        &Overrides {
            http_addr: Some("127.0.0.1:3000".into()),
            log_format: Some(LogFormat::Json),
            ..Overrides::default()
        },
    )
    .unwrap();
    assert_eq!(c.node_id, 2, "environment beats file");
    assert_eq!(c.http.addr.port(), 3000, "flag beats environment");
    assert_eq!(c.http.body_limit, 10, "file beats default");
    assert_eq!(c.log.level, "debug");
    assert_eq!(c.log.format, LogFormat::Json);
    assert_eq!(c.shutdown.grace_period, Duration::from_secs(30));
    assert_eq!(
        c.data_dir,
        PathBuf::from("2024"),
        "string keys stay strings"
    );
}

#[test]
fn errors_name_the_dotted_key_and_the_range() {
    assert_eq!(
        load_err("node_id = 2000", &[]),
        "invalid configuration: node_id must be between 0 and 1023 (got 2000)"
    );
    let e = load_err("[http]\naddr = \"nowhere\"", &[]);
    assert!(
        e.contains("http.addr: invalid socket address syntax"),
        "{e}"
    );
    assert!(e.contains("girder-config-test"), "names the file: {e}");
    let e = load_err("[http]\nbody_limt = 5", &[]);
    assert!(
        e.contains(
            "http.body_limt: unknown field `body_limt`, expected one of `addr`, `body_limit`"
        ),
        "{e}"
    );
    let e = load_err("[shutdown]\ngrace_period = \"0s\"", &[]);
    assert!(
        e.contains("shutdown.grace_period must be between 1ms and 1h (got 0s)"),
        "{e}"
    );
    let e = load_err("[shutdown]\ngrace_period = \"soon\"", &[]);
    assert!(e.contains("shutdown.grace_period:"), "{e}");
    let e = load_err("", &[("GIRDER_HTTP__BODY_LIMIT", "0")]);
    assert!(
        e.contains("http.body_limit must be between 1 and 1073741824 bytes (got 0)"),
        "{e}"
    );
    let e = load_err("", &[("GIRDER_NODE_ID", "-1")]);
    assert!(e.contains("node_id:"), "{e}");
    assert!(e.contains("GIRDER_NODE_ID"), "names the variable: {e}");
    let e = load_err("[http]\nmax_connections = 0", &[]);
    assert!(
        e.contains("http.max_connections must be between 1 and 1000000 (got 0)"),
        "{e}"
    );
    let e = load_err("[http]\nheader_read_timeout = \"1ms\"", &[]);
    assert!(
        e.contains("http.header_read_timeout must be between 100ms and 1h (got 1ms)"),
        "{e}"
    );
    let e = load_err("[otlp]\nendpoint = \"collector:4318\"", &[]);
    assert!(
        e.contains("otlp.endpoint must be an http:// or https:// URL"),
        "{e}"
    );
    for bad in [
        "verbose",
        "info,girder=[",
        "warning",
        " info",
        ",",
        "info, debug",
    ] {
        let e = load_err(&format!("[log]\nlevel = {bad:?}"), &[]);
        assert!(e.contains("log.level must be one of off, error"), "{e}");
    }
    let e = load_err("[ids]\nepoch = \"2999-01-01T00:00:00Z\"", &[]);
    assert!(e.contains("ids.epoch must be between"), "{e}");
    let e = load_err("node_id = ", &[]);
    assert!(
        e.contains("girder-config-test"),
        "syntax errors name the file: {e}"
    );
}

#[test]
fn rate_limit_settings_are_checked_when_enabled() {
    let ok = file("[http.rate_limit]\nenabled = true\nlimit = 5\nperiod = \"10s\"\nkey = \"header:X-Api-Key\"\n");
    let c = Config::load(Some(&ok.0), env(&[]), &Overrides::default()).unwrap();
    let options = c.http.rate_limit.options().unwrap().unwrap();
    assert_eq!(options.quota.burst, 5, "burst 0 means limit");
    for (text, message) in [
        (
            "key = \"cookie\"",
            "http.rate_limit.key must be \"ip\" or \"header:<Name>\"",
        ),
        ("key = \"header:bad name\"", "http.rate_limit.key must be"),
        (
            "algorithm = \"leaky\"",
            "http.rate_limit.algorithm must be one of gcra",
        ),
        ("limit = 0", "http.rate_limit.limit must be between 1"),
        (
            "period = \"0s\"",
            "http.rate_limit.period must be between 1ms and 24h",
        ),
        ("max_keys = 0", "http.rate_limit.max_keys must be between 1"),
    ] {
        let e = load_err(&format!("[http.rate_limit]\nenabled = true\n{text}\n"), &[]);
        assert!(e.contains(message), "{text}: {e}");
    }
    // Disabled: the other values are not checked, so they can be prepared in advance.
    let off = file("[http.rate_limit]\nenabled = false\nkey = \"cookie\"\n");
    assert!(Config::load(Some(&off.0), env(&[]), &Overrides::default()).is_ok());
}

#[test]
fn oversized_files_are_refused_without_reading_them_whole() {
    let f = file(&"# padding\n".repeat(200_000));
    let e = Config::load(Some(&f.0), env(&[]), &Overrides::default()).unwrap_err();
    assert!(e.to_string().contains("larger than 1048576 bytes"), "{e}");
}

#[test]
fn flag_errors_name_the_key() {
    let e = Config::load(
        None,
        env(&[]),
        &Overrides {
            node_id: Some(5000),
            ..Overrides::default()
        },
    )
    .unwrap_err();
    assert_eq!(e.message, "node_id must be between 0 and 1023 (got 5000)");
}

#[test]
fn printed_config_loads_back_to_the_same() {
    let mut c = Config {
        node_id: 9,
        ..Config::default()
    };
    c.otlp.endpoint = Some("http://127.0.0.1:4318".into());
    c.shutdown.drain_delay = Duration::from_millis(1500);
    let f = file(&c.to_toml());
    let back = Config::load(Some(&f.0), env(&[]), &Overrides::default()).unwrap();
    assert_eq!(back, c);
}

#[test]
fn id_config_follows_the_settings() {
    let mut c = Config {
        node_id: 17,
        ..Config::default()
    };
    c.ids.max_clock_regression = Duration::from_secs(2);
    let ids = c.id_config();
    assert_eq!(ids.node_id, 17);
    assert_eq!(ids.epoch_ms, girder_id::DEFAULT_EPOCH_MS);
    assert_eq!(ids.max_clock_regression_ms, 2000);
}

#[test]
fn notify_keyspace_events_is_checked_as_redis_parses_it() {
    let f = file("[resp]\nnotify_keyspace_events = \"KEA\"\n");
    let c = Config::load(Some(&f.0), env(&[]), &Overrides::default()).unwrap();
    assert_eq!(c.resp.notify_keyspace_events, "KEA");
    assert_eq!(
        load_err("[resp]\nnotify_keyspace_events = \"KEQ\"", &[]),
        "invalid configuration: resp.notify_keyspace_events must be made of the characters Ag$lshzxeKEtmdn (got \"KEQ\")"
    );
}

#[test]
fn scheduler_settings_are_checked() {
    let e = load_err("[scheduler]\ndefault_lease = \"0s\"", &[]);
    assert!(
        e.contains("scheduler.default_lease must be between 1ms and 1day (got 0s)"),
        "{e}"
    );
    let e = load_err("[scheduler]\ndefault_max_attempts = 0", &[]);
    assert!(
        e.contains("scheduler.default_max_attempts must be between 1 and 1000 (got 0)"),
        "{e}"
    );
    let e = load_err("[scheduler]\nmisfire_threshold = \"2h\"", &[]);
    assert!(
        e.contains("scheduler.misfire_threshold must be between"),
        "{e}"
    );
    let e = load_err("[scheduler]\nstore = \"mysql://db/girder\"", &[]);
    assert!(
        e.contains(
            "scheduler.store must be empty (the embedded SQLite store) or a postgres:// URL"
        ),
        "{e}"
    );
    let e = load_err("[scheduler.concurrency]\nemails = 0", &[]);
    assert!(
        e.contains("scheduler.concurrency.emails must be at least 1"),
        "{e}"
    );
    let e = load_err(
        "[scheduler.rate_limits]\nemails = { limit = 0, period = \"1s\" }",
        &[],
    );
    assert!(
        e.contains("scheduler.rate_limits.emails must have limit"),
        "{e}"
    );
    let e = load_err("", &[("GIRDER_SCHEDULER__RETENTION", "0s")]);
    assert!(e.contains("scheduler.retention must be between 1s"), "{e}");
}
