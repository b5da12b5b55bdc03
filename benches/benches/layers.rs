//! Micro-benchmarks of the pure layers: header encode/decode, decoder throughput, HMAC responses
//! per digest, Pickle and Postcard encode/decode of the sample object.

#![allow(
    missing_docs,
    reason = "criterion's macros generate undocumented items"
)]

use benches::Sample;
use conn_auth::{AuthKey, Challenge, Digest, Policy, respond};
use conn_framing::{Codec, Decoder, Header, Pickle, Postcard, decode_header, encode_frame_into};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

fn header(c: &mut Criterion) {
    let mut g = c.benchmark_group("header");
    g.bench_function("encode_short", |b| b.iter(|| Header::new(black_box(4096))));
    g.bench_function("encode_long", |b| {
        b.iter(|| Header::new(black_box(1 << 33)))
    });
    let short = Header::new(4096);
    g.bench_function("decode_short", |b| {
        b.iter(|| decode_header(black_box(short.as_bytes())))
    });
    let long = Header::new(1 << 33);
    g.bench_function("decode_long", |b| {
        b.iter(|| decode_header(black_box(long.as_bytes())))
    });
    g.finish();
}

fn decoder(c: &mut Criterion) {
    let mut g = c.benchmark_group("decoder");
    for size in [64usize, 4096, 65536] {
        let mut wire = Vec::new();
        let payload = vec![7u8; size];
        let frames = (1 << 20) / size;
        for _ in 0..frames {
            encode_frame_into(&payload, &mut wire);
        }
        g.throughput(Throughput::Bytes(wire.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(size), &wire, |b, wire| {
            b.iter(|| {
                let mut d = Decoder::new();
                let mut n = 0;
                for chunk in wire.chunks(16 * 1024) {
                    d.feed(chunk);
                    while let Ok(Some(frame)) = d.next_frame() {
                        n += frame.len();
                    }
                }
                n
            })
        });
    }
    g.finish();
}

fn hmac(c: &mut Criterion) {
    let mut g = c.benchmark_group("hmac_response");
    let key = AuthKey::from("secret password");
    for &digest in Digest::ALL {
        let challenge = Challenge::from_parts(Some(digest), &[7; 40]);
        g.bench_function(digest.name(), |b| {
            b.iter(|| respond(&key, black_box(challenge.as_bytes()), &Policy::new()))
        });
    }
    g.finish();
}

fn codecs(c: &mut Criterion) {
    let mut g = c.benchmark_group("codec");
    let sample = Sample::new();
    let pickled = Pickle::new().encode(&sample).unwrap_or_default();
    let posted = Postcard.encode(&sample).unwrap_or_default();
    g.bench_function("pickle_encode", |b| {
        b.iter(|| Pickle::new().encode(black_box(&sample)))
    });
    g.bench_function("pickle_decode", |b| {
        b.iter(|| Pickle::new().decode::<Sample>(black_box(&pickled)))
    });
    g.bench_function("postcard_encode", |b| {
        b.iter(|| Postcard.encode(black_box(&sample)))
    });
    g.bench_function("postcard_decode", |b| {
        b.iter(|| Postcard.decode::<Sample>(black_box(&posted)))
    });
    g.finish();
}

criterion_group!(layers, header, decoder, hmac, codecs);
criterion_main!(layers);
