//! Write-behind: coalescing, batching, the queue bound under both policies,
//! flush, shutdown and the drop guard.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use girder_cache::{Cache, CacheConfig, Error, WhenFull, WriteBehind, WriteBehindConfig};
use tokio::sync::Semaphore;

type Store = Arc<Mutex<HashMap<u32, u64>>>;
type Wb = WriteBehind<u32, u64, String>;

fn cache() -> Cache<u32, u64, String> {
    Cache::new(CacheConfig::default()).expect("valid")
}

/// A writer that applies batches to `store`, optionally waiting for one
/// `gate` permit per batch, and records each batch's size.
fn writer(
    store: &Store,
    gate: Option<Arc<Semaphore>>,
    sizes: &Arc<Mutex<Vec<usize>>>,
) -> impl Fn(Vec<(u32, u64)>) -> futures_util::future::BoxFuture<'static, Result<(), String>>
       + Send
       + Sync
       + 'static {
    let (store, sizes) = (store.clone(), sizes.clone());
    move |batch| {
        let (store, sizes, gate) = (store.clone(), sizes.clone(), gate.clone());
        async move {
            if let Some(gate) = gate {
                gate.acquire().await.expect("open").forget();
            }
            sizes.lock().unwrap().push(batch.len());
            store.lock().unwrap().extend(batch);
            Ok(())
        }
        .boxed()
    }
}

#[tokio::test]
async fn shutdown_flushes_everything_coalesced_and_batched() {
    let store = Store::default();
    let sizes = Arc::new(Mutex::new(Vec::new()));
    let cache = cache();
    let wb: Wb = WriteBehind::new(
        cache.clone(),
        WriteBehindConfig {
            capacity: 100,
            max_batch: 8,
            when_full: WhenFull::Reject,
        },
        writer(&store, None, &sizes),
    )
    .unwrap();
    // On a current-thread runtime the worker cannot run until we yield, so
    // all 50 writes land in the queue first: 20 distinct keys, latest wins.
    for i in 0..50u64 {
        wb.write((i % 20) as u32, i).await.unwrap();
    }
    assert_eq!(wb.stats().queued, 20);
    assert_eq!(cache.get_if_fresh(&3), Some(43), "cache updated at once");
    let stats = wb.shutdown().await;
    assert_eq!(stats.written, 20);
    assert_eq!(stats.queued, 0);
    assert_eq!(*sizes.lock().unwrap(), vec![8, 8, 4]);
    let store = store.lock().unwrap();
    assert_eq!(store.len(), 20);
    for k in 0..20u32 {
        // The last i < 50 with i % 20 == k.
        let latest = if k < 10 { k + 40 } else { k + 20 };
        assert_eq!(store[&k], u64::from(latest), "latest value of key {k}");
    }
}

#[tokio::test]
async fn reject_policy_respects_the_bound_and_coalesces_waiting_keys() {
    let store = Store::default();
    let sizes = Arc::new(Mutex::new(Vec::new()));
    let gate = Arc::new(Semaphore::new(0));
    let wb: Wb = WriteBehind::new(
        cache(),
        WriteBehindConfig {
            capacity: 4,
            max_batch: 2,
            when_full: WhenFull::Reject,
        },
        writer(&store, Some(gate.clone()), &sizes),
    )
    .unwrap();
    for k in 0..4 {
        wb.write(k, 1).await.unwrap();
    }
    assert!(matches!(wb.write(4, 1).await, Err(Error::QueueFull)));
    // A waiting key is replaced in place and needs no room.
    wb.write(0, 2).await.unwrap();
    // Let the worker take a batch (keys 0, 1): those still count as queued.
    tokio::task::yield_now().await;
    assert_eq!(wb.stats().queued, 4);
    assert!(
        matches!(wb.write(0, 3).await, Err(Error::QueueFull)),
        "0 is being written, not waiting"
    );

    gate.add_permits(10);
    wb.flush().await;
    assert_eq!(wb.stats().queued, 0);
    wb.write(4, 1).await.unwrap();
    let stats = wb.shutdown().await;
    assert_eq!(stats.written, 5);
    assert_eq!(store.lock().unwrap()[&0], 2);
    assert!(
        sizes.lock().unwrap().iter().all(|&n| n <= 2),
        "max_batch respected"
    );
}

#[tokio::test]
async fn wait_policy_applies_backpressure_until_room_frees() {
    let store = Store::default();
    let sizes = Arc::new(Mutex::new(Vec::new()));
    let gate = Arc::new(Semaphore::new(0));
    let wb: Wb = WriteBehind::new(
        cache(),
        WriteBehindConfig {
            capacity: 2,
            max_batch: 2,
            when_full: WhenFull::Wait,
        },
        writer(&store, Some(gate.clone()), &sizes),
    )
    .unwrap();
    wb.write(1, 1).await.unwrap();
    wb.write(2, 2).await.unwrap();
    let mut third = Box::pin(wb.write(3, 3));
    for _ in 0..10 {
        assert!((&mut third).now_or_never().is_none(), "must wait for room");
        tokio::task::yield_now().await;
        assert!(wb.stats().queued <= 2, "bound exceeded");
    }
    gate.add_permits(10);
    tokio::time::timeout(Duration::from_secs(20), third)
        .await
        .expect("room freed")
        .unwrap();
    let stats = wb.shutdown().await;
    assert_eq!(stats.written, 3);
    assert_eq!(store.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn dropping_the_queue_is_a_guard_that_still_drains() {
    let store = Store::default();
    let sizes = Arc::new(Mutex::new(Vec::new()));
    let wb: Wb = WriteBehind::new(
        cache(),
        WriteBehindConfig::default(),
        writer(&store, None, &sizes),
    )
    .unwrap();
    for k in 0..3 {
        wb.write(k, 7).await.unwrap();
    }
    drop(wb);
    tokio::time::timeout(Duration::from_secs(20), async {
        while store.lock().unwrap().len() < 3 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("drained after drop");
}

#[tokio::test]
async fn failed_and_panicking_batches_are_counted_and_do_not_stop_the_worker() {
    let calls = Arc::new(Mutex::new(0u32));
    let c = calls.clone();
    let wb: Wb = WriteBehind::new(
        cache(),
        WriteBehindConfig {
            capacity: 10,
            max_batch: 1,
            when_full: WhenFull::Wait,
        },
        move |batch: Vec<(u32, u64)>| {
            let n = {
                let mut c = c.lock().unwrap();
                *c += 1;
                *c
            };
            async move {
                match n {
                    1 => Err(format!("store rejected {}", batch[0].0)),
                    2 => panic!("writer bug"),
                    _ => Ok(()),
                }
            }
        },
    )
    .unwrap();
    for k in 0..3 {
        wb.write(k, 1).await.unwrap();
    }
    wb.flush().await;
    let stats = wb.stats();
    assert_eq!((stats.written, stats.failed, stats.batches), (1, 2, 3));
    assert_eq!(
        wb.last_error().as_deref().map(String::as_str),
        Some("store rejected 0")
    );
    wb.write(9, 1).await.unwrap();
    let stats = wb.shutdown().await;
    assert_eq!(stats.written, 2);
}

#[tokio::test]
async fn shutdown_refuses_new_and_blocked_writes_but_writes_what_was_queued() {
    let store = Store::default();
    let sizes = Arc::new(Mutex::new(Vec::new()));
    let gate = Arc::new(Semaphore::new(0));
    let wb: Arc<Wb> = Arc::new(
        WriteBehind::new(
            cache(),
            WriteBehindConfig {
                capacity: 1,
                max_batch: 1,
                when_full: WhenFull::Wait,
            },
            writer(&store, Some(gate.clone()), &sizes),
        )
        .unwrap(),
    );
    wb.write(1, 1).await.unwrap();
    let blocked = {
        let wb = wb.clone();
        tokio::spawn(async move { wb.write(2, 2).await })
    };
    tokio::task::yield_now().await;
    let shutdown = {
        let wb = wb.clone();
        tokio::spawn(async move { wb.shutdown().await })
    };
    let refused = tokio::time::timeout(Duration::from_secs(20), blocked)
        .await
        .expect("blocked writer released")
        .unwrap();
    assert!(matches!(refused, Err(Error::Closed)), "{refused:?}");
    assert!(matches!(wb.write(3, 3).await, Err(Error::Closed)));
    gate.add_permits(10);
    let stats = tokio::time::timeout(Duration::from_secs(20), shutdown)
        .await
        .expect("shutdown finished")
        .unwrap();
    assert_eq!((stats.written, stats.queued), (1, 0));
    assert_eq!(*store.lock().unwrap(), HashMap::from([(1, 1)]));
}
