//! Freshness policy on virtual time: XFetch early recomputation, stale-while-
//! revalidate, stale-if-error, negative caching and write-through.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use girder_cache::{Cache, CacheConfig, CacheStats, Error, ManualClock, TokioClock};
use tokio::sync::Semaphore;

const TTL: Duration = Duration::from_secs(1);
const LOAD_TIME: Duration = Duration::from_millis(50);
const READ_EVERY: Duration = Duration::from_millis(10); // 100 readers / s

/// Simulates 100 readers per virtual second for `seconds`, each a separate
/// task, against a loader that takes `LOAD_TIME` of virtual time. Returns
/// the stats at the end of warm-up (2 s) and at the end.
async fn simulate_readers(beta: f64, seconds: u64) -> (CacheStats, CacheStats, u64) {
    let cache: Cache<u32, Arc<u64>, String> = Cache::with_clock(
        CacheConfig {
            ttl: TTL,
            beta,
            seed: Some(0x5EED),
            ..CacheConfig::default()
        },
        TokioClock,
    )
    .expect("valid config");
    let loads = Arc::new(AtomicU64::new(0));
    let readers = seconds * 1000 / READ_EVERY.as_millis() as u64;
    let warm_up = 2000 / READ_EVERY.as_millis() as u64;
    let mut after_warm_up = CacheStats::default();
    let mut tasks = Vec::with_capacity(readers as usize);
    for i in 0..readers {
        if i == warm_up {
            after_warm_up = cache.stats();
        }
        let (cache, loads) = (cache.clone(), loads.clone());
        tasks.push(tokio::spawn(async move {
            cache
                .get_or_load(&1, move || async move {
                    tokio::time::sleep(LOAD_TIME).await;
                    Ok(Arc::new(loads.fetch_add(1, Ordering::SeqCst)))
                })
                .await
                .expect("loader never fails here")
        }));
        tokio::time::sleep(READ_EVERY).await;
    }
    for t in tasks {
        t.await.expect("reader");
    }
    (after_warm_up, cache.stats(), loads.load(Ordering::SeqCst))
}

#[tokio::test(start_paused = true)]
async fn xfetch_refreshes_before_expiry_so_no_reader_blocks_after_warm_up() {
    let seconds = 200;
    // beta = 3: with 100 reads/s and delta = 50 ms, the chance that no read
    // triggers early enough to finish before expiry is ~1e-5 per TTL cycle
    // (the paper's beta = 1 leaves ~15% of cycles with a late refresh).
    let (warm, end, loads) = simulate_readers(3.0, seconds).await;
    println!("beta=3 over {seconds} s: {end:?}; warm-up: {warm:?}");
    assert_eq!(
        end.misses - warm.misses,
        0,
        "blocking loads after warm-up: {end:?}"
    );
    assert_eq!(
        end.waits - warm.waits,
        0,
        "readers that waited after warm-up: {end:?}"
    );
    // Each refresh restarts the TTL early. With r reads/s the first trigger
    // comes about delta*beta*ln(r*delta*beta) ~ 0.41 s before expiry, so a
    // cycle lasts ~0.6 s: more refreshes than `seconds`, but never a storm
    // (at most two per TTL).
    let refreshes = end.early_refreshes - warm.early_refreshes;
    assert!(
        (seconds..=seconds * 2).contains(&refreshes),
        "early refreshes {refreshes} over {seconds} TTL cycles"
    );
    assert_eq!(loads, end.loads);
}

#[tokio::test(start_paused = true)]
async fn without_xfetch_every_expiry_blocks_readers() {
    // Control for the test above: beta = 0 turns early recomputation off,
    // and the same workload blocks readers at (nearly) every expiry.
    let seconds = 50;
    let (warm, end, _) = simulate_readers(0.0, seconds).await;
    assert_eq!(end.early_refreshes, 0);
    let blocked = (end.misses - warm.misses) + (end.waits - warm.waits);
    println!("beta=0 over {seconds} s: {end:?}; blocked after warm-up: {blocked}");
    assert!(blocked >= (seconds - 3) * 4, "blocked readers {blocked}");
}

type TestCache = Cache<&'static str, Arc<u64>, String>;

fn manual(config: CacheConfig) -> (TestCache, ManualClock) {
    let clock = ManualClock::new();
    (
        Cache::with_clock(config, clock.clone()).expect("valid"),
        clock,
    )
}

fn counting_loader(
    calls: &Arc<AtomicUsize>,
    result: Result<u64, &'static str>,
) -> impl FnOnce() -> std::future::Ready<Result<Arc<u64>, String>> + Send + 'static {
    let calls = calls.clone();
    move || {
        calls.fetch_add(1, Ordering::SeqCst);
        std::future::ready(result.map(Arc::new).map_err(str::to_string))
    }
}

#[tokio::test]
async fn stale_is_served_while_the_loader_is_failing() {
    let (cache, clock) = manual(CacheConfig {
        ttl: Duration::from_secs(10),
        stale_if_error: Duration::from_secs(60),
        seed: Some(3),
        ..CacheConfig::default()
    });
    let calls = Arc::new(AtomicUsize::new(0));
    let v = cache
        .get_or_load(&"k", counting_loader(&calls, Ok(1)))
        .await
        .unwrap();
    assert_eq!(*v, 1);

    // Expired, loader failing: every call tries (no negative cache) and gets
    // the old value.
    clock.advance(Duration::from_secs(11));
    for _ in 0..3 {
        let v = cache
            .get_or_load(&"k", counting_loader(&calls, Err("down")))
            .await;
        assert_eq!(*v.expect("stale served"), 1);
        clock.advance(Duration::from_secs(10));
    }
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    assert_eq!(cache.stats().stale_served, 3);

    // Now at t = 41 s, 31 s past expiry; at t = 71 s, 61 s past expiry, the
    // stale-if-error window (60 s) is over and the error shows.
    clock.advance(Duration::from_secs(30));
    let r = cache
        .get_or_load(&"k", counting_loader(&calls, Err("down")))
        .await;
    assert!(
        matches!(r, Err(Error::Load(ref e)) if **e == "down"),
        "{r:?}"
    );

    // Recovery.
    let v = cache
        .get_or_load(&"k", counting_loader(&calls, Ok(2)))
        .await
        .unwrap();
    assert_eq!(*v, 2);
}

#[tokio::test]
async fn negative_caching_holds_loads_off_for_its_ttl() {
    let (cache, clock) = manual(CacheConfig {
        ttl: Duration::from_secs(10),
        negative_ttl: Duration::from_secs(2),
        seed: Some(4),
        ..CacheConfig::default()
    });
    let calls = Arc::new(AtomicUsize::new(0));
    let first = cache
        .get_or_load(&"missing", counting_loader(&calls, Err("not found")))
        .await;
    let Err(Error::Load(first)) = first else {
        panic!("expected error")
    };
    for _ in 0..5 {
        clock.advance(Duration::from_millis(300));
        let r = cache
            .get_or_load(&"missing", counting_loader(&calls, Ok(1)))
            .await;
        let Err(Error::Load(e)) = r else {
            panic!("expected cached error, got {r:?}")
        };
        assert!(Arc::ptr_eq(&e, &first), "the cached error is shared");
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "held off while negative-cached"
    );
    assert_eq!(cache.stats().negative_hits, 5);

    clock.advance(Duration::from_millis(600)); // 2.1 s after the failure
    let v = cache
        .get_or_load(&"missing", counting_loader(&calls, Ok(1)))
        .await
        .unwrap();
    assert_eq!(*v, 1);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn negative_caching_with_stale_if_error_serves_stale_without_reloading() {
    let (cache, clock) = manual(CacheConfig {
        ttl: Duration::from_secs(10),
        negative_ttl: Duration::from_secs(5),
        stale_if_error: Duration::from_secs(60),
        seed: Some(5),
        ..CacheConfig::default()
    });
    let calls = Arc::new(AtomicUsize::new(0));
    cache
        .get_or_load(&"k", counting_loader(&calls, Ok(7)))
        .await
        .unwrap();
    clock.advance(Duration::from_secs(11));
    for _ in 0..10 {
        let v = cache
            .get_or_load(&"k", counting_loader(&calls, Err("down")))
            .await;
        assert_eq!(*v.expect("stale"), 7);
        clock.advance(Duration::from_millis(100));
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "one failed load, then held off"
    );
}

#[tokio::test]
async fn stale_while_revalidate_serves_old_value_and_refreshes_once_in_background() {
    let (cache, clock) = manual(CacheConfig {
        ttl: Duration::from_secs(10),
        stale_while_revalidate: Duration::from_secs(5),
        seed: Some(6),
        ..CacheConfig::default()
    });
    cache.insert("k", Arc::new(1));
    clock.advance(Duration::from_secs(12));

    let calls = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Semaphore::new(0));
    let slow = |calls: &Arc<AtomicUsize>, gate: &Arc<Semaphore>| {
        let (calls, gate) = (calls.clone(), gate.clone());
        move || async move {
            calls.fetch_add(1, Ordering::SeqCst);
            gate.acquire().await.expect("open").forget();
            Ok(Arc::new(2))
        }
    };
    // Every read returns the old value at once; only one refresh starts.
    for _ in 0..20 {
        let v = cache.get_or_load(&"k", slow(&calls, &gate)).await.unwrap();
        assert_eq!(*v, 1);
        tokio::task::yield_now().await;
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(cache.stats().background_refreshes, 1);
    assert_eq!(cache.in_flight(), 1);

    gate.add_permits(1);
    while cache.in_flight() > 0 {
        tokio::task::yield_now().await;
    }
    assert_eq!(cache.get_if_fresh(&"k").as_deref(), Some(&2));

    // Beyond the window a reader blocks on the load instead.
    clock.advance(Duration::from_secs(16));
    let v = cache
        .get_or_load(&"k", || async { Ok(Arc::new(3)) })
        .await
        .unwrap();
    assert_eq!(*v, 3);
}

#[tokio::test]
async fn fresh_hits_do_not_call_the_loader_and_expiry_follows_the_clock() {
    let (cache, clock) = manual(CacheConfig {
        ttl: Duration::from_secs(10),
        seed: Some(7),
        ..CacheConfig::default()
    });
    let calls = Arc::new(AtomicUsize::new(0));
    for _ in 0..5 {
        cache
            .get_or_load(&"k", counting_loader(&calls, Ok(1)))
            .await
            .unwrap();
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    clock.advance(Duration::from_millis(9_999));
    assert!(cache.get_if_fresh(&"k").is_some());
    clock.advance(Duration::from_millis(1));
    assert!(cache.get_if_fresh(&"k").is_none(), "expires exactly at ttl");
    cache
        .get_or_load(&"k", counting_loader(&calls, Ok(1)))
        .await
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn write_through_updates_cache_only_after_the_writer_succeeds() {
    let (cache, _clock) = manual(CacheConfig::default());
    let store = Arc::new(std::sync::Mutex::new(Vec::new()));
    let s = store.clone();
    cache
        .write_through("k", Arc::new(1), move |k, v| async move {
            s.lock().unwrap().push((k, *v));
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(cache.get_if_fresh(&"k").as_deref(), Some(&1));
    assert_eq!(*store.lock().unwrap(), vec![("k", 1)]);

    let r = cache
        .write_through("k", Arc::new(2), |_, _| async {
            Err("disk full".to_string())
        })
        .await;
    assert!(matches!(r, Err(Error::Write(ref e)) if e == "disk full"));
    assert_eq!(
        cache.get_if_fresh(&"k").as_deref(),
        Some(&1),
        "cache unchanged"
    );
}

#[test]
fn invalid_config_is_rejected_with_the_field_named() {
    let bad = CacheConfig {
        beta: -1.0,
        ..CacheConfig::default()
    };
    let r: Result<TestCache, _> = Cache::new(bad);
    assert!(matches!(r, Err(Error::InvalidConfig(m)) if m.contains("beta")));
}

#[tokio::test(start_paused = true)]
async fn xfetch_with_default_beta_blocks_far_less_than_no_xfetch() {
    // The paper's beta = 1 at 100 reads/s and delta = 50 ms: the chance per
    // cycle that no read fires early enough (>= delta before expiry) is
    // ~13%, so some readers still wait, briefly, on a refresh started late.
    // Without XFetch the same workload blocks >= 4 readers every cycle.
    let seconds = 200;
    let (warm, end, _) = simulate_readers(CacheConfig::default().beta, seconds).await;
    let blocked = (end.misses - warm.misses) + (end.waits - warm.waits);
    println!("beta=1 over {seconds} s: {end:?}; blocked after warm-up: {blocked}");
    assert!(blocked < seconds / 2, "blocked readers {blocked}");
}

#[tokio::test]
async fn failed_background_refresh_keeps_serving_stale_within_the_swr_window() {
    let (cache, clock) = manual(CacheConfig {
        ttl: Duration::from_secs(10),
        stale_while_revalidate: Duration::from_secs(30),
        negative_ttl: Duration::from_secs(5),
        seed: Some(8),
        ..CacheConfig::default()
    });
    cache.insert("k", Arc::new(1));
    clock.advance(Duration::from_secs(11));
    let calls = Arc::new(AtomicUsize::new(0));
    let v = cache
        .get_or_load(&"k", counting_loader(&calls, Err("down")))
        .await;
    assert_eq!(*v.unwrap(), 1);
    while cache.in_flight() > 0 || calls.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    // The refresh failed and is negatively cached: stale, no new refresh.
    for _ in 0..5 {
        let v = cache
            .get_or_load(&"k", counting_loader(&calls, Err("down")))
            .await;
        assert_eq!(*v.unwrap(), 1);
        clock.advance(Duration::from_millis(500));
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // After the negative TTL a new background refresh is tried.
    clock.advance(Duration::from_secs(3));
    let v = cache
        .get_or_load(&"k", counting_loader(&calls, Ok(2)))
        .await;
    assert_eq!(*v.unwrap(), 1, "still stale while it refreshes");
    while cache.in_flight() > 0 {
        tokio::task::yield_now().await;
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(cache.get_if_fresh(&"k").as_deref(), Some(&2));
}
