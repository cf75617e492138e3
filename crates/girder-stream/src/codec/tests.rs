use super::*;
use proptest::prelude::*;

fn id() -> impl Strategy<Value = StreamId> {
    (
        prop_oneof![0..5u64, any::<u64>()],
        prop_oneof![0..5u64, any::<u64>()],
    )
        .prop_map(|(ms, seq)| StreamId::new(ms, seq))
}

fn name() -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..6).prop_map(Bytes::from)
}

fn fields() -> impl Strategy<Value = Box<[Bytes]>> {
    prop::collection::vec(name(), 1..6).prop_map(|v| v.into_boxed_slice())
}

fn effect() -> impl Strategy<Value = StreamEffect> {
    prop_oneof![
        Just(StreamEffect::Create),
        (id(), fields()).prop_map(|(id, fields)| StreamEffect::Add { id, fields }),
        prop::collection::vec(id(), 0..4).prop_map(|ids| StreamEffect::Delete { ids }),
        id().prop_map(|through| StreamEffect::TrimThrough { through }),
        (id(), any::<Option<u64>>(), prop::option::of(id())).prop_map(|(l, e, m)| {
            StreamEffect::SetId {
                last_id: l,
                entries_added: e,
                max_deleted_id: m,
            }
        }),
        (name(), id(), any::<Option<u64>>()).prop_map(|(group, last_id, entries_read)| {
            StreamEffect::GroupCursor {
                group,
                last_id,
                entries_read,
            }
        }),
        name().prop_map(|group| StreamEffect::GroupDestroy { group }),
        (name(), name(), any::<u64>()).prop_map(|(group, consumer, seen_ms)| {
            StreamEffect::ConsumerSeen {
                group,
                consumer,
                seen_ms,
            }
        }),
        (name(), name())
            .prop_map(|(group, consumer)| StreamEffect::ConsumerDelete { group, consumer }),
        (name(), id(), name(), any::<u64>(), any::<u64>()).prop_map(|(g, id, c, t, n)| {
            StreamEffect::Pending {
                group: g,
                id,
                consumer: c,
                delivery_ms: t,
                delivery_count: n,
            }
        }),
        (name(), prop::collection::vec(id(), 0..4))
            .prop_map(|(group, ids)| StreamEffect::Ack { group, ids }),
    ]
}

/// A stream built through `apply`, so its invariants (consumer PELs mirror the group
/// PEL) hold as they do in the keyspace.
fn stream() -> impl Strategy<Value = StreamValue> {
    prop::collection::vec(effect(), 0..30).prop_map(|effects| {
        let mut s = StreamValue::default();
        for e in &effects {
            s.apply(e);
        }
        s
    })
}

fn record() -> impl Strategy<Value = JournalRecord> {
    prop_oneof![
        (any::<u8>(), name(), prop::collection::vec(effect(), 0..5))
            .prop_map(|(db, key, effects)| JournalRecord::Effects { db, key, effects }),
        (any::<u8>(), name(), any::<Option<u64>>(), stream()).prop_map(|(db, key, e, v)| {
            JournalRecord::Replaced {
                db,
                key,
                expire_at: e,
                value: Box::new(v),
            }
        }),
        (any::<u8>(), name()).prop_map(|(db, key)| JournalRecord::Deleted { db, key }),
        (any::<u8>(), name(), any::<Option<u64>>())
            .prop_map(|(db, key, expire_at)| JournalRecord::Expire { db, key, expire_at }),
        Just(JournalRecord::FlushedAll),
        (any::<u8>(), any::<u8>()).prop_map(|(a, b)| JournalRecord::Swapped { a, b }),
        Just(JournalRecord::SnapshotBegin),
        Just(JournalRecord::SnapshotEnd),
    ]
}

proptest! {
    #[test]
    fn records_round_trip(r in record()) {
        let bytes = Bytes::from(encode(&r));
        prop_assert_eq!(decode(&bytes), Ok(r));
    }

    /// Every strict prefix of a record, and every record with a byte appended, is an
    /// error — never a panic, never a different record.
    #[test]
    fn damaged_records_are_errors(r in record(), cut in any::<prop::sample::Index>()) {
        let bytes = encode(&r);
        let n = cut.index(bytes.len());
        prop_assert!(decode(&Bytes::copy_from_slice(&bytes[..n])).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        prop_assert!(decode(&Bytes::from(longer)).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = decode(&Bytes::from(bytes));
    }
}

#[test]
fn unknown_version_is_refused() {
    let mut bytes = encode(&JournalRecord::FlushedAll);
    bytes[0] = 2;
    assert_eq!(
        decode(&Bytes::from(bytes)),
        Err(DecodeError("unknown format version"))
    );
}

/// Rebuilds a stream from the records [`encode_stream`] emitted, as replay does.
fn reassemble(records: &[Vec<u8>]) -> (StreamValue, Option<u64>) {
    let mut value = None;
    for bytes in records {
        match decode(&Bytes::copy_from_slice(bytes)).expect("decodes") {
            JournalRecord::Replaced {
                value: v,
                expire_at,
                ..
            } => {
                assert!(value.is_none(), "one head");
                value = Some((*v, expire_at));
            }
            JournalRecord::Entries { entries, .. } => {
                value
                    .as_mut()
                    .expect("head first")
                    .0
                    .entries
                    .extend(entries);
            }
            JournalRecord::Pending { group, pending, .. } => {
                let g = value
                    .as_mut()
                    .expect("head first")
                    .0
                    .groups
                    .get_mut(&group)
                    .expect("group in head");
                for (id, consumer, delivery_ms, delivery_count) in pending {
                    g.consumers
                        .entry(consumer.clone())
                        .or_default()
                        .pel
                        .insert(id);
                    g.pel.insert(
                        id,
                        PendingEntry {
                            consumer,
                            delivery_ms,
                            delivery_count,
                        },
                    );
                }
            }
            other => panic!("unexpected record {other:?}"),
        }
    }
    value.expect("a head")
}

proptest! {
    /// A stream split into chunks of any size comes back whole, and no chunk holds more
    /// than one item past the size asked for.
    #[test]
    fn streams_split_into_chunks_come_back_whole(
        effects in prop::collection::vec(effect(), 0..200),
        chunk in 1usize..400,
        expire_at in any::<Option<u64>>(),
    ) {
        let mut s = StreamValue::default();
        for e in &effects {
            s.apply(e);
        }
        let mut records = Vec::new();
        encode_stream(3, b"key", &s, expire_at, chunk, |r| records.push(r.to_vec()));
        prop_assert!(!records.is_empty());
        prop_assert_eq!(reassemble(&records), (s, expire_at));
    }
}

#[test]
fn a_large_stream_is_many_bounded_records() {
    let mut s = StreamValue::default();
    s.apply(&StreamEffect::GroupCursor {
        group: Bytes::from_static(b"g"),
        last_id: StreamId::MIN,
        entries_read: None,
    });
    for i in 1..=20_000u64 {
        s.apply(&StreamEffect::Add {
            id: StreamId::new(i, 0),
            fields: vec![Bytes::from_static(b"f"), Bytes::from(vec![b'x'; 100])].into_boxed_slice(),
        });
        if i % 2 == 0 {
            s.apply(&StreamEffect::Pending {
                group: Bytes::from_static(b"g"),
                id: StreamId::new(i, 0),
                consumer: Bytes::from_static(b"c"),
                delivery_ms: i,
                delivery_count: 1,
            });
        }
    }
    let mut records = Vec::new();
    encode_stream(0, b"big", &s, None, 64 << 10, |r| records.push(r.to_vec()));
    assert!(records.len() > 20, "{} records", records.len());
    assert!(records.iter().all(|r| r.len() < (64 << 10) + 1024));
    assert_eq!(reassemble(&records), (s, None));
}

/// A record of `n` entries whose one field is `payload(i)`: the chunk a snapshot writes.
fn entries_record(n: u64, payload: impl Fn(u64) -> Vec<u8>) -> JournalRecord {
    JournalRecord::Entries {
        db: 2,
        key: Bytes::from_static(b"stream"),
        entries: (1..=n)
            .map(|i| {
                let fields = vec![Bytes::from_static(b"f"), Bytes::from(payload(i))];
                (StreamId::new(i, 0), fields.into_boxed_slice())
            })
            .collect(),
    }
}

fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut v = vec![0; len];
    rng.fill(&mut v);
    v
}

#[test]
fn repetitive_records_compress_and_come_back_whole() {
    let record = entries_record(100, |i| vec![b'x' + (i % 3) as u8; 1000]);
    let mut bytes = encode(&record);
    let raw = bytes.len();
    assert!(compress(&mut bytes, &mut Vec::new()));
    assert_eq!(bytes[..2], [VERSION, 16]);
    assert!(bytes.len() * 20 < raw, "{} of {raw} bytes", bytes.len());
    assert_eq!(decode(&Bytes::from(bytes)), Ok(record));
}

/// Incompressible and small records stay as they are: no `Compressed` record that is no
/// smaller than what it holds.
#[test]
fn incompressible_and_small_records_are_left_alone() {
    let record = entries_record(100, |i| noise(i, 1000));
    let bytes = encode(&record);
    let mut kept = bytes.clone();
    assert!(!compress(&mut kept, &mut Vec::new()));
    assert_eq!(kept, bytes);
    let small = encode(&entries_record(1, |_| vec![b'x'; COMPRESS_MIN / 2]));
    assert!(small.len() < COMPRESS_MIN);
    let mut kept = small.clone();
    assert!(!compress(&mut kept, &mut Vec::new()));
    assert_eq!(kept, small);
}

/// A damaged `Compressed` record is an error — never a panic, never an allocation of the
/// length it claims, never a different record.
#[test]
fn damaged_compressed_records_are_errors() {
    let record = entries_record(50, |i| {
        let mut v = vec![b'x'; 500];
        v[..8].copy_from_slice(&i.to_le_bytes());
        v
    });
    let mut bytes = encode(&record);
    assert!(compress(&mut bytes, &mut Vec::new()));
    for cut in 0..bytes.len() {
        assert!(
            decode(&Bytes::copy_from_slice(&bytes[..cut])).is_err(),
            "cut {cut}"
        );
    }
    for at in 2..bytes.len() {
        for bit in [0x01, 0x80] {
            let mut flipped = bytes.clone();
            flipped[at] ^= bit;
            if let Ok(r) = decode(&Bytes::from(flipped)) {
                // A flip inside a literal can decode to a different payload byte; the log's
                // CRC32C catches those. Anything that decodes is still an Entries record.
                assert!(matches!(r, JournalRecord::Entries { .. }), "flip at {at}");
            }
        }
    }
    // A length no LZ4 block of this size could expand to is refused before allocating.
    let mut bomb = vec![VERSION, 16];
    put_varint(&mut bomb, u64::MAX >> 1);
    bomb.extend_from_slice(&[0x10, b'x']);
    assert_eq!(
        decode(&Bytes::from(bomb)),
        Err(DecodeError("compressed length exceeds the record"))
    );
    // A `Compressed` record inside another.
    let mut inner = encode(&record);
    assert!(compress(&mut inner, &mut Vec::new()));
    let mut outer = vec![VERSION, 16];
    put_varint(&mut outer, inner.len() as u64);
    outer.extend_from_slice(&lz4_flex::block::compress(&inner));
    assert_eq!(
        decode(&Bytes::from(outer)),
        Err(DecodeError("nested compressed record"))
    );
}

proptest! {
    /// Every record that compression takes comes back whole.
    #[test]
    fn compressed_records_round_trip(r in record(), copies in 1usize..40) {
        // Many copies of a record in a batch: long enough to be offered, and repetitive.
        let batch = JournalRecord::Batch((0..copies as u64).map(|t| (t, r.clone())).collect());
        let mut bytes = encode(&batch);
        let raw = bytes.clone();
        let compressed = compress(&mut bytes, &mut Vec::new());
        prop_assert!(compressed || bytes == raw);
        prop_assert!(!compressed || raw.len() >= COMPRESS_MIN);
        prop_assert_eq!(decode(&Bytes::from(bytes)), Ok(batch));
    }
}

/// A large record is judged by its first [`COMPRESS_SAMPLE`] bytes: random ones leave it
/// alone even if the rest repeats (the price of not compressing a whole chunk of random
/// bytes under a key's lock to find out).
#[test]
fn a_large_record_is_judged_by_its_first_sample() {
    let record = entries_record(200, |i| {
        if i <= 10 {
            noise(i, 1000)
        } else {
            vec![b'x'; 1000]
        }
    });
    let bytes = encode(&record);
    assert!(bytes.len() > 4 * COMPRESS_SAMPLE);
    let mut kept = bytes.clone();
    assert!(!compress(&mut kept, &mut Vec::new()));
    assert_eq!(kept, bytes);
}
