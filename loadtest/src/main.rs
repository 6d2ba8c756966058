//! `loadtest --rooms N --pubs M --subs K`: not built yet (see the loadtest issue).

fn main() {
    eprintln!("loadtest: not implemented yet; see the loadtest issue in the tracker");
    std::process::exit(2);
}
