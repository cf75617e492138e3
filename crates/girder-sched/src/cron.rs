//! Cron expressions evaluated on a time zone's wall clock.
//!
//! Five fields (`minute hour day-of-month month day-of-week`, the seconds are 0) or six
//! (`second minute hour day-of-month month day-of-week`). A field is `*`, a value, a
//! range `a-b`, a step `*/n`, `a-b/n` or `a/n` (from `a` to the field's end), or a list
//! of those separated by commas. Months and weekdays also take their English names
//! (`JAN`, `MON`); weekday 0 and 7 are both Sunday; `?` means `*` in the two day fields.
//! The nicknames `@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight`
//! and `@hourly` stand for their five-field forms.
//!
//! Day matching follows Vixie cron: when both the day of month and the day of week are
//! restricted, a day matches if *either* does; otherwise both must.
//!
//! Daylight saving time, the rule [`Cron::next_after`] keeps:
//! - a wall time that does not exist (skipped by a spring-forward gap) runs at the
//!   instant of the jump, once however many of its times fell in the gap;
//! - a wall time that happens twice (repeated by a fall-back fold) runs once, at its
//!   first occurrence.

use std::fmt;

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{Timestamp, ToSpan};

/// How far ahead [`Cron::next_after`] looks. The longest real wait is for a 29 February
/// across a century year that is not a leap year (2096 → 2104).
const SEARCH_DAYS: i32 = 366 * 9;

/// A parsed cron expression: one bit per accepted value of each field.
#[derive(Clone, PartialEq, Eq)]
pub struct Cron {
    source: String,
    seconds: u64,
    minutes: u64,
    hours: u32,
    /// Bits 1..=31.
    days: u32,
    /// Bits 1..=12.
    months: u16,
    /// Bits 0..=6, Sunday = 0.
    weekdays: u8,
    days_restricted: bool,
    weekdays_restricted: bool,
}

impl fmt::Debug for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cron({:?})", self.source)
    }
}

impl fmt::Display for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// Why an expression did not parse; the message names the field and the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CronError(String);

struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const SECOND: Field = Field {
    name: "second",
    min: 0,
    max: 59,
    names: &[],
};
const MINUTE: Field = Field {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: Field = Field {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
};
const DAY: Field = Field {
    name: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: Field = Field {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ],
};
// 7 is accepted and folded onto 0 (Sunday) after parsing.
const WEEKDAY: Field = Field {
    name: "day-of-week",
    min: 0,
    max: 7,
    names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
};

impl Field {
    fn value(&self, token: &str) -> Result<u32, CronError> {
        if let Some(i) = self
            .names
            .iter()
            .position(|n| n.eq_ignore_ascii_case(token))
        {
            return Ok(i as u32 + self.min);
        }
        let v: u32 = token.parse().map_err(|_| {
            CronError(format!(
                "{} field: `{token}` is not a number{}",
                self.name,
                if self.names.is_empty() {
                    ""
                } else {
                    " or a name"
                }
            ))
        })?;
        if v < self.min || v > self.max {
            return Err(CronError(format!(
                "{} field: {v} is outside {}..={}",
                self.name, self.min, self.max
            )));
        }
        Ok(v)
    }

    /// Parses one field into a bit set; also says whether it was `*` (or `?`).
    fn parse(&self, text: &str) -> Result<(u64, bool), CronError> {
        let question_ok = std::ptr::eq(self, &DAY) || std::ptr::eq(self, &WEEKDAY);
        if text == "*" || (text == "?" && question_ok) {
            return Ok((self.span(self.min, self.max, 1), false));
        }
        let mut bits = 0u64;
        for part in text.split(',') {
            if part.is_empty() {
                return Err(CronError(format!(
                    "{} field: empty item in `{text}`",
                    self.name
                )));
            }
            let (range, step) = match part.split_once('/') {
                Some((r, s)) => {
                    let step: u32 = s.parse().map_err(|_| {
                        CronError(format!("{} field: step `{s}` is not a number", self.name))
                    })?;
                    if step == 0 || step > self.max {
                        return Err(CronError(format!(
                            "{} field: step {step} must be 1..={}",
                            self.name, self.max
                        )));
                    }
                    (r, Some(step))
                }
                None => (part, None),
            };
            let (lo, hi) = if range == "*" {
                (self.min, self.max)
            } else if let Some((a, b)) = range.split_once('-') {
                let (a, b) = (self.value(a)?, self.value(b)?);
                if a > b {
                    return Err(CronError(format!(
                        "{} field: range {range} runs backwards",
                        self.name
                    )));
                }
                (a, b)
            } else {
                let a = self.value(range)?;
                // `a/n` runs from `a` to the end of the field.
                (a, if step.is_some() { self.max } else { a })
            };
            bits |= self.span(lo, hi, step.unwrap_or(1));
        }
        Ok((bits, true))
    }

    fn span(&self, lo: u32, hi: u32, step: u32) -> u64 {
        (lo..=hi)
            .step_by(step as usize)
            .fold(0u64, |acc, v| acc | 1 << v)
    }
}

impl std::str::FromStr for Cron {
    type Err = CronError;

    fn from_str(text: &str) -> Result<Self, CronError> {
        Cron::parse(text)
    }
}

impl Cron {
    /// Parses a five- or six-field expression or a nickname.
    pub fn parse(text: &str) -> Result<Cron, CronError> {
        let trimmed = text.trim();
        let expanded = match trimmed.to_ascii_lowercase().as_str() {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            s if s.starts_with('@') => {
                return Err(CronError(format!("unknown nickname `{trimmed}`")));
            }
            _ => trimmed,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let (sec, rest) = match fields.len() {
            5 => ("0", &fields[..]),
            6 => (fields[0], &fields[1..]),
            n => {
                return Err(CronError(format!(
                    "a cron expression has 5 fields (minute hour day-of-month month \
                     day-of-week) or 6 (with seconds first), not {n}"
                )));
            }
        };
        let (seconds, _) = SECOND.parse(sec)?;
        let (minutes, _) = MINUTE.parse(rest[0])?;
        let (hours, _) = HOUR.parse(rest[1])?;
        let (days, days_restricted) = DAY.parse(rest[2])?;
        let (months, _) = MONTH.parse(rest[3])?;
        let (mut weekdays, weekdays_restricted) = WEEKDAY.parse(rest[4])?;
        if weekdays & 1 << 7 != 0 {
            weekdays = (weekdays | 1) & 0x7f;
        }
        let cron = Cron {
            source: fields.join(" "),
            seconds,
            minutes,
            hours: hours as u32,
            days: days as u32,
            months: months as u16,
            weekdays: weekdays as u8,
            days_restricted,
            weekdays_restricted,
        };
        // An expression like `0 0 31 2 *` parses but never runs: say so now.
        if !(1..=12).any(|m| cron.months & 1 << m != 0 && cron.month_can_match(m)) {
            return Err(CronError(format!(
                "`{trimmed}` never runs: no month has the days it names"
            )));
        }
        Ok(cron)
    }

    /// Whether some day in month `m` (of some year) can match the day-of-month field.
    fn month_can_match(&self, m: u32) -> bool {
        if !self.days_restricted || self.weekdays_restricted {
            return true;
        }
        let longest = match m {
            2 => 29,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        (1..=longest).any(|d| self.days & 1 << d != 0)
    }

    fn day_matches(&self, date: Date) -> bool {
        if self.months & 1 << date.month() == 0 {
            return false;
        }
        let dom = self.days & 1 << date.day() != 0;
        let dow = self.weekdays & 1 << date.weekday().to_sunday_zero_offset() != 0;
        if self.days_restricted && self.weekdays_restricted {
            dom || dow
        } else {
            dom && dow
        }
    }

    /// The first matching time of day at or after `from`, if any.
    fn time_at_or_after(&self, from: Time) -> Option<Time> {
        let (h0, m0, s0) = (
            from.hour() as u32,
            from.minute() as u32,
            from.second() as u32,
        );
        for h in h0..24 {
            if self.hours & 1 << h == 0 {
                continue;
            }
            let m_start = if h == h0 { m0 } else { 0 };
            for m in m_start..60 {
                if self.minutes & 1 << m == 0 {
                    continue;
                }
                let s_start = if h == h0 && m == m0 { s0 } else { 0 };
                if let Some(s) = (s_start..60).find(|s| self.seconds & 1 << s != 0) {
                    return Time::new(h as i8, m as i8, s as i8, 0).ok();
                }
            }
        }
        None
    }

    /// The first matching wall-clock time at or after `from`.
    fn civil_at_or_after(&self, from: DateTime) -> Option<DateTime> {
        let mut date = from.date();
        let mut start = from.time();
        for _ in 0..SEARCH_DAYS {
            if self.day_matches(date) {
                if let Some(t) = self.time_at_or_after(start) {
                    return Some(date.to_datetime(t));
                }
            }
            date = date.tomorrow().ok()?;
            start = Time::midnight();
        }
        None
    }

    /// The first instant strictly after `after` at which the expression fires in `tz`
    /// (see the module's DST rule), or `None` if it fires in none of the next nine
    /// years.
    pub fn next_after(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        // Whole seconds: the expression has no finer unit.
        let after_s = Timestamp::from_second(after.as_second()).ok()?;
        let mut civil = tz.to_datetime(after_s).checked_add(1.second()).ok()?;
        // A fold repeats an hour of wall time, so the walk below may meet candidates that
        // map before `after`; they ran in the first pass and are skipped. The bound keeps
        // a pathological zone from looping.
        for _ in 0..100_000 {
            let candidate = self.civil_at_or_after(civil)?;
            let at = instant_of(tz, candidate)?;
            if at > after {
                return Some(at);
            }
            civil = candidate.checked_add(1.second()).ok()?;
        }
        None
    }
}

/// The instant a wall time stands for: the jump itself for a time inside a gap, the
/// first occurrence for a time inside a fold.
fn instant_of(tz: &TimeZone, civil: DateTime) -> Option<Timestamp> {
    let ambiguous = tz.to_ambiguous_timestamp(civil);
    match ambiguous.offset() {
        AmbiguousOffset::Unambiguous { offset } => offset.to_timestamp(civil).ok(),
        AmbiguousOffset::Fold { before, after } => {
            let a = before.to_timestamp(civil).ok()?;
            let b = after.to_timestamp(civil).ok()?;
            Some(a.min(b))
        }
        AmbiguousOffset::Gap { before, after } => {
            // The civil time read with the offset after the gap lies before the jump and
            // read with the offset before it lies after: the jump is between them, where
            // the zone's offset changes. Binary search on whole seconds.
            let x = after.to_timestamp(civil).ok()?;
            let y = before.to_timestamp(civil).ok()?;
            let (mut lo, mut hi) = (x.min(y).as_second(), x.max(y).as_second());
            let before_at_lo = tz.to_offset(Timestamp::from_second(lo).ok()?);
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if tz.to_offset(Timestamp::from_second(mid).ok()?) == before_at_lo {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            Timestamp::from_second(hi).ok()
        }
    }
}

/// Looks up an IANA time zone name (`UTC`, `Europe/Berlin`), with a message that says
/// which name was not found.
pub fn time_zone(name: &str) -> Result<TimeZone, CronError> {
    TimeZone::get(name).map_err(|_| CronError(format!("unknown time zone `{name}`")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn next_n(cron: &str, tz: &str, from: &str, n: usize) -> Vec<String> {
        let cron = Cron::parse(cron).unwrap();
        let tz = time_zone(tz).unwrap();
        let mut at = ts(from);
        (0..n)
            .map(|_| {
                at = cron.next_after(at, &tz).unwrap();
                at.to_string()
            })
            .collect()
    }

    #[test]
    fn five_and_six_fields() {
        assert_eq!(
            next_n("*/15 * * * *", "UTC", "2026-01-01T00:07:00Z", 3),
            [
                "2026-01-01T00:15:00Z",
                "2026-01-01T00:30:00Z",
                "2026-01-01T00:45:00Z"
            ]
        );
        assert_eq!(
            next_n("*/20 * * * * *", "UTC", "2026-01-01T00:00:00Z", 3),
            [
                "2026-01-01T00:00:20Z",
                "2026-01-01T00:00:40Z",
                "2026-01-01T00:01:00Z"
            ]
        );
        // Strictly after: a time that matches is not its own next.
        assert_eq!(
            next_n("0 12 * * *", "UTC", "2026-01-01T12:00:00Z", 1),
            ["2026-01-02T12:00:00Z"]
        );
        // Sub-second `after` still moves to the next second.
        assert_eq!(
            next_n("* * * * * *", "UTC", "2026-01-01T12:00:00.5Z", 1),
            ["2026-01-01T12:00:01Z"]
        );
    }

    #[test]
    fn names_ranges_lists_and_steps() {
        // Weekdays at 09:30, Friday named, Sunday as 7.
        assert_eq!(
            next_n("30 9 * * MON-FRI", "UTC", "2026-11-27T10:00:00Z", 2), // a Friday
            ["2026-11-30T09:30:00Z", "2026-12-01T09:30:00Z"]
        );
        assert_eq!(
            next_n("0 0 * * 7", "UTC", "2026-11-27T10:00:00Z", 1),
            ["2026-11-29T00:00:00Z"]
        );
        assert_eq!(
            next_n("0 0 1 jan,jul *", "UTC", "2026-02-01T00:00:00Z", 2),
            ["2026-07-01T00:00:00Z", "2027-01-01T00:00:00Z"]
        );
        assert_eq!(
            next_n("0 10-16/3 * * *", "UTC", "2026-01-01T00:00:00Z", 4),
            [
                "2026-01-01T10:00:00Z",
                "2026-01-01T13:00:00Z",
                "2026-01-01T16:00:00Z",
                "2026-01-02T10:00:00Z"
            ]
        );
        assert_eq!(
            next_n("0 20/2 * * *", "UTC", "2026-01-01T00:00:00Z", 3),
            [
                "2026-01-01T20:00:00Z",
                "2026-01-01T22:00:00Z",
                "2026-01-02T20:00:00Z"
            ]
        );
        assert_eq!(
            next_n("@hourly", "UTC", "2026-01-01T00:00:01Z", 1),
            ["2026-01-01T01:00:00Z"]
        );
    }

    #[test]
    fn vixie_day_rule() {
        // Both restricted: the 13th OR a Friday.
        assert_eq!(
            next_n("0 0 13 * 5", "UTC", "2026-11-01T00:00:00Z", 3),
            [
                "2026-11-06T00:00:00Z",
                "2026-11-13T00:00:00Z",
                "2026-11-20T00:00:00Z"
            ]
        );
        // Only day of month restricted: weekday is `*`, so both must match = the 13th.
        assert_eq!(
            next_n("0 0 13 * *", "UTC", "2026-11-01T00:00:00Z", 1),
            ["2026-11-13T00:00:00Z"]
        );
    }

    #[test]
    fn leap_day_across_a_century() {
        assert_eq!(
            next_n("0 0 29 2 *", "UTC", "2096-03-01T00:00:00Z", 1),
            ["2104-02-29T00:00:00Z"]
        );
    }

    #[test]
    fn spring_forward_gap_runs_at_the_jump_once() {
        // Berlin, 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00 UTC).
        assert_eq!(
            next_n("30 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z", 2),
            ["2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"]
        );
        // Every 15 minutes: 02:00..02:45 do not exist; one run at the jump, then 03:15.
        assert_eq!(
            next_n("*/15 * * * *", "Europe/Berlin", "2026-03-29T00:40:00Z", 4),
            [
                "2026-03-29T00:45:00Z", // 01:45 CET
                "2026-03-29T01:00:00Z", // the jump: 03:00 CEST
                "2026-03-29T01:15:00Z", // 03:15 CEST
                "2026-03-29T01:30:00Z",
            ]
        );
        // New York, 2026-03-08 02:00 EST → 03:00 EDT (07:00 UTC).
        assert_eq!(
            next_n("0 2 * * *", "America/New_York", "2026-03-07T12:00:00Z", 2),
            ["2026-03-08T07:00:00Z", "2026-03-09T06:00:00Z"]
        );
    }

    #[test]
    fn fall_back_fold_runs_once() {
        // Berlin, 2026-10-25: 03:00 CEST falls back to 02:00 CET (01:00 UTC); 02:30 happens
        // twice (00:30 UTC and 01:30 UTC) and runs at the first.
        assert_eq!(
            next_n("30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z", 2),
            ["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]
        );
        // Hourly: the repeated 02:00 runs once; the next run is 03:00 CET.
        assert_eq!(
            next_n("0 * * * *", "Europe/Berlin", "2026-10-24T23:30:00Z", 3),
            [
                "2026-10-25T00:00:00Z", // 02:00 CEST
                "2026-10-25T02:00:00Z", // 03:00 CET (the second 02:00 CET is skipped)
                "2026-10-25T03:00:00Z",
            ]
        );
        // Asked from inside the second pass, the next is after it, not a repeat.
        assert_eq!(
            next_n("45 2 * * *", "Europe/Berlin", "2026-10-25T01:50:00Z", 1),
            ["2026-10-26T01:45:00Z"]
        );
    }

    #[test]
    fn errors_name_the_field() {
        for (text, needle) in [
            ("* * * *", "5 fields"),
            ("60 * * * *", "minute field: 60"),
            ("* 24 * * *", "hour field: 24"),
            ("* * 0 * *", "day-of-month field: 0"),
            ("* * * 13 *", "month field: 13"),
            ("* * * * 8", "day-of-week field: 8"),
            ("* * * FOO *", "month field: `FOO`"),
            ("*/0 * * * *", "step 0"),
            ("5-1 * * * *", "backwards"),
            ("1,,2 * * * *", "empty item"),
            ("0 0 30 2 *", "never runs"),
            ("@sometimes", "unknown nickname"),
            ("? * * * *", "minute field"),
        ] {
            let err = Cron::parse(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
        assert!(time_zone("Mars/Olympus").is_err());
    }

    proptest::proptest! {
        /// Every answer matches the expression on the wall clock (or is a gap jump),
        /// lies after the question, and nothing matching lies between them.
        #[test]
        fn next_is_the_first_match(
            minute in 0u32..60, step in 1u32..30, hour_lo in 0u32..23,
            start in 1_700_000_000i64..1_900_000_000,
            zone in proptest::sample::select(vec!["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"]),
        ) {
            let expr = format!("{minute}/{step} {hour_lo}-23 * * *");
            let cron = Cron::parse(&expr).unwrap();
            let tz = time_zone(zone).unwrap();
            let after = Timestamp::from_second(start).unwrap();
            let next = cron.next_after(after, &tz).unwrap();
            proptest::prop_assert!(next > after);
            // Brute force minute by minute over wall times that exist.
            let mut t = Timestamp::from_second(start - start.rem_euclid(60) + 60).unwrap();
            while t < next {
                let civil = tz.to_datetime(t);
                let hit = cron.day_matches(civil.date()) && cron.time_at_or_after(civil.time()) == Some(civil.time());
                // A hit before `next` is allowed only as the repeat of a folded time.
                if hit {
                    let first = instant_of(&tz, civil).unwrap();
                    proptest::prop_assert!(first < t && first <= after, "{expr} {zone}: {t} matched before {next}");
                }
                t = t.checked_add(60.seconds()).unwrap();
            }
        }
    }
}
