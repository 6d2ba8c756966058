//! Runs saved inputs through a target without AFL: `fuzz-replay TARGET FILE|DIR...`.
//! Reproduces a crash (the panic message and backtrace show), or checks that a fixed
//! one and the whole corpus now pass.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(name) = args.next() else {
        eprintln!("usage: fuzz-replay TARGET FILE|DIR...");
        return ExitCode::from(2);
    };
    let Some(target) = corelay_fuzz::target(&name) else {
        let names: Vec<&str> = corelay_fuzz::TARGETS.iter().map(|(n, _)| *n).collect();
        eprintln!("unknown target {name}; targets: {}", names.join(" "));
        return ExitCode::from(2);
    };
    let mut files = Vec::new();
    for arg in args {
        collect(Path::new(&arg), &mut files);
    }
    for file in &files {
        match std::fs::read(file) {
            Ok(data) => corelay_fuzz::run(target, &data),
            Err(e) => eprintln!("{}: {e}", file.display()),
        }
    }
    println!("{name}: {} inputs ran", files.len());
    ExitCode::SUCCESS
}

fn collect(path: &Path, files: &mut Vec<PathBuf>) {
    match std::fs::read_dir(path) {
        Ok(entries) => {
            let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
            paths.sort();
            for p in paths.iter().filter(|p| p.is_file()) {
                files.push(p.clone());
            }
        }
        Err(_) => files.push(path.to_path_buf()),
    }
}
