//! `tiaojie`: see `tiaojie --help`.
#![forbid(unsafe_code)]

use clap::Parser;

/// mimalloc rather than glibc's allocator: under load the server spent a fifth of its time
/// in glibc's malloc and free (BENCHMARKS.md), and its per-thread arenas held memory.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    let cli = tiaojie::config::Cli::parse();
    match tiaojie::cli::run(cli).await {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            // A readable sentence, never a panic or a backtrace.
            eprintln!("tiaojie: {e:#}");
            std::process::exit(1);
        }
    }
}
