//! Reply encoding on the RESP hot path: what LRANGE, SMEMBERS or HGETALL pay per element
//! (`codec::bulk_array`, then the copy into the connection's output buffer), and the
//! replies of single-key commands (`Reply::encode`).
//!
//! `cargo bench -p girder-resp --bench codec -- --warm-up-time 1 --measurement-time 3`
//!
//! * `lrange_100_3B`: redis-benchmark's LRANGE_100 reply, 100 elements of 3 bytes.
//! * `lrange_100_100B`: the same with 100-byte elements.
//! * `bulk_64B` / `integer`: one GET and one INCR reply appended to an output buffer.

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use girder_resp::codec::{bulk_array, Protocol, Reply};

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("reply");
    for (name, size) in [("lrange_100_3B", 3), ("lrange_100_100B", 100)] {
        let items: Vec<Vec<u8>> = (0..100)
            .map(|i| vec![b'a' + (i % 26) as u8; size])
            .collect();
        group.throughput(Throughput::Elements(100));
        group.bench_function(name, |b| {
            let mut output = BytesMut::with_capacity(64 << 10);
            b.iter(|| {
                output.clear();
                let reply = bulk_array(items.len(), &mut items.iter().map(Vec::as_slice));
                reply.encode(Protocol::Resp2, &mut output);
                output.len()
            });
        });
    }
    group.throughput(Throughput::Elements(1));
    let value = Reply::bulk(Bytes::from(vec![b'v'; 64]));
    group.bench_function("bulk_64B", |b| {
        let mut output = BytesMut::with_capacity(64 << 10);
        b.iter(|| {
            output.clear();
            value.encode(Protocol::Resp2, &mut output);
            output.len()
        });
    });
    group.bench_function("integer", |b| {
        let mut output = BytesMut::with_capacity(64 << 10);
        let mut n = 0i64;
        b.iter(|| {
            output.clear();
            n += 12_345;
            Reply::Integer(n).encode(Protocol::Resp2, &mut output);
            output.len()
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
