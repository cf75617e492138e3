//! Single-flight: one loader call per key at a time, shared results and
//! errors, and no hung waiters or leaked in-flight entries after a loader
//! panic or a cancelled leader.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use girder_cache::{Cache, CacheConfig, Error, ManualClock};
use tokio::sync::{Barrier, Semaphore};

type TestCache = Cache<&'static str, Arc<u64>, String>;

fn cache(config: CacheConfig) -> (TestCache, ManualClock) {
    let clock = ManualClock::new();
    let cache = Cache::with_clock(config, clock.clone()).expect("valid config");
    (cache, clock)
}

fn ttl_10s() -> CacheConfig {
    CacheConfig {
        ttl: Duration::from_secs(10),
        seed: Some(1),
        ..CacheConfig::default()
    }
}

/// Guards against hangs; the code under test never sleeps on real time.
async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), fut)
        .await
        .unwrap_or_else(|_| panic!("{what} hung"))
}

async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    within(what, async {
        while !cond() {
            tokio::task::yield_now().await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thousand_concurrent_requests_for_expired_hot_key_make_one_load() {
    let (cache, clock) = cache(ttl_10s());
    cache.insert("hot", Arc::new(0));
    clock.advance(Duration::from_secs(11));
    assert!(cache.get_if_fresh(&"hot").is_none(), "must be expired");

    let calls = Arc::new(AtomicUsize::new(0));
    // The loader is held until every caller has arrived, to maximise overlap.
    let gate = Arc::new(Semaphore::new(0));
    let start = Arc::new(Barrier::new(1001));
    let mut tasks = Vec::new();
    for _ in 0..1000 {
        let (cache, calls, gate, start) =
            (cache.clone(), calls.clone(), gate.clone(), start.clone());
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            cache
                .get_or_load(&"hot", move || async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    gate.acquire().await.expect("open").forget();
                    Ok(Arc::new(1))
                })
                .await
        }));
    }
    start.wait().await;
    until("callers joining", || {
        let s = cache.stats();
        s.misses + s.waits == 1000
    })
    .await;
    assert_eq!(cache.in_flight(), 1);
    gate.add_permits(1000);
    for task in tasks {
        let value = within("caller", task)
            .await
            .expect("no panic")
            .expect("loaded");
        assert_eq!(*value, 1);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1, "exactly one loader call");
    let stats = cache.stats();
    assert_eq!((stats.misses, stats.waits, stats.loads), (1, 999, 1));
    assert_eq!(cache.in_flight(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_load_shares_one_error_and_next_call_may_load_again() {
    let (cache, _clock) = cache(ttl_10s());
    let calls = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Semaphore::new(0));
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (cache, calls, gate) = (cache.clone(), calls.clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            cache
                .get_or_load(&"k", move || async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    gate.acquire().await.expect("open").forget();
                    Err::<Arc<u64>, _>("backend down".to_string())
                })
                .await
        }));
    }
    until("callers joining", || {
        let s = cache.stats();
        s.misses + s.waits == 50
    })
    .await;
    gate.add_permits(1);
    let mut errors = Vec::new();
    for task in tasks {
        match within("caller", task).await.expect("no panic") {
            Err(Error::Load(e)) => errors.push(e),
            other => panic!("expected the shared load error, got {other:?}"),
        }
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1, "no retry storm");
    assert!(
        errors.iter().all(|e| Arc::ptr_eq(e, &errors[0])),
        "one shared error"
    );
    assert_eq!(*errors[0], "backend down");
    assert_eq!(cache.in_flight(), 0);

    // Without negative caching the next call loads again.
    let v = cache
        .get_or_load(&"k", || async { Ok(Arc::new(5)) })
        .await
        .expect("second load");
    assert_eq!(*v, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loader_panic_releases_waiters_and_the_key() {
    let (cache, _clock) = cache(ttl_10s());
    let gate = Arc::new(Semaphore::new(0));
    let waiter_loads = Arc::new(AtomicUsize::new(0));

    let leader = {
        let (cache, gate) = (cache.clone(), gate.clone());
        tokio::spawn(async move {
            cache
                .get_or_load(&"k", move || async move {
                    gate.acquire().await.expect("open").forget();
                    panic!("loader bug");
                })
                .await
        })
    };
    until("leader started", || cache.in_flight() == 1).await;
    let mut waiters = Vec::new();
    for _ in 0..10 {
        let (cache, waiter_loads) = (cache.clone(), waiter_loads.clone());
        waiters.push(tokio::spawn(async move {
            cache
                .get_or_load(&"k", move || async move {
                    waiter_loads.fetch_add(1, Ordering::SeqCst);
                    Ok(Arc::new(9))
                })
                .await
        }));
    }
    until("waiters joining", || cache.stats().waits == 10).await;
    gate.add_permits(1);

    let leader_result = within("leader", leader).await.expect("panic is contained");
    assert!(matches!(leader_result, Err(Error::LoaderPanicked)));
    for w in waiters {
        let r = within("waiter", w).await.expect("no panic");
        assert!(matches!(r, Err(Error::LoaderPanicked)), "{r:?}");
    }
    assert_eq!(
        waiter_loads.load(Ordering::SeqCst),
        0,
        "waiters do not stampede"
    );
    assert_eq!(cache.in_flight(), 0, "no leaked in-flight entry");
    assert_eq!(cache.stats().loader_panics, 1);

    let v = cache
        .get_or_load(&"k", || async { Ok(Arc::new(3)) })
        .await
        .expect("key is usable again");
    assert_eq!(*v, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_leader_hands_over_to_one_waiter() {
    let (cache, _clock) = cache(ttl_10s());
    let leader = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .get_or_load(&"k", std::future::pending::<Result<Arc<u64>, String>>)
                .await
        })
    };
    until("leader started", || cache.in_flight() == 1).await;

    let takeover_loads = Arc::new(AtomicUsize::new(0));
    let mut waiters = Vec::new();
    for _ in 0..5 {
        let (cache, takeover_loads) = (cache.clone(), takeover_loads.clone());
        waiters.push(tokio::spawn(async move {
            cache
                .get_or_load(&"k", move || async move {
                    takeover_loads.fetch_add(1, Ordering::SeqCst);
                    Ok(Arc::new(42))
                })
                .await
        }));
    }
    until("waiters joining", || cache.stats().waits == 5).await;
    // Cancellation: the leader's future is dropped mid-load.
    leader.abort();
    assert!(leader.await.expect_err("aborted").is_cancelled());

    for w in waiters {
        let v = within("waiter after leader cancel", w)
            .await
            .expect("no panic")
            .expect("a waiter took over");
        assert_eq!(*v, 42);
    }
    assert_eq!(
        takeover_loads.load(Ordering::SeqCst),
        1,
        "one waiter took over"
    );
    assert_eq!(cache.in_flight(), 0, "no leaked in-flight entry");
}

#[tokio::test]
async fn dropped_leader_future_without_waiters_leaves_no_entry() {
    let (cache, _clock) = cache(ttl_10s());
    let fut = cache.get_or_load(&"k", std::future::pending::<Result<Arc<u64>, String>>);
    // Poll once so the load starts, then drop it.
    let mut fut = Box::pin(fut);
    assert!(futures_util::FutureExt::now_or_never(&mut fut).is_none());
    assert_eq!(cache.in_flight(), 1);
    drop(fut);
    assert_eq!(cache.in_flight(), 0);
}
