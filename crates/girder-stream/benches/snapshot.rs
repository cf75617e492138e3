//! What a journal rewrite spends on a stream: encoding its entries into snapshot chunks
//! and compressing each (`codec::encode_entries_chunk` + `codec::compress`), the work done
//! under the stream's lock, without the log.
//!
//! `cargo bench -p girder-stream --bench snapshot -- --warm-up-time 1 --measurement-time 3`
//!
//! * `entries_100B` / `entries_1KiB`: 100,000 / 20,000 entries of one field whose value
//!   repeats (as `girder-bench streams` sends), in chunks of 1 MiB; throughput is the
//!   entries' payload bytes.
//! * `entries_1KiB_random`: incompressible values, where `compress` gives up after its
//!   first 8 KiB sample.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use girder_kv::streams::{StreamId, StreamValue};
use girder_stream::codec;

fn stream(entries: u64, size: usize, random: bool) -> StreamValue {
    let mut value = StreamValue::default();
    let mut rng = fastrand::Rng::with_seed(7);
    for i in 1..=entries {
        let payload: Vec<u8> = if random {
            (0..size).map(|_| rng.u8(..)).collect()
        } else {
            vec![b'x'; size]
        };
        let fields: Box<[Bytes]> = vec![Bytes::from_static(b"data"), Bytes::from(payload)].into();
        value
            .entries
            .insert(StreamId::new(1_700_000_000_000 + i, 0), fields);
        value.last_id = StreamId::new(1_700_000_000_000 + i, 0);
        value.entries_added = i;
    }
    value
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("snapshot_stream");
    for (name, entries, size, random) in [
        ("entries_100B", 100_000, 100, false),
        ("entries_1KiB", 20_000, 1024, false),
        ("entries_1KiB_random", 20_000, 1024, true),
    ] {
        let value = stream(entries, size, random);
        group.throughput(Throughput::Bytes(entries * size as u64));
        group.bench_function(name, |b| {
            let (mut out, mut scratch) = (Vec::new(), Vec::new());
            b.iter(|| {
                let (mut after, mut bytes) = (None, 0);
                while let Some(last) = codec::encode_entries_chunk(
                    &mut out,
                    0,
                    b"key",
                    &value,
                    after,
                    codec::CHUNK_BYTES,
                ) {
                    codec::compress(&mut out, &mut scratch);
                    bytes += out.len();
                    after = Some(last);
                }
                bytes
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
