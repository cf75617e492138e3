use super::*;
use crate::keys::{ExpireCondition, Ttl};
use crate::strings::{SetCondition, SetExpiry, SetOptions};
use std::collections::HashMap as Model;

const T0: u64 = 1_800_000_000_000;

fn keyspace() -> (Arc<ManualClock>, Keyspace) {
    let clock = Arc::new(ManualClock::new(T0));
    let ks = Keyspace::new(clock.clone(), 512 * 1024 * 1024);
    (clock, ks)
}

/// Strings up to `SMALL_STR` bytes are held inline, longer ones on the heap; both read
/// back byte for byte, report Redis's encodings, and survive INCR's parse and APPEND.
#[test]
fn small_strings_are_inline_up_to_the_limit() {
    let (_, ks) = keyspace();
    let db = ks.db(0).unwrap();
    for len in [
        0,
        1,
        shard::SMALL_STR - 1,
        shard::SMALL_STR,
        shard::SMALL_STR + 1,
        44,
        45,
    ] {
        let key = format!("k{len}");
        let value = vec![b'x'; len];
        strings::set(&db, key.as_bytes(), &value, SetOptions::default()).unwrap();
        assert_eq!(strings::get(&db, key.as_bytes()).unwrap().unwrap(), value);
        let expected = if len <= 44 { "embstr" } else { "raw" };
        assert_eq!(keys::encoding(&db, key.as_bytes()), Some(expected), "{len}");
        assert_eq!(
            matches!(Value::from_bytes(&value), Value::Small(_)),
            len <= shard::SMALL_STR
        );
    }
    strings::set(&db, b"n", b" 7", SetOptions::default()).unwrap();
    assert_eq!(strings::incr_by(&db, b"n", 1), Err(KvError::NotInteger));
    strings::set(&db, b"f", b"1.5", SetOptions::default()).unwrap();
    assert_eq!(strings::incr_by_float(&db, b"f", b"1.0").unwrap(), "2.5");
    assert_eq!(strings::append(&db, b"f", b"0").unwrap(), 4);
    assert_eq!(strings::get(&db, b"f").unwrap().unwrap(), "2.50");
    assert_eq!(keys::encoding(&db, b"f"), Some("raw"));
}

#[test]
fn set_get_and_integer_encoding() {
    let (_, ks) = keyspace();
    let db = ks.db(0).unwrap();
    strings::set(&db, b"n", b"42", SetOptions::default()).unwrap();
    strings::set(&db, b"z", b"042", SetOptions::default()).unwrap();
    assert_eq!(keys::encoding(&db, b"n"), Some("int"));
    assert_eq!(
        keys::encoding(&db, b"z"),
        Some("embstr"),
        "not canonical: kept as bytes"
    );
    assert_eq!(strings::get(&db, b"n").unwrap().unwrap(), "42");
    assert_eq!(strings::get(&db, b"z").unwrap().unwrap(), "042");
    assert_eq!(strings::incr_by(&db, b"n", 8).unwrap(), 50);
    assert_eq!(strings::incr_by(&db, b"z", 1), Err(KvError::NotInteger));
    strings::set(
        &db,
        b"max",
        i64::MAX.to_string().as_bytes(),
        SetOptions::default(),
    )
    .unwrap();
    assert_eq!(strings::incr_by(&db, b"max", 1), Err(KvError::Overflow));
}

#[test]
fn set_conditions_and_get_option() {
    let (_, ks) = keyspace();
    let db = ks.db(0).unwrap();
    let nx = SetOptions {
        condition: SetCondition::IfAbsent,
        return_old: true,
        ..SetOptions::default()
    };
    let first = strings::set(&db, b"k", b"a", nx).unwrap();
    assert!(first.written);
    assert_eq!(first.old, None);
    let second = strings::set(&db, b"k", b"b", nx).unwrap();
    assert!(!second.written);
    assert_eq!(second.old.unwrap(), "a");
    let xx = SetOptions {
        condition: SetCondition::IfPresent,
        ..SetOptions::default()
    };
    assert!(!strings::set(&db, b"missing", b"x", xx).unwrap().written);
}

#[test]
fn ttl_lazy_and_active_expiry_on_virtual_time() {
    let (clock, ks) = keyspace();
    {
        let db = ks.db(0).unwrap();
        let opts = SetOptions {
            expiry: SetExpiry::At(T0 + 1000),
            ..SetOptions::default()
        };
        strings::set(&db, b"lazy", b"v", opts).unwrap();
        strings::set(&db, b"active", b"v", opts).unwrap();
        strings::set(&db, b"forever", b"v", SetOptions::default()).unwrap();
        assert_eq!(keys::ttl(&db, b"lazy"), Ttl::Remaining(1000));
        assert_eq!(keys::ttl(&db, b"forever"), Ttl::Persistent);
        assert_eq!(keys::ttl(&db, b"nope"), Ttl::Missing);
    }
    clock.advance(1000);
    {
        let db = ks.db(0).unwrap();
        assert!(
            strings::get(&db, b"lazy").unwrap().is_some(),
            "alive at its deadline"
        );
    }
    clock.advance(1);
    {
        let db = ks.db(0).unwrap();
        assert_eq!(strings::get(&db, b"lazy").unwrap(), None, "gone after it");
    }
    // "active" was never read: only the cycle can reclaim it.
    assert_eq!(ks.db_sizes()[0], (2, 1));
    assert_eq!(ks.expire_cycle(100), 1);
    assert_eq!(ks.db_sizes()[0], (1, 0));
}

#[test]
fn expire_conditions_follow_redis7() {
    let (_, ks) = keyspace();
    let db = ks.db(0).unwrap();
    strings::set(&db, b"k", b"v", SetOptions::default()).unwrap();
    let (nx, xx, gt, lt) = (
        ExpireCondition {
            nx: true,
            ..Default::default()
        },
        ExpireCondition {
            xx: true,
            ..Default::default()
        },
        ExpireCondition {
            gt: true,
            ..Default::default()
        },
        ExpireCondition {
            lt: true,
            ..Default::default()
        },
    );
    let xx_lt = ExpireCondition {
        xx: true,
        lt: true,
        ..Default::default()
    };
    assert!(!keys::expire_at(&db, b"k", T0 + 10, xx));
    assert!(
        !keys::expire_at(&db, b"k", T0 + 10, gt),
        "GT: none is infinite"
    );
    assert!(
        !keys::expire_at(&db, b"k", T0 + 10, xx_lt),
        "XX LT needs a deadline"
    );
    assert!(keys::expire_at(&db, b"k", T0 + 10, lt));
    assert!(!keys::expire_at(&db, b"k", T0 + 20, nx));
    assert!(keys::expire_at(&db, b"k", T0 + 20, gt));
    assert!(
        !keys::expire_at(&db, b"k", T0 + 20, gt),
        "GT: equal is not later"
    );
    assert!(!keys::expire_at(&db, b"k", T0 + 15, gt));
    assert!(keys::expire_at(&db, b"k", T0 + 15, xx_lt));
    assert!(keys::persist(&db, b"k"));
    assert!(!keys::persist(&db, b"k"));
    assert!(
        keys::expire_at(&db, b"k", T0, ExpireCondition::default()),
        "a past deadline deletes"
    );
    assert_eq!(keys::exists(&db, &[b"k"]), 0);
}

#[test]
fn rename_moves_value_and_deadline() {
    let (_, ks) = keyspace();
    let db = ks.db(0).unwrap();
    let opts = SetOptions {
        expiry: SetExpiry::At(T0 + 500),
        ..SetOptions::default()
    };
    strings::set(&db, b"a", b"1", opts).unwrap();
    strings::set(&db, b"b", b"2", SetOptions::default()).unwrap();
    assert_eq!(keys::rename(&db, b"a", b"b", true), Ok(false));
    assert_eq!(keys::rename(&db, b"a", b"c", false), Ok(true));
    assert_eq!(keys::ttl(&db, b"c"), Ttl::Remaining(500));
    assert_eq!(
        keys::rename(&db, b"a", b"c", false),
        Err(KvError::NoSuchKey)
    );
    drop(db);
    let ex = ks.exclusive();
    assert_eq!(ex.move_key(b"c", 0, 1), Ok(true));
    assert_eq!(keys::ttl(&ex.db(1).unwrap(), b"c"), Ttl::Remaining(500));
    ex.swap_db(0, 1).unwrap();
    assert_eq!(keys::type_of(&ex.db(0).unwrap(), b"c"), "string");
}

#[test]
fn glob_matches_like_redis() {
    for (p, t, m) in [
        ("*", "anything", true),
        ("h?llo", "hello", true),
        ("h*llo", "heeeello", true),
        ("h[ae]llo", "hallo", true),
        ("h[^e]llo", "hello", false),
        ("h[a-b]llo", "hbllo", true),
        ("h\\*llo", "h*llo", true),
        ("h\\*llo", "hello", false),
        ("*a*b*c", "xxaxxbxxc", true),
        ("*a*b*c", "xxaxxbxx", false),
        ("user:[0-9]*", "user:7abc", true),
        ("", "", true),
        ("", "x", false),
        // Redis reads `a-]` as a range, ends swapped: `]`..`a`, the class unterminated.
        ("[a-]", "a", true),
        ("[a-]", "]", true),
        ("[a-]", "_", true),
        ("[a-]", "-", false),
        ("[a-]x", "ax", false),
        ("[-a]", "-", true),
        ("[]]", "]", false),
    ] {
        assert_eq!(
            keys::glob_match(p.as_bytes(), t.as_bytes(), false),
            m,
            "{p} ~ {t}"
        );
    }
}

#[test]
fn mset_is_atomic_and_msetnx_all_or_nothing() {
    let (_, ks) = keyspace();
    let db = ks.db(0).unwrap();
    assert!(strings::mset(&db, &[(b"a", b"1"), (b"b", b"2")], false).unwrap());
    assert!(!strings::mset(&db, &[(b"c", b"3"), (b"a", b"9")], true).unwrap());
    assert_eq!(keys::exists(&db, &[b"c"]), 0);
    assert_eq!(
        strings::mget(&db, &[b"a", b"b", b"c"]),
        vec![Some("1".into()), Some("2".into()), None]
    );
}

proptest::proptest! {
    /// Against a HashMap model: any sequence of SET/DEL/INCR/APPEND/GET gives the same
    /// results, across shards.
    #[test]
    fn matches_a_model(ops in proptest::collection::vec((0u8..5, 0u8..8, 0i64..100), 1..200)) {
        let (_, ks) = keyspace();
        let db = ks.db(0).unwrap();
        let mut model: Model<Vec<u8>, Vec<u8>> = Model::new();
        for (op, k, n) in ops {
            let key = format!("k{k}").into_bytes();
            match op {
                0 => {
                    let v = n.to_string().into_bytes();
                    strings::set(&db, &key, &v, SetOptions::default()).unwrap();
                    model.insert(key, v);
                }
                1 => {
                    let removed = keys::del(&db, &[&key]);
                    proptest::prop_assert_eq!(removed, usize::from(model.remove(&key).is_some()));
                }
                2 => {
                    let got = strings::incr_by(&db, &key, n);
                    let current = model.get(&key).map(|v| String::from_utf8(v.clone()).unwrap());
                    match current.map(|s| s.parse::<i64>()) {
                        None => { model.insert(key, n.to_string().into_bytes()); proptest::prop_assert_eq!(got, Ok(n)); }
                        Some(Ok(c)) => { model.insert(key, (c + n).to_string().into_bytes()); proptest::prop_assert_eq!(got, Ok(c + n)); }
                        Some(Err(_)) => proptest::prop_assert_eq!(got, Err(KvError::NotInteger)),
                    }
                }
                3 => {
                    let len = strings::append(&db, &key, b"x").unwrap();
                    let v = model.entry(key).or_default();
                    v.push(b'x');
                    proptest::prop_assert_eq!(len, v.len());
                }
                _ => {
                    let got = strings::get(&db, &key).unwrap().map(|b| b.to_vec());
                    proptest::prop_assert_eq!(got, model.get(&key).cloned());
                }
            }
        }
        proptest::prop_assert_eq!(keys::dbsize(&db), model.len());
    }
}

#[test]
fn expiry_reports_removed_keys_only_when_asked() {
    let (clock, ks) = keyspace();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    ks.set_expired_hook(Some(Arc::new(move |db, key: &[u8]| {
        log.lock().push((db, key.to_vec()));
    })));
    let ttl = |db: &DbRef<'_>, key: &[u8]| {
        let options = SetOptions {
            expiry: SetExpiry::At(db.now_ms() + 10),
            ..SetOptions::default()
        };
        strings::set(db, key, b"v", options).unwrap();
    };
    ttl(&ks.db(0).unwrap(), b"quiet");
    clock.advance(20);
    assert_eq!(ks.expire_cycle(10), 1);
    assert!(seen.lock().is_empty(), "reporting is off");

    ks.report_expired(true);
    ttl(&ks.db(3).unwrap(), b"a");
    ttl(&ks.db(3).unwrap(), b"lazy");
    let db = ks.db(3).unwrap();
    assert!(!db.expire_if_due(b"a"), "not due yet");
    clock.advance(20);
    let db = ks.db(3).unwrap();
    assert!(db.expire_if_due(b"lazy"));
    assert!(!db.expire_if_due(b"lazy"), "already gone");
    drop(db);
    assert_eq!(ks.expire_cycle(10), 1);
    assert_eq!(*seen.lock(), vec![(3, b"a".to_vec())]);
}

/// A snapshot's parts of a shard: every live key of the shard in exactly one part,
/// whatever the number of parts.
#[test]
fn shard_parts_cover_each_key_once() {
    let (_, ks) = keyspace();
    let db = ks.db(0).unwrap();
    for i in 0..20_000 {
        strings::set(&db, format!("k{i}").as_bytes(), b"v", SetOptions::default()).unwrap();
    }
    for shard in [0, 17, crate::SHARDS - 1] {
        let whole: std::collections::BTreeSet<Vec<u8>> =
            db.visit_shard_part(shard, 0, 1, |entries| {
                entries.map(|(k, _)| k.to_vec()).collect()
            });
        assert_eq!(whole.len(), db.shard_len(shard));
        for parts in [2, 3, 7, 64] {
            let mut seen = std::collections::BTreeSet::new();
            let mut total = 0;
            for part in 0..parts {
                db.visit_shard_part(shard, part, parts, |entries| {
                    for (k, _) in entries {
                        total += 1;
                        seen.insert(k.to_vec());
                    }
                });
            }
            assert_eq!(total, whole.len(), "{parts} parts: no key twice");
            assert_eq!(seen, whole, "{parts} parts: every key");
        }
    }
}
