//! Which jobs a schedule's due ticks make: the misfire policies, as a pure function of
//! the schedule and `now`, so they are tested with virtual time.

use crate::cron::Cron;
use crate::model::Misfire;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use std::collections::VecDeque;

/// One job a tick makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TickJob {
    /// The tick it stands for (its dedup key is made from this).
    pub tick_ms: u64,
    /// When it runs: the tick itself if on time, `now` for a missed tick.
    pub run_at_ms: u64,
}

/// What firing a schedule at `now` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TickPlan {
    /// The jobs to enqueue, oldest tick first.
    pub jobs: Vec<TickJob>,
    /// The schedule's next tick, after `now`.
    pub next_ms: u64,
    /// The newest tick that made a job, if any.
    pub last_tick_ms: Option<u64>,
}

fn ms(t: Timestamp) -> u64 {
    t.as_millisecond().max(0) as u64
}

fn ts(ms: u64) -> Timestamp {
    Timestamp::from_millisecond(ms.min(i64::MAX as u64) as i64).unwrap_or(Timestamp::MAX)
}

/// Plans the jobs for a schedule whose next tick is `next_ms`, at `now_ms`.
///
/// A due tick is *on time* if it is at most `threshold_ms` old and makes its job (run at
/// the tick). Older ticks were *missed* (the node was down or far behind) and follow the
/// policy: `Skip` makes nothing for them, `RunOnce` makes one job for all of them (run
/// now, standing for the newest missed tick), `CatchUp { max }` makes one per missed
/// tick for the newest `max` of them (run now). Returns `None` if the expression has no
/// next tick (cannot happen for an expression that parsed, within nine years).
pub fn plan(
    cron: &Cron,
    tz: &TimeZone,
    next_ms: u64,
    now_ms: u64,
    misfire: Misfire,
    threshold_ms: u64,
) -> Option<TickPlan> {
    if now_ms < next_ms {
        return Some(TickPlan {
            jobs: Vec::new(),
            next_ms,
            last_tick_ms: None,
        });
    }
    let on_time_from = now_ms.saturating_sub(threshold_ms).max(next_ms);
    let keep_missed = match misfire {
        Misfire::Skip => 0,
        Misfire::RunOnce => 1,
        Misfire::CatchUp { max } => max as usize,
    };
    let mut jobs = Vec::new();
    let mut last_tick_ms = None;
    if next_ms < on_time_from && keep_missed > 0 {
        // Only the newest `keep_missed` missed ticks matter. Find a window before
        // `on_time_from` that holds that many (growing it 4× at a time), so a long
        // downtime of a frequent schedule costs O(keep × log(downtime)), not a walk
        // over every missed tick.
        let mut width: u64 = 1_000;
        let from = loop {
            let lo = on_time_from.saturating_sub(width).max(next_ms);
            if lo == next_ms || count_ticks(cron, tz, lo, on_time_from, keep_missed)? >= keep_missed
            {
                break lo;
            }
            width = width.saturating_mul(4);
        };
        let mut missed: VecDeque<u64> = VecDeque::with_capacity(keep_missed);
        let mut tick = first_at_or_after(cron, tz, from)?;
        while tick < on_time_from {
            if missed.len() == keep_missed {
                missed.pop_front();
            }
            missed.push_back(tick);
            tick = ms(cron.next_after(ts(tick), tz)?);
        }
        let missed: Vec<u64> = match misfire {
            Misfire::RunOnce => missed.back().copied().into_iter().collect(),
            _ => missed.into(),
        };
        for t in missed {
            jobs.push(TickJob {
                tick_ms: t,
                run_at_ms: now_ms,
            });
            last_tick_ms = Some(t);
        }
    }
    let mut tick = first_at_or_after(cron, tz, on_time_from)?;
    while tick <= now_ms {
        jobs.push(TickJob {
            tick_ms: tick,
            run_at_ms: tick,
        });
        last_tick_ms = Some(tick);
        tick = ms(cron.next_after(ts(tick), tz)?);
    }
    Some(TickPlan {
        jobs,
        next_ms: tick,
        last_tick_ms,
    })
}

/// The first tick at or after `at_ms`.
fn first_at_or_after(cron: &Cron, tz: &TimeZone, at_ms: u64) -> Option<u64> {
    // `next_after` works in whole seconds: from just before `at_ms`, its answer is the
    // first tick whose second is not before `at_ms`'s; a tick inside `at_ms`'s own
    // second but before it cannot exist (ticks are whole seconds) unless `at_ms` is
    // itself whole.
    let t = ms(cron.next_after(ts(at_ms.saturating_sub(1)), tz)?);
    if t >= at_ms {
        Some(t)
    } else {
        Some(ms(cron.next_after(ts(t), tz)?))
    }
}

/// How many ticks lie in `[from_ms, to_ms)`, counting no further than `cap`.
fn count_ticks(cron: &Cron, tz: &TimeZone, from_ms: u64, to_ms: u64, cap: usize) -> Option<usize> {
    let mut n = 0;
    let mut tick = first_at_or_after(cron, tz, from_ms)?;
    while tick < to_ms && n < cap {
        n += 1;
        tick = ms(cron.next_after(ts(tick), tz)?);
    }
    Some(n)
}

/// The first tick strictly after `after_ms`.
pub fn next_tick(cron: &Cron, tz: &TimeZone, after_ms: u64) -> Option<u64> {
    cron.next_after(ts(after_ms), tz).map(ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cron::time_zone;

    const MIN: u64 = 60_000;

    fn hourly() -> (Cron, TimeZone) {
        (Cron::parse("0 * * * *").unwrap(), time_zone("UTC").unwrap())
    }

    /// 2026-01-01T00:00:00Z
    const T0: u64 = 1_767_225_600_000;
    const HOUR: u64 = 60 * MIN;

    #[test]
    fn not_due_makes_nothing() {
        let (c, tz) = hourly();
        let p = plan(&c, &tz, T0 + HOUR, T0 + 10 * MIN, Misfire::Skip, MIN).unwrap();
        assert!(p.jobs.is_empty());
        assert_eq!(p.next_ms, T0 + HOUR);
        assert_eq!(p.last_tick_ms, None);
    }

    #[test]
    fn on_time_tick_runs_at_the_tick() {
        let (c, tz) = hourly();
        let p = plan(&c, &tz, T0 + HOUR, T0 + HOUR + 5, Misfire::Skip, MIN).unwrap();
        assert_eq!(
            p.jobs,
            [TickJob {
                tick_ms: T0 + HOUR,
                run_at_ms: T0 + HOUR
            }]
        );
        assert_eq!(p.next_ms, T0 + 2 * HOUR);
        assert_eq!(p.last_tick_ms, Some(T0 + HOUR));
    }

    /// Down from just before T0+1h to T0+5h+30s: ticks 1h..4h missed, 5h on time.
    fn after_downtime(m: Misfire) -> TickPlan {
        let (c, tz) = hourly();
        plan(&c, &tz, T0 + HOUR, T0 + 5 * HOUR + 30_000, m, MIN).unwrap()
    }

    #[test]
    fn skip_drops_missed_ticks() {
        let p = after_downtime(Misfire::Skip);
        assert_eq!(
            p.jobs,
            [TickJob {
                tick_ms: T0 + 5 * HOUR,
                run_at_ms: T0 + 5 * HOUR
            }]
        );
        assert_eq!(p.next_ms, T0 + 6 * HOUR);
    }

    #[test]
    fn run_once_makes_one_job_for_all_missed() {
        let now = T0 + 5 * HOUR + 30_000;
        let p = after_downtime(Misfire::RunOnce);
        assert_eq!(
            p.jobs,
            [
                TickJob {
                    tick_ms: T0 + 4 * HOUR,
                    run_at_ms: now
                },
                TickJob {
                    tick_ms: T0 + 5 * HOUR,
                    run_at_ms: T0 + 5 * HOUR
                }
            ]
        );
    }

    #[test]
    fn catch_up_is_bounded_to_the_newest() {
        let now = T0 + 5 * HOUR + 30_000;
        let p = after_downtime(Misfire::CatchUp { max: 2 });
        let ticks: Vec<_> = p.jobs.iter().map(|j| (j.tick_ms, j.run_at_ms)).collect();
        assert_eq!(
            ticks,
            [
                (T0 + 3 * HOUR, now),
                (T0 + 4 * HOUR, now),
                (T0 + 5 * HOUR, T0 + 5 * HOUR)
            ]
        );
        let all = after_downtime(Misfire::CatchUp { max: 100 });
        assert_eq!(all.jobs.len(), 5);
    }

    #[test]
    fn per_second_schedule_after_long_downtime_stays_bounded() {
        let c = Cron::parse("* * * * * *").unwrap();
        let tz = time_zone("UTC").unwrap();
        let now = T0 + 30 * 24 * HOUR;
        let p = plan(&c, &tz, T0, now, Misfire::CatchUp { max: 3 }, 0).unwrap();
        assert_eq!(p.jobs.len(), 4, "{:?}", p.jobs); // 3 missed + the tick at `now`
        assert_eq!(p.jobs[2].tick_ms, now - 1000);
        assert_eq!(p.next_ms, now + 1000);
    }

    #[test]
    fn across_dst_each_tick_once() {
        // Daily 02:30 Berlin across the spring-forward night: the gap tick runs at the jump.
        let c = Cron::parse("30 2 * * *").unwrap();
        let tz = time_zone("Europe/Berlin").unwrap();
        let start: Timestamp = "2026-03-27T12:00:00Z".parse().unwrap();
        let first = next_tick(&c, &tz, ms(start)).unwrap();
        let now: Timestamp = "2026-03-31T12:00:00Z".parse().unwrap();
        let p = plan(&c, &tz, first, ms(now), Misfire::CatchUp { max: 10 }, 0).unwrap();
        let ticks: Vec<String> = p.jobs.iter().map(|j| ts(j.tick_ms).to_string()).collect();
        assert_eq!(
            ticks,
            [
                "2026-03-28T01:30:00Z",
                "2026-03-29T01:00:00Z",
                "2026-03-30T00:30:00Z",
                "2026-03-31T00:30:00Z"
            ]
        );
    }
}
