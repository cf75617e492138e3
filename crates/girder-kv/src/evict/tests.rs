use super::*;
use crate::strings::{self, SetExpiry, SetOptions};
use crate::{keys, ManualClock};
use std::collections::HashSet;

const T0: u64 = 1_800_000_000_000;
/// What each key "costs" under the test probe.
const PER_KEY: usize = 1000;

/// A keyspace whose probe reports `PER_KEY` bytes per key (of every database).
fn keyspace() -> (Arc<ManualClock>, Arc<Keyspace>) {
    let clock = Arc::new(ManualClock::new(T0));
    let ks = Arc::new(Keyspace::new(clock.clone(), 1 << 20));
    let weak = Arc::downgrade(&ks);
    assert!(ks.set_memory_probe(Arc::new(move || {
        let ks = weak.upgrade()?;
        Some(ks.db_sizes().iter().map(|(keys, _)| keys).sum::<usize>() * PER_KEY)
    })));
    (clock, ks)
}

fn set(ks: &Keyspace, db: usize, key: &str, ttl_ms: Option<u64>) {
    let options = SetOptions {
        expiry: ttl_ms.map_or(SetExpiry::Clear, |ttl| SetExpiry::At(ks.now_ms() + ttl)),
        ..SetOptions::default()
    };
    strings::set(&ks.db(db).unwrap(), key.as_bytes(), b"v", options).unwrap();
}

fn exists(ks: &Keyspace, db: usize, key: &str) -> bool {
    keys::exists(&ks.db(db).unwrap(), &[key.as_bytes()]) == 1
}

/// Evicts until within the limit: one call stops after a few milliseconds, and the
/// test probe (which counts every shard) is slow.
fn evict(ks: &Keyspace) -> Result<Vec<(usize, String)>, KvError> {
    let mut gone = Vec::new();
    while ks.make_room(&mut |db, key| gone.push((db, String::from_utf8_lossy(key).into_owned())))?
        > 0
    {}
    Ok(gone)
}

#[test]
fn policies_round_trip_their_redis_names() {
    for p in Policy::ALL {
        assert_eq!(Policy::parse(p.name()), Some(p));
        assert_eq!(Policy::parse(&p.name().to_uppercase()), Some(p));
    }
    assert_eq!(Policy::parse("allkeys-lru "), None);
    assert_eq!(Policy::parse("lru"), None);
}

#[test]
fn no_limit_or_no_probe_evicts_nothing() {
    let (_, ks) = keyspace();
    for i in 0..10 {
        set(&ks, 0, &format!("k{i}"), None);
    }
    ks.set_eviction_policy(Policy::AllKeysRandom);
    assert_eq!(evict(&ks).unwrap(), vec![]);
    let blind = Keyspace::new(Arc::new(ManualClock::new(T0)), 1 << 20);
    set(&blind, 0, "k", None);
    blind.set_eviction_policy(Policy::AllKeysRandom);
    blind.set_maxmemory(1);
    assert_eq!(evict(&blind).unwrap(), vec![]);
    assert!(!blind.over_maxmemory());
}

#[test]
fn noeviction_refuses_and_keeps_every_key() {
    let (_, ks) = keyspace();
    for i in 0..10 {
        set(&ks, 0, &format!("k{i}"), None);
    }
    ks.set_maxmemory(5 * PER_KEY as u64);
    assert!(ks.over_maxmemory());
    assert_eq!(evict(&ks), Err(KvError::OutOfMemory));
    assert_eq!(
        KvError::OutOfMemory.to_string(),
        "OOM command not allowed when used memory > 'maxmemory'."
    );
    assert_eq!(ks.db_sizes()[0].0, 10);
    ks.set_maxmemory(10 * PER_KEY as u64);
    assert_eq!(evict(&ks).unwrap(), vec![]);
}

#[test]
fn allkeys_random_evicts_down_to_the_limit_across_databases() {
    let (_, ks) = keyspace();
    for i in 0..100 {
        set(&ks, i % 3, &format!("k{i}"), None);
    }
    ks.set_eviction_policy(Policy::AllKeysRandom);
    ks.set_maxmemory(40 * PER_KEY as u64);
    let gone = evict(&ks).unwrap();
    assert_eq!(gone.len(), 60);
    assert_eq!(ks.evicted_keys(), 60);
    let left: usize = ks.db_sizes().iter().map(|(k, _)| k).sum();
    assert_eq!(left, 40);
    for (db, key) in &gone {
        assert!(!exists(&ks, *db, key), "{db} {key}");
    }
    // Each database lost keys: the victim's database is chosen at random too.
    let dbs: HashSet<usize> = gone.iter().map(|(db, _)| *db).collect();
    assert_eq!(dbs.len(), 3);
}

#[test]
fn volatile_policies_only_take_keys_with_a_ttl_and_then_refuse() {
    for policy in [
        Policy::VolatileLru,
        Policy::VolatileLfu,
        Policy::VolatileRandom,
        Policy::VolatileTtl,
    ] {
        let (_, ks) = keyspace();
        for i in 0..100 {
            set(&ks, 0, &format!("keep{i}"), None);
        }
        for i in 0..20 {
            set(&ks, 0, &format!("ttl{i}"), Some(60_000 + i));
        }
        ks.set_eviction_policy(policy);
        ks.set_maxmemory(110 * PER_KEY as u64);
        let gone = evict(&ks).unwrap();
        assert_eq!(gone.len(), 10, "{policy}");
        assert!(gone.iter().all(|(_, k)| k.starts_with("ttl")), "{policy}");
        // Past what the volatile keys can free: the last ones go, then OOM.
        ks.set_maxmemory(50 * PER_KEY as u64);
        assert_eq!(evict(&ks), Err(KvError::OutOfMemory), "{policy}");
        assert_eq!(ks.db_sizes()[0], (100, 0), "{policy}");
    }
}

#[test]
fn volatile_ttl_takes_the_soonest_deadlines_first() {
    let (_, ks) = keyspace();
    for i in 0..200u64 {
        set(&ks, 0, &format!("t{i}"), Some(1_000 + i * 1000));
    }
    ks.set_eviction_policy(Policy::VolatileTtl);
    ks.set_maxmemory(150 * PER_KEY as u64);
    let gone = evict(&ks).unwrap();
    assert_eq!(gone.len(), 50);
    // Each candidate is its shard's exact soonest deadline: the victims are among the
    // soonest, with little slack for the shards a round did not sample.
    let ranks: Vec<u64> = gone.iter().map(|(_, k)| k[1..].parse().unwrap()).collect();
    let late = ranks.iter().filter(|&&r| r >= 75).count();
    assert!(late <= 3, "victims {ranks:?}");
}

#[test]
fn allkeys_lru_keeps_the_keys_in_use() {
    let (clock, ks) = keyspace();
    for i in 0..1000 {
        set(&ks, 0, &format!("k{i}"), None);
        clock.advance(1);
    }
    // The first hundred keys are used again, later than any other key was written.
    for i in 0..100 {
        strings::get(&ks.db(0).unwrap(), format!("k{i}").as_bytes()).unwrap();
        clock.advance(1);
    }
    ks.set_eviction_policy(Policy::AllKeysLru);
    ks.set_maxmemory(500 * PER_KEY as u64);
    let gone = evict(&ks).unwrap();
    assert_eq!(gone.len(), 500);
    let hot_kept = (0..100)
        .filter(|i| exists(&ks, 0, &format!("k{i}")))
        .count();
    assert_eq!(hot_kept, 100, "a key in use was evicted");
    // Approximate, but close: the victims are old. An exact LRU evicts k100..k599.
    let mean: f64 = gone
        .iter()
        .map(|(_, k)| k[1..].parse::<f64>().unwrap())
        .sum::<f64>()
        / 500.0;
    assert!(mean < 450.0, "mean victim {mean}, exact LRU's is 349.5");
}

#[test]
fn allkeys_lfu_keeps_the_keys_used_often() {
    let (clock, ks) = keyspace();
    ks.set_eviction_policy(Policy::AllKeysLfu);
    for i in 0..1000 {
        set(&ks, 0, &format!("k{i}"), None);
    }
    for _ in 0..200 {
        for i in 0..100 {
            strings::get(&ks.db(0).unwrap(), format!("k{i}").as_bytes()).unwrap();
        }
    }
    clock.advance(10);
    ks.set_maxmemory(500 * PER_KEY as u64);
    evict(&ks).unwrap();
    let kept = (0..100)
        .filter(|i| exists(&ks, 0, &format!("k{i}")))
        .count();
    assert_eq!(kept, 100, "a frequently used key was evicted");
    assert_eq!(ks.db_sizes()[0].0, 500);
}

#[test]
fn the_lfu_counter_grows_logarithmically_and_decays_per_minute() {
    let lfu = Lfu {
        log_factor: 10,
        decay_minutes: 1,
    };
    let mut counter = LFU_INIT;
    let mut at_100 = 0;
    for hit in 1..=100_000 {
        counter = lfu.incremented(counter);
        if hit == 100 {
            at_100 = counter;
        }
    }
    // Redis's table for lfu-log-factor 10: 100 hits → ~10, 100k hits → ~142.
    assert!((7..=14).contains(&at_100), "{at_100}");
    assert!((110..=180).contains(&counter), "{counter}");
    let stamp = lfu_stamp(T0, 20);
    assert_eq!(lfu.decayed(stamp, T0 + 59_000), 20);
    assert_eq!(lfu.decayed(stamp, T0 + 5 * 60_000), 15);
    assert_eq!(lfu.decayed(stamp, T0 + 60 * 60_000), 0);
    let never = Lfu {
        log_factor: 10,
        decay_minutes: 0,
    };
    assert_eq!(never.decayed(stamp, T0 + 60 * 60_000), 20);
}

#[test]
fn object_access_reports_idle_time_or_frequency_without_using_the_key() {
    let (clock, ks) = keyspace();
    set(&ks, 0, "k", None);
    clock.advance(5_500);
    assert_eq!(
        ks.object_access(0, b"k").unwrap(),
        Some(Access::IdleSeconds(5))
    );
    // Looking does not use it.
    assert_eq!(
        ks.object_access(0, b"k").unwrap(),
        Some(Access::IdleSeconds(5))
    );
    assert_eq!(keys::type_of(&ks.db(0).unwrap(), b"k"), "string");
    strings::get(&ks.db(0).unwrap(), b"k").unwrap();
    assert_eq!(
        ks.object_access(0, b"k").unwrap(),
        Some(Access::IdleSeconds(0))
    );
    assert_eq!(ks.object_access(0, b"missing").unwrap(), None);
    ks.set_eviction_policy(Policy::AllKeysLfu);
    set(&ks, 0, "f", None);
    assert_eq!(
        ks.object_access(0, b"f").unwrap(),
        Some(Access::Frequency(LFU_INIT))
    );
}

#[test]
fn a_handle_without_touch_leaves_the_stamps_alone() {
    let (clock, ks) = keyspace();
    set(&ks, 0, "k", None);
    clock.advance(3_000);
    strings::get(&ks.db(0).unwrap().without_touch(), b"k").unwrap();
    assert_eq!(
        ks.object_access(0, b"k").unwrap(),
        Some(Access::IdleSeconds(3))
    );
    strings::get(&ks.db(0).unwrap(), b"k").unwrap();
    assert_eq!(
        ks.object_access(0, b"k").unwrap(),
        Some(Access::IdleSeconds(0))
    );
}

#[test]
fn evictions_are_journaled_as_deletions() {
    use std::sync::Mutex as StdMutex;
    #[derive(Default)]
    struct Deletions(StdMutex<Vec<Vec<u8>>>);
    impl crate::Journal for Deletions {
        fn stream(&self, _: usize, _: u64, _: &[u8], _: &[crate::streams::StreamEffect]) {}
        fn stream_replaced(
            &self,
            _: usize,
            _: u64,
            _: &[u8],
            _: &crate::streams::StreamValue,
            _: Option<u64>,
        ) {
        }
        fn deleted(&self, _: usize, _: u64, key: &[u8]) {
            self.0.lock().unwrap().push(key.to_vec());
        }
        fn command(&self, _: usize, _: u64, _: &[bytes::Bytes]) {}
        fn value(&self, _: usize, _: u64, _: &[u8], _: &Entry) {}
        fn set_removed(&self, _: usize, _: u64, _: &[u8], _: &[bytes::Bytes]) {}
        fn stream_expire(&self, _: usize, _: u64, _: &[u8], _: Option<u64>) {}
        fn flushed_all(&self) {}
        fn flushed_db(&self, _: usize) {}
        fn begin_atomic(&self) {}
        fn end_atomic(&self) {}
        fn swapped(&self, _: usize, _: usize) {}
        fn take_pending(&self) -> crate::Durability {
            crate::Durability::Nothing
        }
        fn barrier(&self) -> crate::Durability {
            crate::Durability::Nothing
        }
    }
    let (_, ks) = keyspace();
    let journal = Arc::new(Deletions::default());
    ks.set_journal(journal.clone()).unwrap();
    for i in 0..20 {
        set(&ks, 0, &format!("k{i}"), None);
    }
    ks.set_journal_all(true);
    ks.set_eviction_policy(Policy::AllKeysLru);
    ks.set_maxmemory(15 * PER_KEY as u64);
    let gone: Vec<Vec<u8>> = evict(&ks)
        .unwrap()
        .into_iter()
        .map(|(_, k)| k.into_bytes())
        .collect();
    assert_eq!(gone.len(), 5);
    assert_eq!(*journal.0.lock().unwrap(), gone);
}

/// A shard holding the keys `0..n` (big-endian `u32`s).
fn shard_of(n: u32) -> crate::shard::Shard {
    let mut shard = crate::shard::Shard::default();
    let clock = Clocking {
        now_ms: T0,
        lfu: None,
        frozen: false,
    };
    for i in 0..n {
        shard.put(&i.to_be_bytes(), crate::Value::Int(1), None, clock);
    }
    shard
}

#[test]
fn sampling_stays_cheap_after_mass_deletion() {
    let mut table = shard_of(100_000);
    let full = table.table().buckets();
    for i in 10..100_000u32 {
        table.remove(&i.to_be_bytes());
    }
    assert!(
        table.table().buckets() <= 64,
        "{full} → {}",
        table.table().buckets()
    );
    let mut seen = HashSet::new();
    for _ in 0..1000 {
        table.table().sample(1, |k, _| {
            seen.insert(k.as_slice().to_vec());
            true
        });
    }
    assert_eq!(seen.len(), 10, "every key can be sampled");
}

/// The batched walk hands `f` distinct entries, stops at the `n`-th accepted one, and
/// keeps walking past rejected ones (a volatile policy's filter), whatever `n` is
/// against the batch size.
#[test]
fn sampling_accepts_exactly_n_distinct_entries() {
    let table = shard_of(2_000);
    for n in [1, 5, 7, 8, 9, 16, 64] {
        for _ in 0..50 {
            let mut offered = HashSet::new();
            let mut accepted = 0;
            table.table().sample(n, |k, _| {
                assert!(offered.insert(k.as_slice().to_vec()), "offered twice");
                // One key in three passes the filter.
                let pass = u32::from_be_bytes(k.as_slice().try_into().unwrap()) % 3 == 0;
                accepted += usize::from(pass);
                pass
            });
            assert_eq!(accepted, n, "n = {n}");
            assert!(offered.len() >= n);
        }
    }
}
