//! Busy polling of an event loop (`resp.busy_poll_us`): while its connections are
//! active, a loop checks its sockets without sleeping instead of blocking in
//! `epoll_wait`, for at most the window after the last command it ran.
//!
//! Why: under request-response traffic (redis-benchmark `-P 1`) a sleeping loop must
//! be woken by every request that reaches it. The client's `write` then pays the
//! cross-CPU wake-up (`try_to_wake_up`, an IPI) in its own system time, and the loop
//! pays the return from sleep before it reads. A loop that is still polling is found
//! awake: the request lands on a ready list and nobody is woken. The price is a core
//! kept busy for the window after the last command; an idle loop sleeps as before.
//! ScyllaDB's Seastar polls the same way (`--idle-poll-time-us`, 200 µs by default).
//!
//! A loop only starts polling when its traffic is dense enough to pay: when the last
//! two batches of commands came within the window of each other. Only request-response
//! batches count (at most [`POLLED_BATCH`] commands): a deeply pipelined client keeps
//! the loop busy by itself, and polling between its batches only makes them smaller.
//! Measured under redis-benchmark `-P 16` (SET and GET, rounds alternating with Redis
//! and with polling off): with polling, p99 1.19–2.86 ms; without, 1.23–1.40 ms at the
//! same or higher requests/s. Under `-P 1`, `-P 2` and `-P 4` polling paid or was
//! neutral (`bench/resp-run10.md`). Sparse traffic (one
//! request every few hundred microseconds) never finds a polling loop, so it costs no
//! polling either. While it polls, the loop offers its core to any other runnable
//! thread at every poll (`sched_yield`), so a core it shares with one is handed over
//! at once rather than at the end of the loop's time slice. Measured (paired rounds
//! against Redis, the cost at each request rate): `bench/resp-run8.md`.
//!
//! How: connections call [`note_activity`] after each batch of commands; the loop's
//! [`run`] future sleeps until activity that qualifies, then yields to the scheduler in
//! a loop. In tokio's current-thread scheduler a yielded task is deferred, and a
//! scheduler with only deferred work polls the I/O driver with a zero timeout
//! (`park_yield`) and runs whatever became ready before it polls the task again.

use crate::metrics::Instant;
use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::task::{Poll, Waker};
use std::time::Duration;

thread_local! {
    /// Batches of commands this thread's loop has run (wrapping).
    static ACTIVITY: Cell<u64> = const { Cell::new(0) };
    /// When the last batch ended, and the time between it and the one before.
    static LAST: Cell<Option<(Instant, Duration)>> = const { Cell::new(None) };
    /// The parked spinner of this thread's loop, woken by the next activity.
    static PARKED: RefCell<Option<Waker>> = const { RefCell::new(None) };
}

/// The most commands a batch may hold and still count as request-response traffic,
/// which polling serves; a larger batch is a pipeline and is not noted.
pub(crate) const POLLED_BATCH: usize = 8;

/// Tells this thread's loop that a connection just ran a batch of `commands` commands,
/// ending at `now`. A pipelined batch (more than [`POLLED_BATCH`]) is not activity that
/// polling serves, and is ignored.
pub(crate) fn note_activity(now: Instant, commands: usize) {
    if commands > POLLED_BATCH {
        return;
    }
    ACTIVITY.with(|a| a.set(a.get().wrapping_add(1)));
    LAST.with(|last| {
        let gap = last.get().map_or(Duration::MAX, |(then, _)| {
            now.saturating_duration_since(then)
        });
        last.set(Some((now, gap)));
    });
    PARKED.with(|p| {
        if let Some(waker) = p.borrow_mut().take() {
            waker.wake();
        }
    });
}

fn activity() -> u64 {
    ACTIVITY.with(Cell::get)
}

/// The time between the last two batches (`Duration::MAX` before there were two).
fn last_gap() -> Duration {
    LAST.with(|last| last.get().map_or(Duration::MAX, |(_, gap)| gap))
}

/// When to stop polling: after `window` with no new activity.
#[derive(Debug)]
pub(crate) struct Window {
    window: Duration,
    seen: u64,
    quiet_since: Instant,
}

impl Window {
    pub(crate) fn new(window: Duration, activity: u64, now: Instant) -> Self {
        Self {
            window,
            seen: activity,
            quiet_since: now,
        }
    }

    /// Whether to poll again, given the activity count and the time now.
    pub(crate) fn keep_polling(&mut self, activity: u64, now: Instant) -> bool {
        if activity != self.seen {
            self.seen = activity;
            self.quiet_since = now;
            return true;
        }
        now.saturating_duration_since(self.quiet_since) < self.window
    }
}

/// Polls this thread's loop for `window` after each batch of commands that came
/// within `window` of the one before, forever (the loop's `block_on` drops it at
/// shutdown). Must run on the loop's own thread, inside its current-thread runtime.
pub(crate) async fn run(window: Duration) {
    let mut seen = activity();
    loop {
        // Sleep until a connection runs a batch close enough to the previous one.
        poll_fn(|cx| {
            let now = activity();
            if now != seen {
                seen = now;
                if last_gap() < window {
                    return Poll::Ready(());
                }
            }
            PARKED.with(|p| *p.borrow_mut() = Some(cx.waker().clone()));
            Poll::Pending
        })
        .await;
        let mut polling = Window::new(window, activity(), Instant::now());
        loop {
            // Another thread that wants this core gets it first.
            std::thread::yield_now();
            tokio::task::yield_now().await;
            if !polling.keep_polling(activity(), Instant::now()) {
                break;
            }
        }
        seen = activity();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_until_the_window_passes_with_no_activity() {
        let start = Instant::now();
        let us = Duration::from_micros;
        let mut w = Window::new(us(50), 7, start);
        assert!(w.keep_polling(7, start + us(10)));
        assert!(w.keep_polling(7, start + us(49)));
        assert!(!w.keep_polling(7, start + us(50)));
    }

    #[test]
    fn activity_restarts_the_window() {
        let start = Instant::now();
        let us = Duration::from_micros;
        let mut w = Window::new(us(50), 0, start);
        assert!(w.keep_polling(1, start + us(40)));
        assert!(w.keep_polling(1, start + us(89)));
        assert!(!w.keep_polling(1, start + us(90)));
        // A count that wrapped is still a change.
        let mut w = Window::new(us(50), u64::MAX, start);
        assert!(w.keep_polling(0, start + us(60)));
    }

    #[test]
    fn a_zero_window_stops_at_once() {
        let start = Instant::now();
        let mut w = Window::new(Duration::ZERO, 3, start);
        assert!(!w.keep_polling(3, start));
    }

    fn parked() -> bool {
        PARKED.with(|p| p.borrow().is_some())
    }

    /// The spinner parks while nothing happens and after sparse activity, polls after
    /// dense activity, and parks again once its window has passed: a loop with no
    /// traffic, or little, does not poll.
    #[test]
    fn the_spinner_polls_only_after_dense_activity() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            // Wide enough that a preempted test thread does not outlast it.
            let window = Duration::from_millis(20);
            let spinner = tokio::spawn(run(window));
            tokio::task::yield_now().await;
            assert!(parked(), "no activity yet: parked");
            tokio::time::sleep(Duration::from_millis(5)).await;
            assert!(parked(), "idle time passes without polling");

            // Sparse: the first batch, then one more than the window later.
            note_activity(Instant::now(), 1);
            tokio::task::yield_now().await;
            assert!(parked(), "a first batch has no gap to judge: parked again");
            tokio::time::sleep(Duration::from_millis(40)).await;
            note_activity(Instant::now(), 1);
            tokio::task::yield_now().await;
            assert!(parked(), "a batch 40 ms after the last: parked again");

            // Dense: two batches within the window.
            note_activity(Instant::now(), 1);
            assert!(!parked(), "activity takes the waker");
            tokio::task::yield_now().await;
            tokio::task::yield_now().await;
            assert!(!parked(), "polling within the window");
            tokio::time::sleep(Duration::from_millis(60)).await;
            assert!(parked(), "parked again after the window");

            // Pipelined batches, however dense, are not activity that polling serves.
            note_activity(Instant::now(), POLLED_BATCH + 1);
            note_activity(Instant::now(), 16);
            tokio::task::yield_now().await;
            assert!(parked(), "pipelined batches leave the loop parked");
            // The batch before a request-response one is the last noted: sparse here.
            note_activity(Instant::now(), POLLED_BATCH);
            tokio::task::yield_now().await;
            assert!(parked(), "one request-response batch after a pause: parked");
            spinner.abort();
        });
    }
}
