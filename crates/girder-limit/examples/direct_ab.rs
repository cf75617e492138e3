//! Direct limiter, girder-limit vs governor, measured as alternating pairs.
//!
//! `cargo run --release -p girder-limit --example direct_ab [rounds]`
//!
//! The criterion bench (`benches/limit.rs`) runs each library for seconds at a time, so
//! on a noisy shared machine a ±10 % drift between the two measurements can decide a
//! 1-ns question. Here each round times 2M checks of one library and then 2M of the
//! other (order swapped every round), on one thread, with the same quota (every check
//! admitted: the CAS path), and the figure is the median over rounds of each library
//! and of the per-round ratio girder / governor.

use std::hint::black_box;
use std::num::NonZeroU32;
use std::time::Instant;

use girder_limit::{DirectLimiter, Quota};

const CHECKS: u32 = 2_000_000;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(31);
    let girder = DirectLimiter::new(Quota::per_second(u64::from(u32::MAX))).unwrap();
    let governor = governor::RateLimiter::direct(governor::Quota::per_second(NonZeroU32::MAX));

    let time_girder = || {
        let start = Instant::now();
        for _ in 0..CHECKS {
            black_box(girder.check(1).allowed);
        }
        start.elapsed().as_nanos() as f64 / f64::from(CHECKS)
    };
    let time_governor = || {
        let start = Instant::now();
        for _ in 0..CHECKS {
            black_box(governor.check().is_ok());
        }
        start.elapsed().as_nanos() as f64 / f64::from(CHECKS)
    };

    // Warm-up: calibrate quanta, fault in code and data.
    time_girder();
    time_governor();

    let (mut g, mut v, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let (a, b) = if round % 2 == 0 {
            let a = time_girder();
            (a, time_governor())
        } else {
            let b = time_governor();
            (time_girder(), b)
        };
        g.push(a);
        v.push(b);
        ratio.push(a / b);
    }
    println!(
        "direct, 1 thread, {rounds} alternating rounds of {CHECKS} checks: girder {:.2} ns, governor {:.2} ns, median ratio girder/governor {:.3}",
        median(&mut g),
        median(&mut v),
        median(&mut ratio)
    );
}
