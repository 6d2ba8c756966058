//! One target under AFL++ in persistent mode: `afl-fuzz … -- fuzz-afl TARGET`.
//! Built by `scripts/fuzz` with `cargo afl build --features afl`.

fn main() {
    let name = std::env::args().nth(1).unwrap_or_default();
    let Some(target) = corelay_fuzz::target(&name) else {
        eprintln!("unknown fuzz target {name:?}");
        std::process::exit(2);
    };
    afl::fuzz!(|data: &[u8]| corelay_fuzz::run(target, data));
}
