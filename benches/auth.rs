//! Token verification and signing cost (`cargo bench --bench auth -- --quick`).

use std::hint::black_box;

use corelay::auth::{join_claims, sign, KeyStore};
use criterion::{criterion_group, criterion_main, Criterion};

const NOW: u64 = 1_700_000_000;

fn keys(n: usize) -> KeyStore {
    KeyStore::new((0..n).map(|i| {
        (
            format!("APIkey{i:03}"),
            format!("secret-{i:03}-0123456789abcdef"),
        )
    }))
}

fn bench(c: &mut Criterion) {
    let mut claims = join_claims("APIkey000", "participant-42", "my-room", NOW, 6 * 3600);
    claims.name = "Participant 42".into();
    let token = sign(&claims, "secret-000-0123456789abcdef").expect("sign");

    for n in [1, 100] {
        let store = keys(n);
        assert!(store.verify(&token, NOW).is_ok());
        c.bench_function(&format!("verify join token ({n} keys)"), |b| {
            b.iter(|| store.verify(black_box(&token), black_box(NOW)))
        });
    }
    c.bench_function("sign join claims", |b| {
        b.iter(|| sign(black_box(&claims), black_box("secret-000-0123456789abcdef")))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
