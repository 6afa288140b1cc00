//! `tiaojie`: see `tiaojie --help`.
#![forbid(unsafe_code)]

use clap::Parser;

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
