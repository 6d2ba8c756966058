//! Blind in-process mutation of one target's seed corpus:
//! `fuzz-mutate TARGET SECONDS [MAX_EXECS] [CRASH_DIR] [SEED_DIR...]`; the seeds are
//! `fuzz/corpus/TARGET` plus the SEED_DIRs (e.g. the queue of an AFL++ run).
//!
//! AFL++ finds new paths but forks and instruments, a few thousand executions a
//! second here; this loop runs the cheap decoders at hundreds of thousands a second,
//! which is what reaching millions of executions per target takes. A panic is caught,
//! its input saved to CRASH_DIR, and the run goes on; an execution slower than
//! [`SLOW`] is reported (a real hang is left to the caller's `timeout`).

use std::collections::HashSet;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SLOW: Duration = Duration::from_millis(500);
/// Crashes kept per run: past that, more of the same bug only fills the disk.
const MAX_CRASHES: usize = 20;
const INTERESTING: &[u8] = &[0, 1, 0x7f, 0x80, 0xff, b'0', b'{', b'"', b':', b'\n', b'.'];

/// xorshift64*: reproducible from its seed, and no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, input: &mut Vec<u8>, corpus: &[Vec<u8>]) {
    for _ in 0..1 + rng.below(4) {
        let len = input.len();
        match rng.below(8) {
            0 if len > 0 => input[rng.below(len)] ^= 1 << rng.below(8),
            1 if len > 0 => input[rng.below(len)] = rng.next() as u8,
            2 if len > 0 => input[rng.below(len)] = INTERESTING[rng.below(INTERESTING.len())],
            3 => {
                let at = rng.below(len + 1);
                let n = 1 + rng.below(8);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                input.splice(at..at, bytes);
            }
            4 if len > 0 => {
                let at = rng.below(len);
                let end = (at + 1 + rng.below(16)).min(len);
                input.drain(at..end);
            }
            5 if len > 0 => {
                // A repeated chunk: lengths and counts that disagree with the data.
                let at = rng.below(len);
                let end = (at + 1 + rng.below(32)).min(len);
                let chunk = input[at..end].to_vec();
                input.splice(at..at, chunk);
            }
            6 if len > 1 => {
                let at = rng.below(len - 1);
                let v = [0u16, 0xffff, 0x7fff, 0x8000, 1][rng.below(5)].to_be_bytes();
                input[at..at + 2].copy_from_slice(&v);
            }
            _ => {
                // Splice: the front of this input, the back of another seed.
                let other = &corpus[rng.below(corpus.len())];
                let cut = rng.below(len + 1);
                let from = rng.below(other.len() + 1);
                input.truncate(cut);
                input.extend_from_slice(&other[from..]);
            }
        }
    }
    input.truncate(corelay_fuzz::MAX_INPUT);
}

fn seeds(dir: &Path) -> Vec<Vec<u8>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    paths.sort();
    let mut corpus: Vec<Vec<u8>> = paths.iter().filter_map(|p| std::fs::read(p).ok()).collect();
    if corpus.is_empty() {
        corpus.push(Vec::new());
    }
    corpus
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(name), Some(secs)) = (args.first(), args.get(1).and_then(|s| s.parse().ok())) else {
        eprintln!("usage: fuzz-mutate TARGET SECONDS [MAX_EXECS] [CRASH_DIR] [SEED_DIR...]");
        return ExitCode::from(2);
    };
    let max_execs: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(u64::MAX);
    let crash_dir = PathBuf::from(args.get(3).map_or("fuzz-crashes", String::as_str));
    let Some(target) = corelay_fuzz::target(name) else {
        eprintln!("unknown target {name}");
        return ExitCode::from(2);
    };
    let mut corpus = seeds(&Path::new("fuzz/corpus").join(name));
    for dir in args.iter().skip(4) {
        corpus.extend(seeds(Path::new(dir)));
    }

    // The hook records where a panic happened instead of printing every one.
    let last_panic = Arc::new(Mutex::new(String::new()));
    let hook_panic = Arc::clone(&last_panic);
    panic::set_hook(Box::new(move |info| {
        if let Ok(mut p) = hook_panic.lock() {
            *p = info.to_string();
        }
    }));

    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ u64::from(std::process::id()));
    let deadline = corelay::clock::mono() + Duration::from_secs(secs);
    let (mut execs, mut crashes, mut slow) = (0u64, 0usize, 0u64);
    let mut seen = HashSet::new();
    let started = corelay::clock::mono();
    let mut input = Vec::new();
    while execs < max_execs && crashes < MAX_CRASHES {
        // Checking the clock every execution would cost more than the cheap targets.
        if execs % 1024 == 0 && corelay::clock::mono() >= deadline {
            break;
        }
        input.clear();
        input.extend_from_slice(&corpus[rng.below(corpus.len())]);
        mutate(&mut rng, &mut input, &corpus);
        let t0 = corelay::clock::mono();
        let result = panic::catch_unwind(AssertUnwindSafe(|| corelay_fuzz::run(target, &input)));
        execs += 1;
        if t0.elapsed() > SLOW {
            slow += 1;
            eprintln!("{name}: one execution took {:?}", t0.elapsed());
        }
        if result.is_err() {
            let why = last_panic.lock().map(|p| p.clone()).unwrap_or_default();
            // One file per panic site: the message starts with the location.
            if seen.insert(why.lines().next().unwrap_or_default().to_string()) {
                crashes += 1;
                let _ = std::fs::create_dir_all(&crash_dir);
                let file = crash_dir.join(format!("{name}-{crashes}"));
                let _ = std::fs::write(&file, &input);
                eprintln!("{name}: crash saved to {}: {why}", file.display());
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{name:<13} {execs:>12} execs {secs:>6.0}s {:>9.0}/s  crashes {crashes}  slow {slow}",
        execs as f64 / secs
    );
    if crashes > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
