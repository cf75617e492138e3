//! Bulkhead admission on paused tokio time: who runs, who waits, who is rejected.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use girder_resilience::{Bulkhead, BulkheadConfig, BulkheadLayer, BulkheadStats, Error};
use tokio::sync::oneshot;
use tower::{service_fn, Layer, Service, ServiceExt};

/// Lets spawned tasks on the current-thread runtime run until they block.
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

/// Starts a call through the bulkhead that finishes when the returned sender fires.
fn blocked_call(
    b: &Bulkhead,
) -> (
    oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<u32, Error<oneshot::error::RecvError>>>,
) {
    let (tx, rx) = oneshot::channel();
    let b = b.clone();
    let handle = tokio::spawn(async move { b.run(async move { rx.await.map(|()| 1) }).await });
    (tx, handle)
}

#[tokio::test(start_paused = true)]
async fn rejects_the_caller_after_max_plus_queue() {
    let b = Bulkhead::new(BulkheadConfig {
        max_concurrent: 2,
        max_queue: 1,
        max_wait: None,
    });
    let (tx1, h1) = blocked_call(&b);
    let (_tx2, _h2) = blocked_call(&b);
    let (tx3, h3) = blocked_call(&b);
    settle().await;
    assert_eq!(
        b.stats(),
        BulkheadStats {
            in_flight: 2,
            queued: 1,
            rejections: 0
        }
    );

    // Caller 4 = max (2) + queue (1) + 1: rejected at once, its future never polled.
    let mut polled = false;
    let r = b
        .run(async {
            polled = true;
            Ok::<_, ()>(())
        })
        .await;
    assert_eq!(r, Err(Error::BulkheadFull));
    assert!(!polled);
    assert_eq!(b.stats().rejections, 1);

    // Finishing one running call lets the queued one in.
    tx1.send(()).unwrap();
    assert_eq!(h1.await.unwrap(), Ok(1));
    settle().await;
    assert_eq!((b.stats().in_flight, b.stats().queued), (2, 0));
    tx3.send(()).unwrap();
    assert_eq!(h3.await.unwrap(), Ok(1));
}

#[tokio::test(start_paused = true)]
async fn a_queued_caller_gives_up_after_max_wait() {
    let b = Bulkhead::new(BulkheadConfig {
        max_concurrent: 1,
        max_queue: 4,
        max_wait: Some(Duration::from_millis(100)),
    });
    let (_tx, _h) = blocked_call(&b);
    settle().await;
    let start = tokio::time::Instant::now();
    let r = b.run(async { Ok::<_, ()>(()) }).await;
    assert_eq!(r, Err(Error::BulkheadFull));
    assert_eq!(start.elapsed(), Duration::from_millis(100));
    assert_eq!(
        b.stats(),
        BulkheadStats {
            in_flight: 1,
            queued: 0,
            rejections: 1
        }
    );
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_waiter_gives_its_queue_place_back() {
    let b = Bulkhead::new(BulkheadConfig {
        max_concurrent: 1,
        max_queue: 1,
        max_wait: None,
    });
    let (_tx, _h) = blocked_call(&b);
    let (_tx2, waiter) = blocked_call(&b);
    settle().await;
    assert_eq!(b.stats().queued, 1);
    waiter.abort();
    settle().await;
    assert_eq!(b.stats().queued, 0);
    let (_tx3, _h3) = blocked_call(&b);
    settle().await;
    assert_eq!(b.stats().queued, 1, "the place could be taken again");
}

#[tokio::test(start_paused = true)]
async fn tower_layer_queues_in_poll_ready_and_rejects_in_call() {
    let bulkhead = Bulkhead::new(BulkheadConfig {
        max_concurrent: 1,
        max_queue: 1,
        max_wait: Some(Duration::from_secs(1)),
    });
    let layer = BulkheadLayer::new(bulkhead.clone());
    let inner = service_fn(|rx: oneshot::Receiver<u32>| rx);
    let mut a = layer.layer(inner);
    let mut b = a.clone();
    let mut c = a.clone();

    // `a` takes the slot and keeps its call in flight.
    let (tx, rx) = oneshot::channel();
    let running = a.ready().await.unwrap().call(rx);

    // `b` waits in the queue: poll_ready is pending (backpressure).
    let mut b_ready = b.ready();
    assert!(poll_once(&mut b_ready).is_pending());
    assert_eq!(bulkhead.stats().queued, 1);

    // `c` finds the queue full: ready at once, and the call fails fast.
    let (_tx, rx_c) = oneshot::channel();
    let r = c.ready().await.unwrap().call(rx_c).await;
    assert_eq!(r, Err(Error::BulkheadFull));

    // Finishing `a`'s call hands the slot to `b`.
    tx.send(5).unwrap();
    assert_eq!(running.await, Ok(5));
    b_ready.await.unwrap();
    assert_eq!(bulkhead.stats().in_flight, 1);
    let (tx_b, rx_b) = oneshot::channel();
    let call_b = b.call(rx_b);
    tx_b.send(6).unwrap();
    assert_eq!(call_b.await, Ok(6));
    assert_eq!(bulkhead.stats().in_flight, 0);
}

#[tokio::test(start_paused = true)]
async fn tower_layer_waiter_times_out_into_a_rejection() {
    let bulkhead = Bulkhead::new(BulkheadConfig {
        max_concurrent: 1,
        max_queue: 1,
        max_wait: Some(Duration::from_millis(250)),
    });
    let layer = BulkheadLayer::new(bulkhead.clone());
    let inner = service_fn(|rx: oneshot::Receiver<u32>| rx);
    let mut a = layer.layer(inner);
    let mut b = a.clone();
    let (_tx, rx) = oneshot::channel();
    let _running = a.ready().await.unwrap().call(rx);

    let start = tokio::time::Instant::now();
    let (_tx_b, rx_b) = oneshot::channel();
    let r = b.ready().await.unwrap().call(rx_b).await;
    assert_eq!(r, Err(Error::BulkheadFull));
    assert_eq!(start.elapsed(), Duration::from_millis(250));
    assert_eq!(bulkhead.stats().queued, 0);
}

/// Polls a future once, without waiting.
fn poll_once<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
    Pin::new(f).poll(&mut Context::from_waker(Waker::noop()))
}
